"""Every mail kind in every language: all listed, Japanese punctuation after links, and
the table of kinds (templates, Auto-Submitted, list headers, threading) as queue_mail
writes it into the outbox."""

from __future__ import annotations

import dataclasses
import re
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gateway.models import OutboxItem, Ticket
from gateway.notices import AUTOMATIC_ANSWERS
from gateway.runtime.app import Gateway
from outbound.mail import Mail, ReplyAs, queue_mail
from outbound.mail_kinds import MAIL_KINDS, MailKind, Threading
from outbound.render import LANGUAGES, TEMPLATE_PARTS, Renderer, default_templates_dir
from outbound.sealing import live_bytes
from tests.outbound.mail_kinds import CONTEXTS, context


def test_every_kind_is_listed() -> None:
    kinds = {p.name for p in (default_templates_dir() / "en").iterdir()
             if p.is_dir() and not p.name.startswith("_") and p.name != "pages"}
    assert kinds == set(CONTEXTS)


# Kinds written for agents only (agents_notice, escalation, delivery_failed) are English.
JAPANESE_KINDS = sorted(k for k in CONTEXTS if (default_templates_dir() / "ja" / k).is_dir())


@pytest.mark.parametrize("kind", JAPANESE_KINDS)
def test_japanese_mail_uses_japanese_punctuation_after_links(kind: str) -> None:
    # Given a Japanese mail
    mail = Renderer().render(kind, "ja", context(kind))
    assert mail.language == "ja"

    # Then no Western full stop or comma follows a link, nor a Japanese word
    assert not re.search(r"</a>\s*[.,]", mail.html), mail.html
    assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff][.,](?:\s|$)", mail.text + mail.html)
    # And no blank follows a Japanese full stop before a link
    assert "。 <a" not in mail.html



# --- the table of mail kinds (outbound/mail_kinds.py) and queue_mail (outbound/mail.py) ---

def test_every_kind_has_its_templates_in_every_language_it_is_written_in() -> None:
    # Given the table of kinds and the templates folder
    templates = default_templates_dir()
    for kind, spec in MAIL_KINDS.items():
        # Then mail for customers exists in all five languages, mail for agents in English
        languages = ("en",) if spec.to_agents else LANGUAGES
        for language in languages:
            for part in TEMPLATE_PARTS:
                assert (templates / language / spec.template / part).is_file(), (
                    kind, language, part)


def test_the_table_covers_every_kind_and_every_template_folder() -> None:
    assert set(MAIL_KINDS) == set(MailKind)
    assert {spec.template for spec in MAIL_KINDS.values()} == set(CONTEXTS)


def test_the_stored_kind_strings_and_the_answer_gate_are_unchanged() -> None:
    # The outbox's kind column holds these strings: rows already queued depend on them.
    assert {kind.value for kind in MailKind} == set(CONTEXTS)
    assert set(AUTOMATIC_ANSWERS) == {"acknowledgement", "duplicate_notice", "reply_refused",
                                      "reopened", "ticket_list"}


def _ticket(session: Session) -> Ticket:
    ticket = Ticket(subject="Sync stopped", requester="anna@acme.example",
                    requester_name="Anna", origin_message_id="root@acme.example")
    session.add(ticket)
    session.flush()
    return ticket


