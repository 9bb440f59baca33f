"""Processing guarantees: exactly-once effect, crash-loop quarantine, the sweep."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select, update

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import MessageRecord, OutboxItem, SpoolEntry, SpoolState, Ticket
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from inbound.spool import store_message
from tests.conftest import DIRECTORY, wait_for
from tests.mail import make_mail


def _counts(gateway: Gateway) -> tuple[int, int, int]:
    with gateway.db.reading() as session:
        return tuple(session.scalar(select(func.count()).select_from(model)) or 0  # type: ignore[return-value]
                     for model in (Ticket, MessageRecord, OutboxItem))


def test_processing_twice_has_the_effect_once(gateway: Gateway) -> None:
    stored = store_message(gateway.db, make_mail(subject="Twice"), source="smtp")
    first = process_spool_entry(gateway.db, gateway.services, stored.spool_id)
    second = process_spool_entry(gateway.db, gateway.services, stored.spool_id)
    assert first.state == second.state == "processed"
    assert first.outbox_ids and not second.outbox_ids
    assert _counts(gateway) == (1, 1, 1)


def test_message_that_keeps_crashing_the_worker_is_quarantined(gateway: Gateway) -> None:
    # Given a message whose processing was interrupted (worker killed) as often as allowed
    stored = store_message(gateway.db, make_mail(subject="Poison"), source="smtp")
    with gateway.db.transaction() as session:
        session.execute(update(SpoolEntry).where(SpoolEntry.id == stored.spool_id).values(
            attempts=gateway.settings.max_processing_attempts))
    # When a job picks it up again
    outcome = process_spool_entry(gateway.db, gateway.services, stored.spool_id)
    # Then it is parked with the reason instead of being tried forever
    assert outcome.state == "quarantined" and "interrupted 3 times" in outcome.reason
    with gateway.db.reading() as session:
        entry = session.get(SpoolEntry, stored.spool_id)
        assert entry is not None and entry.state == SpoolState.QUARANTINED
        assert entry.raw.startswith(b"From: ")
    assert _counts(gateway) == (0, 0, 0)


def test_sweep_enqueues_rows_nobody_enqueued(running: GatewayServer, gateway: Gateway) -> None:
    # Given a committed spool row whose job was lost (stored without enqueueing)
    stored = store_message(gateway.db, make_mail(subject="Lost job"), source="smtp")
    # Then the periodic sweep (stuck_after=5s in tests) gets it processed
    def processed() -> bool:
        with gateway.db.reading() as session:
            entry = session.get(SpoolEntry, stored.spool_id)
            return entry is not None and entry.state == SpoolState.PROCESSED
    wait_for(processed, timeout=30, message="the sweep to process the lost row")
    assert _counts(gateway)[0] == 1


def test_unknown_sender_gets_standard_support(gateway: Gateway) -> None:
    stored = store_message(gateway.db, make_mail(sender="stranger@nowhere.example"),
                           source="smtp")
    process_spool_entry(gateway.db, gateway.services, stored.spool_id)
    with gateway.db.reading() as session:
        ticket = session.scalars(select(Ticket)).one()
        message = session.scalars(select(MessageRecord)).one()
    assert ticket.tier == "standard" and ticket.team_id is None
    assert "not in the directory" in ticket.entitlement
    assert message.role == "requester" and message.team_id is None


def test_member_and_team_are_tagged_from_the_directory(
        settings_factory: Callable[..., Settings]) -> None:
    # Behind an MTA that checked DMARC: the team's plan belongs to a verified member.
    gateway = Gateway(settings_factory(sender_authentication="authres",
                                       authserv_id="mx.support.example"))
    with gateway.db.transaction() as session:
        load_directory_file(session, DIRECTORY)
    verified = {"Authentication-Results": "mx.support.example; dmarc=pass "
                "header.from=acme.example"}
    stored = store_message(gateway.db, make_mail(sender="max@acme.example", headers=verified),
                           source="smtp")
    process_spool_entry(gateway.db, gateway.services, stored.spool_id)
    with gateway.db.reading() as session:
        ticket = session.scalars(select(Ticket)).one()
        message = session.scalars(select(MessageRecord)).one()
    assert (ticket.team_id, ticket.tier, ticket.language) == ("acme", "enhanced", "de")
    assert (message.role, message.team_id) == ("requester", "acme")
    gateway.close()


def test_attachments_and_html_only_mail_are_kept_readable(gateway: Gateway) -> None:
    import hashlib
    from email.message import EmailMessage

    from gateway.views import ticket_view

    message = EmailMessage()
    message["From"], message["To"] = "anna@acme.example", "support@support.example"
    message["Subject"], message["Message-ID"] = "Screenshot", "<html-only@client.example>"
    message.set_content("<html><body><p>The <b>sync</b> fails.</p><ul><li>since Monday</li>"
                        "</ul></body></html>", subtype="html")
    pdf = b"%PDF-1.4 fake but bytes are bytes\n" * 20
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="log.pdf")
    stored = store_message(gateway.db, message.as_bytes(), source="smtp")
    process_spool_entry(gateway.db, gateway.services, stored.spool_id)
    with gateway.db.reading() as session:
        ticket = session.scalars(select(Ticket)).one()
        view = ticket_view(ticket, with_messages=True)
        [record] = session.scalars(select(MessageRecord)).all()
        [attachment] = record.attachments
        assert attachment.data == pdf
    [shown] = view["messages"]
    assert "The sync fails." in shown["text"] and "since Monday" in shown["text"]
    assert "<b>" not in shown["text"]
    assert shown["attachments"] == [{
        "filename": "log.pdf", "content_type": "application/pdf", "size": len(pdf),
        "sha256": hashlib.sha256(pdf).hexdigest(), "inline": False}]
