"""Replies as our customers' mail programs write them, over SMTP to a running gateway:
what a user checks is that each lands on the right ticket and that the ticket shows only
the words typed this time (German Outlook with a disclaimer and a Thread-Index only
follow-up, a Japanese phone with raw ISO-2022-JP and a full-width tag)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from gateway.config import Settings
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.e2e.test_conversations import acknowledgement, deliver, messages

HANS = "hans@kunde.example"
YAMADA = "yamada@kunde.example"
# An Outlook Thread-Index: 22 bytes for the conversation's first message, 5 per reply.
ROOT = bytes.fromhex("01dab5c12f3e8d0e4f2a9b6c11d44c2e9a7f03b1c2d4")
DISCLAIMER = ("Diese E-Mail enthält vertrauliche und/oder rechtlich geschützte Informationen. "
              "Wenn Sie nicht der richtige Adressat sind oder diese E-Mail irrtümlich erhalten "
              "haben, informieren Sie bitte sofort den Absender und vernichten Sie diese Mail.")


def _outlook(subject: str, text: str, *, replies: int, to: str = "support@support.example",
             in_reply_to: str | None = None) -> tuple[str, bytes]:
    """German Outlook desktop: text and HTML alternatives, Thread-Index and Thread-Topic."""
    message = EmailMessage()
    message["From"] = f"Hans Müller <{HANS}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message_id = make_msgid(domain="kunde.example")
    message["Message-ID"] = message_id
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
        message["References"] = in_reply_to
    message["Thread-Topic"] = "Drucker druckt nicht"
    message["Thread-Index"] = base64.b64encode(ROOT + b"\x00\x00\xa1\xb2\xc3" * replies).decode()
    message.set_content(text)
    paragraphs = "".join(f'<p class="MsoNormal">{line or "&nbsp;"}</p>'
                         for line in text.split("\n"))
    message.add_alternative(f"<html><body>{paragraphs}</body></html>", subtype="html")
    return message_id.strip("<>"), bytes(message)


def _history(subject: str) -> str:
    return ("Von: Example Support <support@support.example>\n"
            "Gesendet: Montag, 3. Juni 2024 10:15\nAn: Hans Müller <hans@kunde.example>\n"
            f"Betreff: {subject}\n\nHallo Hans,\nbitte starten Sie den Drucker neu.\n")


def test_outlook_replies_land_on_their_ticket_with_only_the_new_words(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    first = "Hallo,\n\nder Drucker im 2. Stock druckt nicht mehr.\n\nGrüße\nHans Müller"
    _id, raw = _outlook("Drucker druckt nicht", f"{first}\n\n{DISCLAIMER}\n", replies=0)
    opened = deliver(settings, gateway, raw, mail_from=HANS)
    number = opened.ticket_number
    assert number is not None
    ack = acknowledgement(settings, HANS, number)

    # Reply to the acknowledgement: Reply-To token, In-Reply-To, the history under "Von:".
    answer = "Neu gestartet, er druckt immer noch nicht.\n\nGrüße\nHans Müller"
    _id, raw = _outlook(f"AW: {ack['Subject']}",
                        f"{answer}\n\n{DISCLAIMER}\n\n{_history(str(ack['Subject']))}",
                        replies=1, to=str(ack["Reply-To"]), in_reply_to=str(ack["Message-ID"]))
    deliver(settings, gateway, raw, mail_from=HANS, rcpt_to=str(ack["Reply-To"]))

    # A follow-up from Outlook's Sent Items: no In-Reply-To, no References, no tag.
    later = "Nachtrag: die Fehlermeldung lautet 'Papierstau in Fach 2'."
    _id, raw = _outlook("AW: Drucker druckt nicht", f"{later}\n\nVon meinem iPhone gesendet\n",
                        replies=2)
    deliver(settings, gateway, raw, mail_from=HANS)

    stored = messages(gateway, number)
    assert [(m.text, m.threaded_by) for m in stored] == [
        (first, "new_ticket"), (answer, "reply_token"), (later, "thread_index")]


def test_a_japanese_phone_reply_lands_on_its_ticket_with_only_the_new_words(
        running: GatewayServer, gateway: Gateway, settings: Settings) -> None:
    def phone(subject: str, body: str) -> bytes:
        # Raw ISO-2022-JP in the Subject and a body without a charset, as older phones send.
        return (f"From: {YAMADA}\r\nTo: support@support.example\r\nMessage-ID: "
                f"{make_msgid(domain='kunde.example')}\r\nDate: "
                f"{format_datetime(datetime.now(UTC))}\r\nMIME-Version: 1.0\r\nSubject: "
                ).encode() + subject.encode("iso-2022-jp") + b"\r\n\r\n" + body.encode(
                    "iso-2022-jp").replace(b"\n", b"\r\n")

    opened = deliver(settings, gateway, phone("印刷できません", "プリンターが動きません。\n"),
                     mail_from=YAMADA)
    number = opened.ticket_number
    assert number is not None
    width = str.maketrans("0123456789", "０１２３４５６７８９")
    tag = f"［＃{str(number).translate(width)}］"
    reply = phone(f"Re: {tag} 印刷できません",
                  "再起動しましたが、まだ動きません。\n\n> プリンターを再起動してください。\n")
    deliver(settings, gateway, reply, mail_from=YAMADA)

    stored = messages(gateway, number)
    assert [(m.text, m.threaded_by) for m in stored] == [
        ("プリンターが動きません。", "new_ticket"),
        ("再起動しましたが、まだ動きません。", "subject_tag")]
    assert stored[0].subject == "印刷できません"