def _mail(kind: MailKind, ticket: Ticket) -> Mail:
    """A mail of ``kind`` as its builder above ``outbound`` would make it."""
    spec = MAIL_KINDS[kind]
    to = "agents@support.example" if spec.to_agents else "anna@acme.example"
    return Mail(
        kind, to, context(kind), to_name="Anna", language="ja",
        reply_as=ReplyAs(ticket, "requester") if spec.threading is Threading.TICKET else None,
        ticket_number=None if spec.threading is Threading.TICKET else ticket.number,
        in_reply_to=None if spec.threading is Threading.NONE else "<m2@acme.example>",
        references=() if spec.threading is Threading.NONE else ["<root@acme.example>"],
        list_headers={"List-Unsubscribe": "<https://support.example/unsubscribe/x>",
                      "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                      "Precedence": "bulk"} if spec.list_headers else {})


# One kind of each family: answer on a ticket, a person's words relayed, answer without a
# ticket, bulk, grant (starts nothing), and mail for the support team.
FAMILIES = [MailKind.ACKNOWLEDGEMENT, MailKind.AGENT_REPLY, MailKind.TICKET_LIST,
            MailKind.QUARTERLY, MailKind.GRANT_ACTIVATION, MailKind.ESCALATION]


@pytest.mark.parametrize("kind", FAMILIES)
def test_the_composed_mail_carries_what_its_kind_row_says(gateway: Gateway,
                                                          kind: MailKind) -> None:
    spec = MAIL_KINDS[kind]
    with gateway.db.transaction() as session:
        # Given a ticket and a mail of this kind for it, asked for in Japanese
        ticket = _ticket(session)
        before = session.scalar(select(func.count(OutboxItem.id)))

        # When it is queued
        item = queue_mail(session, gateway.services.renderer, _mail(kind, ticket),
                          secret=gateway.services.secret)

        # Then exactly one outbox row holds it, under the stored kind string
        assert session.scalar(select(func.count(OutboxItem.id))) == (before or 0) + 1
        assert item.kind == kind.value and item.ticket_number == ticket.number
        message = message_from_bytes(live_bytes(gateway.services.secret, item),
                                     policy=policy.default)

    # And its headers are the ones its row in the table calls for
    assert message["Auto-Submitted"] == spec.auto_submitted
    assert ("X-Auto-Response-Suppress" in message) == (spec.auto_submitted is not None)
    assert ("List-Unsubscribe" in message) == spec.list_headers
    assert ("Reply-To" in message) == (spec.threading is Threading.TICKET)
    if spec.threading is Threading.TICKET:
        assert str(message["Reply-To"]).startswith("support+")
    if spec.threading is Threading.NONE:
        assert "In-Reply-To" not in message and "References" not in message
    else:
        assert message["In-Reply-To"] == "<m2@acme.example>"
        assert str(message["References"]).split() == ["<root@acme.example>",
                                                      "<m2@acme.example>"]
    # And mail for the support team is in English, the rest in the language asked for
    assert message["Content-Language"] == ("en" if spec.to_agents else "ja")
    assert message["X-Loop"] == message["From"].addresses[0].addr_spec


def test_mail_with_a_secret_link_is_stored_redacted_and_sealed(gateway: Gateway) -> None:
    with gateway.db.transaction() as session:
        # Given an activation mail (its link lets whoever holds it grant access)
        secret_link = "https://support.example/grants/activate/" + "k3Y" * 15
        mail = Mail(MailKind.GRANT_ACTIVATION, "anna@acme.example",
                    {**context(MailKind.GRANT_ACTIVATION), "activate_url": secret_link},
                    language="de")

        # When it is queued with the gateway key
        item = queue_mail(session, gateway.services.renderer, mail,
                          secret=gateway.services.secret)

        # Then the stored copy holds no token, and the sealed copy is the live mail
        assert b"k3Yk3Y" not in item.raw and b"/grants/activate/REDACTED" in item.raw
        assert item.sealed is not None
        live = message_from_bytes(live_bytes(gateway.services.secret, item),
                                  policy=policy.default)
        body = live.get_body(("plain",))
        assert body is not None and secret_link in body.get_content()


@pytest.mark.parametrize("change", [
    {"reply_as": None},  # ticket mail without a reply address
    {"list_headers": {}},  # bulk mail without List-Unsubscribe
])
def test_a_mail_that_contradicts_its_kind_is_refused(gateway: Gateway,
                                                     change: dict[str, Any]) -> None:
    with gateway.db.transaction() as session:
        ticket = _ticket(session)
        kind = MailKind.ACKNOWLEDGEMENT if "reply_as" in change else MailKind.QUARTERLY
        mail = dataclasses.replace(_mail(kind, ticket), **change)
        with pytest.raises(ValueError, match=kind.value):
            queue_mail(session, gateway.services.renderer, mail, secret=gateway.services.secret)
        assert session.scalar(select(func.count(OutboxItem.id))) == 0


@pytest.mark.parametrize("kind", FAMILIES)
def test_the_returned_row_is_the_stored_row_and_leaves_nothing_to_flush(
        gateway: Gateway, kind: MailKind) -> None:
    # The row is written by one INSERT … RETURNING, not by the unit of work: the object
    # queue_mail returns must be that row, column for column, as if it had been loaded.
    with gateway.db.transaction() as session:
        ticket = _ticket(session)
        item = queue_mail(session, gateway.services.renderer, _mail(kind, ticket),
                          secret=gateway.services.secret)
        # Then the session holds it as persistent and unchanged (no second INSERT later)
        assert item not in session.new and item not in session.dirty
        assert session.get(OutboxItem, item.id) is item
        stored = session.execute(select(OutboxItem.__table__).where(
            OutboxItem.id == item.id)).mappings().one()
        loaded = {column: getattr(item, column) for column in stored}
    # And every column reads back the same after the commit, in a session of its own
    with gateway.db.reading() as session:
        again = session.get(OutboxItem, item.id)
        assert again is not None
        for column, value in loaded.items():
            assert getattr(again, column) == value == stored[column] or (
                column.endswith("_at") and value is not None
                and getattr(again, column).replace(tzinfo=None) == value.replace(tzinfo=None)
            ), column
