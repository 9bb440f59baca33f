"""shared mailboxes over IMAP: per-folder checkpoint and status; wider spool source

Revision ID: 0004
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imap_folders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mailbox", sa.String(length=200), nullable=False),
        sa.Column("folder", sa.String(length=500), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("window_uid", sa.BigInteger(), nullable=False),
        sa.Column("history_uid", sa.BigInteger(), nullable=False),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("taken", sa.BigInteger(), nullable=False),
        sa.Column("last_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("mailbox", "folder"),
    )
    # "imap:<mailbox>/<folder>" does not fit the 16 characters of smtp/pipe.  Widening a
    # VARCHAR is safe for old code; SQLite does not enforce the length at all.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("spool", "source", type_=sa.String(length=255),
                        existing_type=sa.String(length=16), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("spool", "source", type_=sa.String(length=16),
                        existing_type=sa.String(length=255), existing_nullable=False)
    op.drop_table("imap_folders")
