"""Every mail to a person of the directory links to the hub (DESIGN §14); mail to strangers
(no hub to sign in to) and to the support team does not."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from gateway.config import Settings
from gateway.models import Ticket
from gateway.runtime.app import Gateway
from outbound.mail import Mail, ReplyAs, queue_mail
from outbound.mail_kinds import MAIL_KINDS, MailKind, Threading
from outbound.render import LANGUAGES
from outbound.sealing import live_bytes
from tests.conftest import run_gateway
from tests.mail import maildir_messages, make_mail
from tests.outbound.mail_kinds import context

PUBLIC_URL = "https://help.support.example/"
HUB = "https://help.support.example/hub/"
WORDS = {"en": "support hub", "ja": "サポートハブ", "de": "Support-Hub",
         "it": "hub di assistenza", "nl": "supporthub"}
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
            assert f'<a href="{HUB}"' in html and WORDS[language] in html, (kind, language)
            # And the stranger's does not
            assert "/hub/" not in stranger_text and "/hub/" not in stranger_html, kind
            assert WORDS[language] not in stranger_text, kind


def test_mail_for_the_support_team_never_links_to_the_hub(gateway: Gateway) -> None:
    with gateway.db.transaction() as session:
        for kind in [k for k, spec in MAIL_KINDS.items() if spec.to_agents]:
            # even when it is addressed to someone who is in the directory
            text, html = _queued(gateway, session, kind, "anna@acme.example", "de")
            assert "/hub/" not in text and "/hub/" not in html, kind


def _sent(tmp_path: Path, to: str) -> list[EmailMessage]:
    found = []
    for raw in maildir_messages(tmp_path / "sent"):
        message = message_from_bytes(raw.as_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        if to in str(message["To"]):
            found.append(message)
    return found


def test_the_acknowledgement_of_a_real_request_links_to_the_hub_for_a_directory_person(
        gateway: Gateway, settings: Settings, tmp_path: Path) -> None:
    # Given a request from Anna (directory, German) and one from a stranger, piped in
    for sender in ("anna@acme.example", "someone@elsewhere.example"):
        result = run_gateway(settings, "ingest", "-", input=make_mail(sender=sender))
        assert result.returncode == 0, result.stderr.decode()

    # Then Anna's acknowledgement links to the hub, in German, in text and HTML
    [anna] = _sent(tmp_path, "anna@acme.example")
    text, html = _parts(anna)
    assert f"Ihre Tickets und mehr im Support-Hub: {HUB}" in text
    assert f'Support-Hub: <a href="{HUB}"' in html
    # And the stranger's acknowledgement has no hub link
    [stranger] = _sent(tmp_path, "someone@elsewhere.example")
    assert all("/hub/" not in part for part in _parts(stranger))
