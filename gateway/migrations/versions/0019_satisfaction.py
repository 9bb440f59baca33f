"""satisfaction: the links of "was this helpful?" and the answers (DESIGN §13)

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "satisfaction_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("ticket_number", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["ticket_number"], ["tickets.number"]),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_satisfaction_links_ticket_number", "satisfaction_links",
                    ["ticket_number"])
    op.create_table(
        "satisfaction_ratings",
        sa.Column("ticket_number", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("rating", sa.String(length=8), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_number"], ["tickets.number"]),
        sa.PrimaryKeyConstraint("ticket_number"),
    )


def downgrade() -> None:
    op.drop_table("satisfaction_ratings")
    op.drop_index("ix_satisfaction_links_ticket_number", table_name="satisfaction_links")
    op.drop_table("satisfaction_links")
