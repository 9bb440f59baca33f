"""rules: SLA clock columns on tickets, issue type, escalations sent once per level

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("sla_calendar", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("sla_paused_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("breached_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("issue_type", sa.String(length=64), nullable=True))
    op.create_table(
        "ticket_escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_number", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["ticket_number"], ["tickets.number"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_number", "level"),
    )


def downgrade() -> None:
    op.drop_table("ticket_escalations")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("issue_type")
        batch.drop_column("breached_at")
        batch.drop_column("sla_paused_at")
        batch.drop_column("sla_calendar")
