"""A new request's acknowledgement is queued as a recipe and composed at delivery, outside
the processing transaction (issue 18): what the requester receives is what composing at
once gave, every retry sends the same bytes, a secret never waits in a recipe, and a
template that fails at delivery ends the row dead with the reason, not in silence."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.models import OutboxItem, OutboxStatus, Ticket
from gateway.runtime.app import Gateway
from gateway.views import ticket_view
from outbound.compose import Envelope
from outbound.delivery import deliver_outbox_item
from outbound.mail import Mail, ReplyAs, queue_mail
from outbound.mail_kinds import MailKind
from outbound.recipe import Recipe, bytes_to_send
from outbound.render import renderer_for
from tests.mail import maildir_messages, make_mail
from tests.pipeline.build import processed


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], templates: Path) -> Settings:
    return settings_factory(templates_dir=templates)


def _sent(settings: Settings) -> Path:
    return Path(settings.outbound_url.removeprefix("maildir:"))


def _acknowledgement(gateway: Gateway, number: int) -> OutboxItem:
    with gateway.db.reading() as session:
        item = session.scalars(select(OutboxItem).where(
            OutboxItem.ticket_number == number, OutboxItem.kind == "acknowledgement")).one()
        session.expunge(item)
        return item


def _parsed(raw: bytes) -> EmailMessage:
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # a maildir file has LF ends


def _ticket(session: Session, origin: str) -> Ticket:
    """A ticket of Anna's, numbered (flushed), for mail queued by hand."""
    ticket = Ticket(subject="Sync stopped", requester="anna@acme.example",
                    origin_message_id=origin)
    session.add(ticket)
    session.flush()
    return ticket


def test_the_acknowledgement_waits_as_a_recipe_and_is_composed_once_at_delivery(
        gateway: Gateway, settings: Settings) -> None:
    # Given a new request processed (the ticket and its acknowledgement's row committed),
    number = processed(gateway, make_mail(sender="someone@elsewhere.example",
                                          subject="Export to PDF fails",
                                          body="The export stops at page three."))
    # then the row holds what to compose, its subject already, and no bytes yet;
    queued = _acknowledgement(gateway, number)
    assert queued.recipe is not None and queued.raw == b""
    assert queued.subject.startswith(f"[#{number}]") and "Export to PDF fails" in queued.subject
    # When it is delivered
    assert deliver_outbox_item(gateway.db, gateway.transport, settings, queued.id) == "sent"
    # then the requester has one mail with the row's Message-ID and subject, threaded to
    # the request, that quotes it,
    [mail] = maildir_messages(_sent(settings))
    assert mail["Message-ID"].strip("<>") == queued.message_id
    assert mail["Subject"] == queued.subject
    assert mail["In-Reply-To"] and mail["Reply-To"].startswith("support+")
    received = _parsed(mail.as_bytes())
    assert "The export stops at page three." in _text(received)
    # and the row keeps exactly those bytes, the recipe gone.
    sent = _acknowledgement(gateway, number)
    assert sent.status == OutboxStatus.SENT and sent.recipe is None
    assert _text(_parsed(sent.raw)) == _text(received)
    assert _parsed(sent.raw)["Date"] == mail["Date"]


def test_composing_later_gives_the_mail_composing_at_once_gives(
        gateway: Gateway) -> None:
    # Given one acknowledgement queued both ways for the same ticket,
    with gateway.db.transaction() as session:
        ticket = _ticket(session, "r@acme.example")
        context = {"ticket_number": ticket.number, "ticket_subject": "Sync stopped",
                   "requester_name": "Anna", "excerpt": "It stopped on Monday.",
                   "promise": None, "recommendations": [
                       {"id": "a1", "title": "Sync basics", "url": "https://kb.example/a1"}]}
        items = [queue_mail(session, gateway.services.renderer, Mail(
            MailKind.ACKNOWLEDGEMENT, "anna@acme.example", context, to_name="Anna",
            language="de", reply_as=ReplyAs(ticket, "requester"),
            in_reply_to="<r@acme.example>", references=["<r@acme.example>"],
            compose_later=later), secret=gateway.services.secret) for later in (False, True)]
        now, later = (_parsed(bytes_to_send(gateway.services.renderer,
                                            gateway.services.secret, item)) for item in items)
    # then only its new Message-ID and its Date differ: headers, both bodies and the
    # language are the same.
    assert items[0].recipe is None and items[1].recipe is not None
    skip = {"Message-ID", "Date", "Content-Type"}  # the boundary is chosen per mail
    assert [(k, v) for k, v in now.items() if k not in skip] == \
        [(k, v) for k, v in later.items() if k not in skip]
    assert _text(now) == _text(later)
    html = [m.get_body(("html",)) for m in (now, later)]
    assert html[0] is not None and html[1] is not None
    assert html[0].get_content() == html[1].get_content()


