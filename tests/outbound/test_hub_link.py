"""Every mail to a person of the directory links to the hub (DESIGN §14); mail to strangers
(no hub to sign in to) and to the support team does not."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.models import OutboxItem, Ticket
from gateway.runtime.app import Gateway
from outbound.mail import Mail, ReplyAs, queue_mail
from outbound.mail_kinds import MAIL_KINDS, MailKind, Threading
from outbound.recipe import bytes_to_send
from outbound.render import LANGUAGES
from outbound.sealing import live_bytes
from tests.mail import make_mail
from tests.outbound.mail_kinds import context
from tests.pipeline.build import processed

PUBLIC_URL = "https://help.support.example/"
HUB = "https://help.support.example/hub/"
WORDS = {  # the footer's line in each language
    "en": "Your tickets and more on the support hub:",
    "ja": "チケットの確認やお問い合わせはサポートハブから：",
    "de": "Ihre Tickets und mehr im Support-Hub:",
    "it": "I suoi ticket e altro nell'hub di assistenza:",
    "nl": "Uw tickets en meer in de supporthub:"}
CUSTOMER_KINDS = [k for k, spec in MAIL_KINDS.items() if not spec.to_agents]


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory(public_url=PUBLIC_URL)


def _parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def _queued(gateway: Gateway, session: Session, kind: MailKind, to: str,
            language: str) -> tuple[str, str]:
    ticket = Ticket(subject="Sync stopped", requester=to, origin_message_id="r@acme.example")
    session.add(ticket)
    session.flush()
    spec = MAIL_KINDS[kind]
    data = {k: v for k, v in context(kind).items() if k != "hub_url"}  # queue_mail decides
    item = queue_mail(session, gateway.services.renderer, Mail(
        kind, to, data, language=language,
        reply_as=ReplyAs(ticket, "requester") if spec.threading is Threading.TICKET else None,
        ticket_number=None if spec.threading is Threading.TICKET else ticket.number,
        list_headers={"List-Unsubscribe": "<https://support.example/unsubscribe/x>"}
        if spec.list_headers else {}), secret=gateway.services.secret)
    message = message_from_bytes(live_bytes(gateway.services.secret, item),
                                 policy=policy.default)
    assert isinstance(message, EmailMessage)
    return _parts(message)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_customer_kind_links_to_the_hub_for_a_directory_person_only(
        gateway: Gateway, language: str) -> None:
    with gateway.db.transaction() as session:
        for kind in CUSTOMER_KINDS:
            # Given a mail of this kind to Anna (directory) and one to a stranger
            text, html = _queued(gateway, session, kind, "Anna@Acme.example", language)
            stranger_text, stranger_html = _queued(gateway, session, kind,
                                                   "someone@elsewhere.example", language)
            # Then Anna's links to the hub in both parts, in her mail's language
            assert f"{WORDS[language]}" in text and HUB in text, (kind, language)
            assert f'<a href="{HUB}"' in html, (kind, language)
            assert WORDS[language] in html, (kind, language)
            # And the stranger's does not (a kind may hold a link of its own below /hub/,
            # as the sign-in mail does: the footer's link and words are what must be absent)
            assert HUB not in stranger_text and HUB not in stranger_html, kind
            assert WORDS[language] not in stranger_text, kind
            assert WORDS[language] not in stranger_html, kind


def test_mail_for_the_support_team_never_links_to_the_hub(gateway: Gateway) -> None:
    with gateway.db.transaction() as session:
        for kind in [k for k, spec in MAIL_KINDS.items() if spec.to_agents]:
            # even when it is addressed to someone who is in the directory
            text, html = _queued(gateway, session, kind, "anna@acme.example", "de")
            assert HUB not in text and HUB not in html, kind


def _acknowledgement(gateway: Gateway, number: int) -> EmailMessage:
    with gateway.db.reading() as session:
        item = session.scalars(select(OutboxItem).where(
            OutboxItem.ticket_number == number, OutboxItem.kind == "acknowledgement")).one()
        raw = bytes_to_send(gateway.services.renderer, gateway.services.secret, item)
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_the_acknowledgement_of_a_real_request_links_to_the_hub_for_a_directory_person(
        gateway: Gateway) -> None:
    # Given a request from Anna (directory, German) and one from a stranger, processed by
    # the pipeline
    anna = processed(gateway, make_mail(sender="anna@acme.example"))
    stranger = processed(gateway, make_mail(sender="someone@elsewhere.example"))

    # Then Anna's acknowledgement links to the hub, in German, in text and HTML
    text, html = _parts(_acknowledgement(gateway, anna))
    assert f"Ihre Tickets und mehr im Support-Hub: {HUB}" in text
    assert f'Support-Hub: <a href="{HUB}"' in html
    # And the stranger's acknowledgement has no hub link
    assert all(HUB not in part for part in _parts(_acknowledgement(gateway, stranger)))
