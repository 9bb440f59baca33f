"""Forwarded mail: the original's sender, subject, text and the forwarder's words (issue 16).

Real forwards from the corpus (Gmail, Apple Mail quoted with ``>``, Outlook blocks in
English, German, Dutch and Italian) and hand-made ones in the forward formats of the
common clients in our five languages (the client strings checked against public code
that writes or reads them), plus a forward as an attached ``message/rfc822``.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from inbound.parsing.analysis import analyze
from inbound.parsing.forwarded import Forwarded, find_forward, is_forward_subject
from inbound.parsing.message import parse_message
from tests.corpus import corpus_dir
from tests.mail import make_mail


def forward_of(body: str, subject: str = "Fwd: Drucker") -> Forwarded | None:
    raw = make_mail(sender="kenji@support.example", subject=subject, body=body)
    return find_forward(parse_message(raw))


# -- the corpus ----------------------------------------------------------------------------

CORPUS = [
    # (file, subject of the forward, address, name, subject, start of the original, words)
    ("replies/discourse-trimmer/forwarded_gmail.txt", "Fwd: x", "foo@discourse.org",
     "Foo Discourse", "This email is going to be forwarded", "Lorem ipsum dolor",
     "This email has been forwarded from Gmail."),
    ("replies/discourse-trimmer/forwarded_apple.txt", "Fwd: x", "foo@discourse.org",
     "Foo Discourse", "This email is going to be forwarded", "Lorem ipsum dolor",
     "This email has been forwarded from Apple Mail."),
    ("replies/discourse-trimmer/forwarded_message.txt", "Fwd: x", "foo@bar.com", "Some One",
     "Some subject that spans over 2 lines", "This is a forwarded email.", ""),
    ("replies/crisp-email-reply-parser/email_tricky_17_forward_header.txt", "Important",
     "john@example.com", "John Smith", "Important update", "This is the forwarded content",
     "See the forwarded message below."),
    ("replies/crisp-email-reply-parser/email_tricky_15_original_message_variations.txt",
     "FW: Test", "sender@example.com", "", "RE: Test", "This is the original message",
     "Fusce bibendum"),
    ("multilingual/crisp-email-reply-parser/email_german_outlook.txt", "WG: Ihre Anfrage",
     "max.m@beispiel.de", "Max Mustermann", "Ihre Anfrage", "This is the original message",
     "Fusce bibendum"),
    ("multilingual/crisp-email-reply-parser/email_12.txt", "Doorst: Curabitur",
     "questions@company.com", "Company Questions", "Curabitur dictum aliquet mollis.",
     "Etiam non sagittis orci", "Fusce bibendum"),
    ("multilingual/crisp-email-reply-parser/email_13.txt", "I: Curabitur",
     "questions@company.com", "Company Questions", "Curabitur dictum aliquet mollis.",
     "Etiam non sagittis orci", "Fusce bibendum"),
    ("multilingual/discourse-trimmer/embedded_email_german_3.txt", "WG: Some Subject",
     "team@discourse.org", "Discourse Team", "Some Subject", "Hallo! Wie geht es Ihnen",
     "Gruß Discourse"),
]


@pytest.mark.parametrize(("path", "subject", "address", "name", "original_subject", "text",
                          "words"), CORPUS, ids=[row[0].rsplit("/", 1)[1] for row in CORPUS])
def test_real_forwards_from_the_corpus(path: str, subject: str, address: str, name: str,
                                       original_subject: str, text: str, words: str) -> None:
    body = (corpus_dir() / path).read_text(encoding="utf-8")
    found = forward_of(body, subject)
    assert found is not None
    assert (found.from_address, found.from_name, found.subject) == (
        address, name, original_subject)
    assert found.text.startswith(text)
    assert found.words.startswith(words)
    assert found.how == "inline"
    assert ">" not in found.text.splitlines()[0]


def test_an_outlook_reply_block_under_a_reply_subject_is_no_forward() -> None:
    """Outlook writes the same block above a reply: without a forward subject it is a
    reply's quoted history, never a forward."""
    for path in ("replies/crisp-email-reply-parser/email_tricky_15_original_message_variations"
                 ".txt", "multilingual/crisp-email-reply-parser/email_german_outlook.txt",
                 "replies/crisp-email-reply-parser/email_msn.txt"):
        body = (corpus_dir() / path).read_text(encoding="utf-8")
        assert forward_of(body, "RE: Test") is None, path


