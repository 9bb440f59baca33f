"""The pipe with one recipient per delivery (the README's Postfix set-up): the copies of one
message to ``support@`` and to an address only the envelope carries (``unsubscribe+TOKEN@``,
``support+access@``) have the effect of one SMTP transaction with both RCPTs, in either order:
nothing is done twice, and the later copy's recipient is not lost."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from gateway.bulk.unsubscribe import is_unsubscribed, issue_token
from gateway.config import Settings
from gateway.directory import support_identity
from gateway.models import AccessRequest, OutboxItem, SpoolEntry
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from inbound.addresses import EnvelopeRole, envelope_role
from inbound.spool import store_message
from tests.conftest import run_gateway, settled, wait_for
from tests.mail import make_mail
from tests.rules.tickets import AUTHSERV, passed

ORDERS = [("support", "other"), ("other", "support")]
ORDER_IDS = ["support first", "support second"]


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Behind an MTA that authenticates senders: an agent's access request needs it."""
    return settings_factory(sender_authentication="authres", authserv_id=AUTHSERV)


def _pipe(settings: Settings, gateway: Gateway, raw: bytes, sender: str, recipient: str) -> str:
    """One delivery of the MTA's pipe, then wait until everything it caused is done."""
    piped = run_gateway(settings, "ingest", "-f", sender, "-r", recipient, "-", input=raw)
    assert piped.returncode == 0, piped.stderr.decode()
    wait_for(lambda: settled(gateway), message=f"the copy to {recipient} processed")
    return piped.stdout.decode()


def _tickets(settings: Settings) -> list[dict[str, Any]]:
    tickets: list[dict[str, Any]] = json.loads(
        run_gateway(settings, "tickets", "list", "--json").stdout)
    return tickets


def _sent(gateway: Gateway, kind: str) -> list[str]:
    with gateway.db.reading() as session:
        return sorted(session.scalars(select(OutboxItem.rcpt_to).where(OutboxItem.kind == kind)))


@pytest.mark.parametrize("order", ORDERS, ids=ORDER_IDS)
def test_support_and_unsubscribe_copies_ticket_once_and_unsubscribe(
        settings: Settings, gateway: Gateway, worker_process: None, order: tuple[str, str]
) -> None:
    with gateway.db.transaction() as session:
        token = issue_token(session, "max@acme.example", "announcements", 30)
    addresses = {"support": "support@support.example",
                 "other": f"unsubscribe+{token}@support.example"}
    raw = make_mail(sender="max@acme.example", subject="No more newsletters; and sync fails",
                    message_id="<copies-unsubscribe@acme.example>",
                    headers=passed("max@acme.example"))
    for which in order:
        _pipe(settings, gateway, raw, "max@acme.example", addresses[which])
    # The MTA retries a copy (a lost answer): a duplicate, nothing more.
    again = _pipe(settings, gateway, raw, "max@acme.example", addresses[order[1]])
    assert "(duplicate)" in again, again

    [ticket] = _tickets(settings)
    assert ticket["subject"] == "No more newsletters; and sync fails"
    assert ticket["requester"] == "max@acme.example"
    assert _sent(gateway, "acknowledgement") == ["max@acme.example"]
    with gateway.db.reading() as session:
        assert is_unsubscribed(session, "max@acme.example", "announcements")
        rows = session.scalars(select(SpoolEntry).order_by(SpoolEntry.id)).all()
        assert [row.rcpt_tos for row in rows] == [[addresses[order[0]]], [addresses[order[1]]]]
        assert rows[1].options["copy_of"] == rows[0].id


@pytest.mark.parametrize("order", ORDERS, ids=ORDER_IDS)
def test_support_and_access_copies_request_access_once(
        settings: Settings, gateway: Gateway, worker_process: None, order: tuple[str, str]
) -> None:
    addresses = {"support": "support@support.example", "other": "support+access@support.example"}
    raw = make_mail(sender="kenji@support.example", subject="#access team=acme",
                    body="I need to look at the sync logs.\n",
                    message_id="<copies-access@support.example>",
                    headers=passed("kenji@support.example"))
    for which in order:
        _pipe(settings, gateway, raw, "kenji@support.example", addresses[which])
    _pipe(settings, gateway, raw, "kenji@support.example", addresses[order[1]])  # a retry

    with gateway.db.reading() as session:
        [request] = session.scalars(select(AccessRequest)).all()
    assert (request.team_id, request.agent_email, request.via) == (
        "acme", "kenji@support.example", "mail")
    # One activation mail to the team's one person who may grant access, once.
    assert _sent(gateway, "grant_activation") == ["anna@acme.example"]
    # Nothing twice: at most the one ticket of the copy to support@ processed first.
    assert len(_tickets(settings)) == (1 if order[0] == "support" else 0)
    assert len(_sent(gateway, "acknowledgement")) <= 1