def test_view_data_with_a_secret_link_is_composed_at_once_and_sealed(
        gateway: Gateway) -> None:
    # Given a mail asked to compose later whose view data holds a secret link,
    with gateway.db.transaction() as session:
        ticket = _ticket(session, "r2@acme.example")
        link = "https://support.example/satisfaction/s3cr3tT0ken"
        item = queue_mail(session, gateway.services.renderer, Mail(
            MailKind.ACKNOWLEDGEMENT, "anna@acme.example",
            {"ticket_number": ticket.number, "ticket_subject": "Sync stopped",
             "requester_name": "Anna", "excerpt": f"See {link}", "promise": None,
             "recommendations": []},
            reply_as=ReplyAs(ticket, "requester"), compose_later=True),
            secret=gateway.services.secret)
        # then no recipe keeps it in clear: the row is composed, redacted and sealed now.
        assert item.recipe is None and item.raw and item.sealed is not None
        assert b"s3cr3tT0ken" not in item.raw


def test_a_template_that_fails_at_delivery_ends_the_row_dead_with_the_reason(
        gateway: Gateway, settings: Settings, templates: Path) -> None:
    # Given a request processed, its acknowledgement waiting as a recipe,
    number = processed(gateway, make_mail(sender="someone@elsewhere.example",
                                          subject="Printer offline"))
    queued = _acknowledgement(gateway, number)
    assert queued.recipe is not None
    # When an operator's edit breaks the English body before delivery (a name the view
    # data does not have: only rendering finds it),
    body = templates / "en" / "acknowledgement" / "body.txt.j2"
    body.write_text(body.read_text() + "\n{{ no_such_field }}\n")
    # then delivery sends nothing and ends the row dead, saying why,
    assert deliver_outbox_item(gateway.db, gateway.transport, settings, queued.id) == "dead"
    assert maildir_messages(_sent(settings)) == []
    dead = _acknowledgement(gateway, number)
    assert dead.status == OutboxStatus.DEAD
    assert "could not compose the mail" in dead.last_error
    assert "no_such_field" in dead.last_error
    # and the ticket stays as it was made.
    with gateway.db.reading() as session:
        assert session.scalars(select(Ticket.subject).where(
            Ticket.number == number)).one() == "Printer offline"


def test_a_ticket_shows_an_acknowledgement_not_composed_yet_with_its_text(
        gateway: Gateway, settings: Settings) -> None:
    # Given a request processed and its acknowledgement not delivered yet,
    number = processed(gateway, make_mail(sender="someone@elsewhere.example",
                                          subject="Scanner", body="The scanner jams."))
    # then the ticket's history (``gateway tickets show``) lists it with the text it will
    # carry, rendered from the recipe.
    with gateway.db.reading() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
        sent = session.scalars(select(OutboxItem).where(
            OutboxItem.ticket_number == number)).all()
        view = ticket_view(ticket, with_messages=True, sent=sent,
                           renderer=renderer_for(settings.templates_dir))
    [ack] = [m for m in view["messages"] if m["role"] == "system"]
    assert "The scanner jams." in ack["text"] and f"[#{number}]" in ack["text"]


def test_a_recipe_as_json_holds_every_field_and_reads_back_equal() -> None:
    # A field added to the recipe or its envelope must not be dropped on the way to the
    # outbox row: the JSON is what dataclasses.asdict gives, and reads back equal.
    recipe = Recipe(
        template="acknowledgement", language="de",
        context={"ticket_number": 7, "excerpt": "Hallo", "recommendations": [{"title": "x"}]},
        envelope=Envelope(from_name="Support", from_address="support@support.example",
                          to_address="anna@acme.example", message_id="<a@support.example>",
                          to_name="Anna", reply_to="t+1@support.example",
                          in_reply_to="<c@acme.example>", references=["<c@acme.example>"]),
        date="2026-12-06T10:00:00+00:00", auto_submitted="auto-replied",
        extra_headers={"X-Ticket": "7"})
    data = recipe.to_json()
    assert data == asdict(recipe)
    assert Recipe.from_json(json.loads(json.dumps(data))) == recipe