def test_replies_of_the_corpus_are_no_forwards() -> None:
    """A reply's ``On … wrote:`` history is never read as a forward."""
    for path in ("multilingual/discourse-trimmer/embedded_email_dutch_1.txt",
                 "multilingual/discourse-trimmer/embedded_email_italian.txt",
                 "replies/discourse-trimmer/embedded_email_15.txt"):
        body = (corpus_dir() / path).read_text(encoding="utf-8")
        assert forward_of(body, "Re: x") is None, path


# -- the five languages, hand-made in each client's format --------------------------------

FORMATS = {
    "gmail-en": ("Can you help her?\n\n---------- Forwarded message ---------\n"
                 "From: Emma Stone <emma@client.example>\nDate: Mon, 30 Nov 2026 at 09:12\n"
                 "Subject: Printer offline\nTo: <kenji@support.example>\n\n\n"
                 "The printer is offline since this morning."),
    "gmail-de": ("Bitte übernehmen.\n\n---------- Weitergeleitete Nachricht ---------\n"
                 "Von: Emma Stone <emma@client.example>\nDate: Mo., 30. Nov. 2026 um 09:12 Uhr\n"
                 "Subject: Printer offline\nTo: <kenji@support.example>\n\n"
                 "The printer is offline since this morning."),
    "gmail-it": ("Potete aiutarla?\n\n---------- Messaggio inoltrato ---------\n"
                 "Da: Emma Stone <emma@client.example>\nDate: lun 30 nov 2026 alle ore 09:12\n"
                 "Subject: Printer offline\nTo: <kenji@support.example>\n\n"
                 "The printer is offline since this morning."),
    "gmail-nl": ("Kunnen jullie helpen?\n\n---------- Doorgestuurd bericht ---------\n"
                 "Van: Emma Stone <emma@client.example>\nDate: ma 30 nov 2026 om 09:12\n"
                 "Subject: Printer offline\nTo: <kenji@support.example>\n\n"
                 "The printer is offline since this morning."),
    "gmail-ja": ("対応をお願いします。\n\n---------- 転送メッセージ ---------\n"
                 "差出人: Emma Stone <emma@client.example>\n日付: 2026年11月30日(月) 9:12\n"
                 "件名: Printer offline\n宛先: <kenji@support.example>\n\n"
                 "The printer is offline since this morning."),
    "thunderbird-en": ("FYI\n\n-------- Forwarded Message --------\nSubject: \tPrinter offline\n"
                       "Date: \tMon, 30 Nov 2026 09:12:00 +0100\n"
                       "From: \tEmma Stone <emma@client.example>\n"
                       "To: \tkenji@support.example\n\n"
                       "The printer is offline since this morning."),
    "thunderbird-de": ("Zur Info\n\n-------- Weitergeleitete Nachricht --------\n"
                       "Betreff: \tPrinter offline\nDatum: \tMon, 30 Nov 2026 09:12:00 +0100\n"
                       "Von: \tEmma Stone <emma@client.example>\nAn: \tkenji@support.example\n\n"
                       "The printer is offline since this morning."),
    "thunderbird-ja": ("参考まで\n\n-------- 転送メッセージ --------\n件名: \tPrinter offline\n"
                       "日付: \tMon, 30 Nov 2026 09:12:00 +0100\n"
                       "差出人: \tEmma Stone <emma@client.example>\n"
                       "宛先: \tkenji@support.example\n\n"
                       "The printer is offline since this morning."),
    "apple-en": ("See below.\n\nBegin forwarded message:\n\n"
                 "From: Emma Stone <emma@client.example>\nSubject: Printer offline\n"
                 "Date: 30 November 2026 at 09:12:00 CET\nTo: kenji@support.example\n\n"
                 "The printer is offline since this morning."),
    "apple-de": ("Siehe unten.\n\n> Anfang der weitergeleiteten Nachricht:\n>\n"
                 "> Von: Emma Stone <emma@client.example>\n> Betreff: Printer offline\n"
                 "> Datum: 30. November 2026 um 09:12:00 MEZ\n> An: kenji@support.example\n>\n"
                 "> The printer is offline since this morning."),
    "apple-it": ("Vedi sotto.\n\nInizio messaggio inoltrato:\n\n"
                 "Da: Emma Stone <emma@client.example>\nOggetto: Printer offline\n"
                 "Data: 30 novembre 2026 09:12:00 CET\nA: kenji@support.example\n\n"
                 "The printer is offline since this morning."),
    "apple-nl": ("Zie hieronder.\n\nBegin doorgestuurd bericht:\n\n"
                 "Van: Emma Stone <emma@client.example>\nOnderwerp: Printer offline\n"
                 "Datum: 30 november 2026 om 09:12:00 CET\nAan: kenji@support.example\n\n"
                 "The printer is offline since this morning."),
    "apple-ja": ("下記をご確認ください。\n\n転送されたメッセージ:\n\n"
                 "差出人: Emma Stone <emma@client.example>\n件名: Printer offline\n"
                 "日付: 2026年11月30日 9:12:00 JST\n宛先: kenji@support.example\n\n"
                 "The printer is offline since this morning."),
    "outlook-en": ("Please have a look.\n\n-----Original Message-----\n"
                   "From: Emma Stone <emma@client.example>\n"
                   "Sent: Monday, November 30, 2026 9:12 AM\n"
                   "To: Kenji <kenji@support.example>\nSubject: Printer offline\n\n"
                   "The printer is offline since this morning."),
    "outlook-it": ("Guardate voi.\n\n-----Messaggio originale-----\n"
                   "Da: Emma Stone [mailto:emma@client.example]\nInviato: lunedì 30 novembre 2026 "
                   "09:12\nA: Kenji\nOggetto: Printer offline\n\n"
                   "The printer is offline since this morning."),
    "outlook-nl": ("Graag oppakken.\n\n-----Oorspronkelijk bericht-----\n"
                   "Van: Emma Stone <emma@client.example>\nVerzonden: maandag 30 november 2026 "
                   "09:12\nAan: Kenji\nOnderwerp: Printer offline\n\n"
                   "The printer is offline since this morning."),
    "outlook-de-rule": ("Bitte übernehmen.\n\n________________________________\n"
                        "Von: Emma Stone <emma@client.example>\nGesendet: Montag, 30. November "
                        "2026 09:12\nAn: Kenji\nBetreff: Printer offline\n\n"
                        "The printer is offline since this morning."),
    "outlook-ja": ("ご対応お願いします。\n\n差出人: Emma Stone <emma@client.example>\n"
                   "送信日時: 2026年11月30日 9:12\n宛先: Kenji\n件名: Printer offline\n\n"
                   "The printer is offline since this morning."),
}
OUTLOOK_SUBJECTS = {"outlook-en": "FW: Printer offline", "outlook-it": "I: Printer offline",
                    "outlook-nl": "Doorst: Printer offline",
                    "outlook-de-rule": "WG: Printer offline", "outlook-ja": "転送: Printer offline"}