def test_a_copy_before_the_first_is_processed_adds_its_recipient_to_the_stored_row(
        gateway: Gateway) -> None:
    """When the first copy waits to be processed, its row gets the new recipient: the one
    processing sees both, as SMTP's one row with two RCPTs."""
    with gateway.db.reading() as session:
        identity = support_identity(session)

    def role_of(address: str) -> EnvelopeRole:
        return envelope_role(address, identity, gateway.settings.grant_address_tag)

    raw = make_mail(message_id="<waiting@acme.example>")
    first = store_message(gateway.db, raw, source="pipe", rcpt_tos=["support@support.example"],
                          role_of=role_of)
    second = store_message(gateway.db, raw, source="pipe",
                           rcpt_tos=['"support+access"@support.example'], role_of=role_of)
    same = store_message(gateway.db, raw, source="pipe", rcpt_tos=["Support@SUPPORT.example"],
                         role_of=role_of)
    assert (second.spool_id, second.duplicate, second.added) == (
        first.spool_id, True, ('"support+access"@support.example',))
    assert (same.spool_id, same.duplicate, same.added) == (first.spool_id, True, ())
    with gateway.db.reading() as session:
        row = session.get(SpoolEntry, first.spool_id)
        assert row is not None and row.rcpt_tos == [
            "support@support.example", '"support+access"@support.example']
        assert len(session.scalars(select(SpoolEntry.id)).all()) == 1


def test_without_roles_a_copy_is_a_duplicate_as_before(gateway: Gateway) -> None:
    """SMTP's spool writer and IMAP give no roles: a copy is a duplicate, stored once."""
    raw = make_mail(message_id="<plain@acme.example>")
    first = store_message(gateway.db, raw, source="smtp", rcpt_tos=["support@support.example"])
    second = store_message(gateway.db, raw, source="smtp",
                           rcpt_tos=["support+access@support.example"])
    assert (second.spool_id, second.duplicate, second.added) == (first.spool_id, True, ())


def test_after_an_unsubscribe_only_first_copy_the_message_is_processed_once(
        settings: Settings, gateway: Gateway, worker_process: None) -> None:
    """First copy unsubscribe-only, then copies to support@ and to further addresses of
    ours (a detail, the access address): the message is processed in full once, by the
    first copy that carries it; the later ones do only their own role."""
    with gateway.db.transaction() as session:
        token = issue_token(session, "max@acme.example", "announcements", 30)
    raw = make_mail(sender="max@acme.example", subject="Stop the newsletter; sync fails",
                    message_id="<copies-three@acme.example>",
                    headers=passed("max@acme.example"))
    for address in (f"unsubscribe+{token}@support.example", "support@support.example",
                    "support+whatever@support.example", "support+access@support.example"):
        _pipe(settings, gateway, raw, "max@acme.example", address)
    assert len(_tickets(settings)) == 1
    assert _sent(gateway, "acknowledgement") == ["max@acme.example"]


def test_an_access_request_made_by_the_first_copy_is_not_made_again_by_the_access_copy(
        settings: Settings, gateway: Gateway, worker_process: None) -> None:
    """An agent's ``#access`` line to support@ is the request: the copy to the access
    address then has nothing left to do."""
    raw = make_mail(sender="kenji@support.example", subject="Sync logs",
                    body="#access team=acme\nI need to look at the sync logs.\n",
                    message_id="<copies-access-line@support.example>",
                    headers=passed("kenji@support.example"))
    for address in ("support@support.example", "support+access@support.example"):
        _pipe(settings, gateway, raw, "kenji@support.example", address)
    with gateway.db.reading() as session:
        assert len(session.scalars(select(AccessRequest)).all()) == 1
    assert _sent(gateway, "grant_activation") == ["anna@acme.example"]


@pytest.mark.parametrize("processed", [False, True], ids=["waiting", "processed"])
def test_the_copies_of_one_message_carry_no_more_recipients_than_smtp_takes(
        gateway: Gateway, processed: bool) -> None:
    """An attacker pipes one message again and again, each copy to another
    ``unsubscribe+X@`` (always accepted): the message's rows together get at most
    ``max_recipients`` recipients, as one SMTP transaction (452 beyond), not a row or a
    recipient per copy without end."""
    with gateway.db.reading() as session:
        identity = support_identity(session)

    def role_of(address: str) -> EnvelopeRole:
        return envelope_role(address, identity, gateway.settings.grant_address_tag)

    raw = make_mail(message_id="<many-copies@acme.example>")
    limit = gateway.settings.max_recipients
    first = store_message(gateway.db, raw, source="pipe", rcpt_tos=["support@support.example"],
                          role_of=role_of, max_recipients=limit)
    if processed:
        process_spool_entry(gateway.db, gateway.services, first.spool_id)
    for n in range(limit + 20):
        store_message(gateway.db, raw, source="pipe",
                      rcpt_tos=[f"unsubscribe+t{n}@support.example"], role_of=role_of,
                      max_recipients=limit)
    with gateway.db.reading() as session:
        rows = session.scalars(select(SpoolEntry)).all()
    assert sum(len(row.rcpt_tos) for row in rows) == limit
