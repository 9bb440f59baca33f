"""``gateway mailboxes status [--json]``: where each shared mailbox's poller stands.

One row per configured mailbox and folder, read from the database (so it works
from any node, whichever ``serve`` process holds the poller lease).  JSON fields
(stable, may grow): mailbox, folder, role, holder, state (``ok`` | ``error`` |
``never polled``), uidvalidity, last_uid, last_poll, last_error, last_error_at, taken.
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import select

from gateway import leases
from gateway.cli.common import open_gateway, print_json
from gateway.config import Settings
from gateway.models import ImapFolderState
from gateway.runtime.app import Gateway
from gateway.views import iso

__all__ = ["mailboxes", "mailbox_status"]


def mailbox_status(gateway: Gateway) -> list[dict[str, Any]]:
    """The status rows of every configured mailbox folder."""
    settings: Settings = gateway.settings
    rows: list[dict[str, Any]] = []
    with gateway.db.reading() as session:
        states = {(s.mailbox, s.folder): s for s in session.scalars(select(ImapFolderState))}
    for config in settings.mailboxes:
        holder = leases.current_holder(gateway.db, f"imap:{config.name}")
        folders = [(config.inbox, "inbox")] + ([(config.sent, "sent")] if config.sent else [])
        for folder, role in folders:
            state = states.get((config.name, folder))
            error = state.last_error if state else ""
            polled = state.last_poll_at if state else None
            rows.append({
                "mailbox": config.name,
                "folder": folder,
                "role": role,
                "holder": holder,
                "state": "error" if error else "ok" if polled else "never polled",
                "uidvalidity": state.uidvalidity if state else None,
                "last_uid": state.last_uid if state else None,
                "last_poll": iso(polled),
                "last_error": error or None,
                "last_error_at": iso(state.last_error_at) if state and error else None,
                "taken": state.taken if state else 0,
            })
    return rows


@click.group()
def mailboxes() -> None:
    """Shared mailboxes polled over IMAP."""


@mailboxes.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def mailboxes_status(ctx: click.Context, as_json: bool) -> None:
    """Per mailbox and folder: last UID, last poll, last error, messages taken."""
    rows = mailbox_status(open_gateway(ctx))
    if as_json:
        print_json(rows)
        return
    if not rows:
        click.echo("no mailboxes are configured")
        return
    for row in rows:
        click.echo(f"{row['mailbox']:<16} {row['folder']:<16} {row['role']:<6} {row['state']:<12} "
                   f"last UID {row['last_uid'] if row['last_uid'] is not None else '-':<8} "
                   f"taken {row['taken']:<7} last poll {row['last_poll'] or '-'}")
        if row["last_error"]:
            click.echo(f"    error at {row['last_error_at']}: {row['last_error']}")
