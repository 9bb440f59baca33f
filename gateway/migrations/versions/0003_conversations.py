"""conversations: reopen/duplicate links, message flags, bounces

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("duplicate_of", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("follows", sa.Integer(), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("flags", sa.JSON(), nullable=False,
                                   server_default=sa.text("'[]'")))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("bounced_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "bouncing_addresses",
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.Column("bounces", sa.Integer(), nullable=False),
        sa.Column("hard", sa.Boolean(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    op.create_index("ix_outbox_rcpt_kind_created", "outbox", ["rcpt_to", "kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_rcpt_kind_created", table_name="outbox")
    op.drop_table("bouncing_addresses")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("bounced_at")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("flags")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("follows")
        batch.drop_column("duplicate_of")
        batch.drop_column("resolved_at")
