"""trust marks: sealed live bytes of outbox rows, recipient mailbox and domain for limits

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-05

``outbox.raw`` now holds the mail with the secrets of its links redacted; the live bytes
are kept encrypted in ``outbox.sealed`` until the row is sent or dead.  ``rcpt_mailbox``
(case-folded, ``+detail`` removed) and ``rcpt_domain`` let the automatic-answer limits
count per mailbox and per domain with an index.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0005"
branch_labels = None
depends_on = None


def _mailbox(address: str) -> tuple[str, str]:
    local, _, domain = address.strip().casefold().rpartition("@")
    return f"{local.split('+', 1)[0]}@{domain}", domain


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("rcpt_mailbox", sa.String(length=320), nullable=True))
        batch.add_column(sa.Column("rcpt_domain", sa.String(length=255), nullable=True))
    op.create_index("ix_outbox_mailbox_kind_created", "outbox",
                    ["rcpt_mailbox", "kind", "created_at"])
    op.create_index("ix_outbox_domain_kind_created", "outbox",
                    ["rcpt_domain", "kind", "created_at"])
    # The limits look back one hour: rows of the last day are enough to fill in.
    outbox = sa.table("outbox", sa.column("id", sa.Integer()), sa.column("rcpt_to", sa.String()),
                      sa.column("created_at", sa.DateTime(timezone=True)),
                      sa.column("rcpt_mailbox", sa.String()), sa.column("rcpt_domain", sa.String()))
    connection = op.get_bind()
    since = datetime.now(UTC) - timedelta(days=1)
    rows = connection.execute(sa.select(outbox.c.id, outbox.c.rcpt_to).where(
        outbox.c.created_at >= since)).all()
    for row_id, rcpt_to in rows:
        mailbox, domain = _mailbox(rcpt_to)
        connection.execute(sa.update(outbox).where(outbox.c.id == row_id).values(
            rcpt_mailbox=mailbox, rcpt_domain=domain))


def downgrade() -> None:
    op.drop_index("ix_outbox_domain_kind_created", table_name="outbox")
    op.drop_index("ix_outbox_mailbox_kind_created", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("rcpt_domain")
        batch.drop_column("rcpt_mailbox")
        batch.drop_column("sealed")
