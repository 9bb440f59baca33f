"""``sender_authentication = "dkim"`` over real SMTP and a real name server: a signed admin
is believed, and a message whose key lookup hangs holds up nobody else (its lookups run
outside SQLite's writer lane and every transaction)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email.utils import make_msgid
from typing import Any

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import MessageRecord, SpoolEntry, SpoolState
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import wait_for
from tests.dns_server import NameServer, dkim_key_pair, name_server
from tests.e2e.test_conversations import mail_to
from tests.gateway.test_dkim_dns import signed
from tests.mail import make_mail, send


@pytest.fixture
def dns() -> Iterator[NameServer]:
    with name_server() as server:
        yield server


@pytest.fixture(params=[None, 0], ids=["processing-children", "processing-in-threads"])
def settings(settings_factory: Callable[..., Settings], dns: NameServer,
             request: pytest.FixtureRequest) -> Settings:
    overrides: dict[str, Any] = {"sender_authentication": "dkim",
                                 "dns_nameservers": [dns.address], "dkim_dns_seconds": 60.0,
                                 "processing_processes": request.param}
    return settings_factory(**overrides)


def spool_row(gw: Gateway, message_id: str) -> SpoolEntry | None:
    with gw.db.reading() as session:
        return session.scalar(select(SpoolEntry).where(
            SpoolEntry.message_id == message_id.strip("<>")))


def acknowledgement(settings: Settings, address: str, number: int) -> bool:
    return any(str(m["Subject"]).startswith(f"[#{number}]") for m in mail_to(settings, address))


def unverified_flags(gw: Gateway, number: int) -> list[str]:
    with gw.db.reading() as session:
        records = session.scalars(select(MessageRecord).where(
            MessageRecord.ticket_number == number)).all()
        return [f for r in records for f in r.flags if f.startswith("unverified sender")]


def test_a_hanging_key_lookup_holds_up_no_other_message(
        running: GatewayServer, gw: Gateway, settings: Settings, dns: NameServer) -> None:
    key, record = dkim_key_pair()
    dns.records["mail._domainkey.acme.example."] = record
    dns.hold()  # the name server receives the lookup and does not answer (yet)
    anna_id = make_msgid(domain="acme.example")
    anna = signed(make_mail(sender="anna@acme.example", subject="Sync fails",
                            body="Hello, sync fails on every laptop.", message_id=anna_id), key)
    send(settings.smtp_listen, anna, mail_from="anna@acme.example",
         rcpt_to="support@support.example")
    wait_for(lambda: "mail._domainkey.acme.example." in dns.asked,
             message="the key lookup of anna's message")

    # Meanwhile another customer's message is processed and acknowledged …
    max_id = make_msgid(domain="acme.example")
    send(settings.smtp_listen, make_mail(sender="max@acme.example", subject="VPN drops",
                                         body="The VPN drops every hour.", message_id=max_id),
         mail_from="max@acme.example", rcpt_to="support@support.example")
    number = wait_for(lambda: (r := spool_row(gw, max_id)) is not None and r.ticket_number,
                      message="max's ticket")
    wait_for(lambda: acknowledgement(settings, "max@acme.example", number),
             message="max's acknowledgement in the maildir")
    # … while anna's still waits for its key.
    row = spool_row(gw, anna_id)
    assert row is not None and row.state == SpoolState.RECEIVED

    dns.release()  # the resolver's retry gets the key: anna is verified
    done = wait_for(lambda: (r := spool_row(gw, anna_id)) is not None
                    and r.state != SpoolState.RECEIVED and r, timeout=60,
                    message="anna's message processed")
    assert done.state == SpoolState.PROCESSED and done.ticket_number is not None, done.reason
    assert unverified_flags(gw, done.ticket_number) == []
    # Control: max's unsigned message claimed an identity nothing vouched for.
    assert unverified_flags(gw, number) and "no DKIM signature" in unverified_flags(gw, number)[0]