@pytest.mark.parametrize("client", sorted(FORMATS))
def test_forward_formats_of_the_common_clients_in_five_languages(client: str) -> None:
    found = forward_of(FORMATS[client], OUTLOOK_SUBJECTS.get(client, "Fwd: Printer offline"))
    assert found is not None, client
    assert found.from_address == "emma@client.example"
    assert found.from_name == "Emma Stone"
    assert found.subject == "Printer offline"
    assert found.text == "The printer is offline since this morning."
    assert found.words and "Emma" not in found.words and "printer" not in found.words
    assert found.date


@pytest.mark.parametrize("client", sorted(OUTLOOK_SUBJECTS))
def test_outlook_blocks_need_a_forward_subject(client: str) -> None:
    """The very same block above a reply (``RE:``/``AW:``) is quoted history."""
    assert forward_of(FORMATS[client], "AW: Printer offline") is None


@pytest.mark.parametrize("subject", ["Fwd: a", "FW: a", "Fw: a", "WG: a", "I: a", "Doorst: a",
                                     "TR: a", "転送: a", "[ext] FW: a", "fwd[2]: a"])
def test_forward_subjects(subject: str) -> None:
    assert is_forward_subject(subject)


@pytest.mark.parametrize("subject", ["Re: a", "AW: a", "R: a", "Antw: a", "Forward planning",
                                     "Invoice: a", ""])
