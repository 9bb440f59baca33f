"""hub: sign-in links, sign-in attempts (rate limits), sessions; ticket list indexes

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_sign_in_links",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_table(
        "hub_sign_in_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("client", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_hub_sign_in_attempts_email_at", "hub_sign_in_attempts", ["email", "at"])
    op.create_index("ix_hub_sign_in_attempts_client_at", "hub_sign_in_attempts",
                    ["client", "at"])
    op.create_table(
        "hub_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index("ix_hub_sessions_email", "hub_sessions", ["email"])
    op.create_index("ix_tickets_requester_updated", "tickets", ["requester", "updated_at"])
    op.create_index("ix_tickets_team_updated", "tickets", ["team_id", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_team_updated", table_name="tickets")
    op.drop_index("ix_tickets_requester_updated", table_name="tickets")
    op.drop_index("ix_hub_sessions_email", table_name="hub_sessions")
    op.drop_table("hub_sessions")
    op.drop_index("ix_hub_sign_in_attempts_client_at", table_name="hub_sign_in_attempts")
    op.drop_index("ix_hub_sign_in_attempts_email_at", table_name="hub_sign_in_attempts")
    op.drop_table("hub_sign_in_attempts")
    op.drop_table("hub_sign_in_links")
