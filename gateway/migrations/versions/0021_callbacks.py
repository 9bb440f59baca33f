"""callbacks: phone call-backs booked by directory people (DESIGN §14, issue 17); the
announcements a person received, found by address (the hub's announcements page)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

_OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_email", sa.String(length=320), nullable=False),
        sa.Column("team_id", sa.String(length=64), nullable=True),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(length=40), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Enum("open", "done", name="callback_status",
                                    native_enum=False, length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=320), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("uq_callbacks_open_person", "callbacks", ["person_email"], unique=True,
                    sqlite_where=_OPEN, postgresql_where=_OPEN)
    op.create_index("ix_callbacks_status_starts", "callbacks", ["status", "starts_at"])
    op.create_index("ix_announcement_recipients_email", "announcement_recipients", ["email"])
    op.create_index("ix_tickets_team_insights", "tickets",
                    ["team_id", "duplicate_of", "product", "issue_type", "category", "status",
                     "first_response_at", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_team_insights", table_name="tickets")
    op.drop_index("ix_announcement_recipients_email", table_name="announcement_recipients")
    op.drop_index("ix_callbacks_status_starts", table_name="callbacks")
    op.drop_index("uq_callbacks_open_person", table_name="callbacks")
    op.drop_table("callbacks")