def test_no_forward_subjects(subject: str) -> None:
    assert not is_forward_subject(subject)


def test_a_marker_without_an_address_is_no_forward() -> None:
    """Exchange may write a name only: there is nobody to open the ticket for."""
    body = ("FYI\n\n---------- Forwarded message ---------\nFrom: Emma Stone\n"
            "Subject: Printer offline\n\nThe printer is offline.")
    assert forward_of(body) is None


def test_an_inline_message_id_line_is_kept() -> None:
    body = ("FYI\n\n-------- Forwarded Message --------\nSubject: Printer offline\n"
            "Message-ID: <abc.123@client.example>\nFrom: Emma <emma@client.example>\n\n"
            "Offline.")
    found = forward_of(body)
    assert found is not None and found.message_id == "abc.123@client.example"


def test_a_plain_request_is_no_forward() -> None:
    assert forward_of("Hello,\nfrom: today on the printer is offline.\n", "Printer") is None


# -- attached message/rfc822 ----------------------------------------------------------------

def attached_forward(subject: str = "Fwd: Printer offline") -> tuple[bytes, str]:
    original_id = make_msgid(domain="client.example")
    original = EmailMessage()
    original["From"] = "Emma Stone <emma@client.example>"
    original["To"] = "kenji@support.example"
    original["Subject"] = "Printer offline"
    original["Date"] = "Mon, 30 Nov 2026 09:12:00 +0100"
    original["Message-ID"] = original_id
    original.set_content("The printer is offline since this morning.")
    original.add_attachment(b"PNG", maintype="image", subtype="png", filename="screen.png")
    forward = EmailMessage()
    forward["From"] = "Kenji <kenji@support.example>"
    forward["To"] = "support@support.example"
    forward["Subject"] = subject
    forward["Message-ID"] = make_msgid(domain="support.example")
    forward.set_content("Emma's printer, see the attached mail.")
    forward.add_attachment(original)
    return forward.as_bytes(), original_id.strip("<>")


def test_an_attached_message_is_the_original_with_its_message_id() -> None:
    raw, original_id = attached_forward()
    found = analyze(raw).forwarded
    assert found is not None and found.how == "attached"
    assert (found.from_address, found.from_name, found.subject) == (
        "emma@client.example", "Emma Stone", "Printer offline")
    assert found.message_id == original_id
    assert found.text == "The printer is offline since this morning."
    assert found.words == "Emma's printer, see the attached mail."
    assert [a.filename for a in found.attachments] == ["screen.png"]


def test_an_attached_message_without_a_forward_subject_is_no_forward() -> None:
    raw, _ = attached_forward(subject="Spam report")
    assert analyze(raw).forwarded is None


def test_the_analysis_carries_the_inline_forward() -> None:
    raw = make_mail(sender="kenji@support.example", subject="Fwd: Printer offline",
                    body=FORMATS["gmail-en"])
    found = analyze(raw).forwarded
    assert found is not None and found.from_address == "emma@client.example"
    assert analyze(make_mail()).forwarded is None
