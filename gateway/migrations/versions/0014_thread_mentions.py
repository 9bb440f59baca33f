"""threading-order: the ids each stored message names, and tickets joined into another

Revision ID: 0014
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("merged_into", sa.Integer(), nullable=True))
    op.create_table(
        "message_mentions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=998), nullable=False),
        sa.Column("message_id_hash", sa.String(length=64), nullable=False),
        sa.Column("ticket_number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(["ticket_number"], ["tickets.number"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id_hash", "ticket_number"),
    )
    op.create_index("ix_message_mentions_message_id_hash", "message_mentions",
                    ["message_id_hash"])
    op.create_index("ix_message_mentions_ticket_number", "message_mentions", ["ticket_number"])


def downgrade() -> None:
    op.drop_index("ix_message_mentions_ticket_number", table_name="message_mentions")
    op.drop_index("ix_message_mentions_message_id_hash", table_name="message_mentions")
    op.drop_table("message_mentions")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("merged_into")
