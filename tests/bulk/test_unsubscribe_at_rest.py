"""Secrets at rest for bulk mail (issue 12, item 6): once an announcement is delivered,
its unsubscribe tokens (link and mailto address) are in no row and no database file;
the one-click link from the mail still works."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gateway.config import Settings
from gateway.models import OutboxItem, OutboxStatus, Unsubscribe
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from outbound.sealing import MARKER
from tests.bulk.conftest import wait_delivered
from tests.bulk.test_unsubscribe import _announce, _links, _mail_to, _request
from tests.conftest import wait_for
from tests.secrets_scan import files_holding, rows_holding


def _all_sent(gateway: Gateway) -> bool:
    with gateway.db.reading() as session:
        return set(session.scalars(select(OutboxItem.status))) == {OutboxStatus.SENT}


def test_no_live_unsubscribe_token_in_the_database_after_delivery(
        serving: GatewayServer, bulk: Gateway, settings: Settings, tmp_path: Path) -> None:
    _announce(settings, tmp_path, "Maintenance at rest", "team:acme")
    wait_delivered(settings, 3)
    wait_for(lambda: _all_sent(bulk), message="every announcement settled")
    https, mailto = _links(_mail_to(settings, "anna@acme.example", "Maintenance at rest"))
    token = https.rsplit("/", 1)[1]
    assert token in mailto  # the same token in both forms
    assert rows_holding(bulk, token) == [] and files_holding(bulk, token) == []
    with bulk.db.reading() as session:
        rows = list(session.scalars(select(OutboxItem)))
    assert all(r.sealed is None and f"/unsubscribe/{MARKER}".encode() in r.raw for r in rows)
    # The link from the mail works
    status, _ = _request(https, "POST", b"List-Unsubscribe=One-Click")
    assert status == 200
    with bulk.db.reading() as session:
        assert session.scalar(select(Unsubscribe.email)) == "anna@acme.example"
