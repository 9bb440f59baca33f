"""``detect_automatic`` against the shared real-world corpus and small synthetic mails.

The corpus is found by ``tests.corpus`` (``$GATEWAY_TEST_CORPUS`` or
``<repo>/../shared/corpus``); a missing corpus fails these tests, it never skips them.
Loop protection has two ways to fail: answering a robot (a loop) and ignoring a person
(a lost customer).  Both are tested: every automatic sample must be flagged, and no
personal or list mail may be taken for an auto-reply.
"""

from __future__ import annotations

import base64
import time
from email import policy
from email.parser import BytesParser
from functools import cache

import pytest

from inbound.parsing.automatic import AutomaticVerdict, detect_automatic
from inbound.parsing.bounces import detect_bounce
from tests.corpus import NOT_DELIVERY_REPORTS, corpus_bytes, corpus_entries

# Kinds that make the pipeline treat a mail as an auto-reply (dropped unless it threads).
REPLY_KINDS = {"auto_reply", "challenge_response", "read_receipt"}


@cache
def _verdict(folder: str, name: str) -> AutomaticVerdict | None:
    return detect_automatic(corpus_bytes(folder, name))


def mail(headers: str, body: str = "Hello,\n\nplease help.\n") -> bytes:
    """A small message: the given header lines plus From/To unless they are given."""
    lines = headers.strip("\n")
    if "From:" not in lines:
        lines = "From: Alice <alice@example.com>\n" + lines
    if "To:" not in lines:
        lines += "\nTo: support@support.example"
    return (lines + "\n\n" + body).encode("utf-8")


# --------------------------------------------------------------------------- corpus


def test_every_autoreply_in_the_corpus_is_recognised_with_its_kind() -> None:
    # Given vacation replies, challenge/response robots and a read receipt
    rows = corpus_entries("autoreplies")
    assert len(rows) == 14
    wrong = []
    for entry in rows:
        verdict = _verdict("autoreplies", entry["file"])
        # Then each is automatic, of the kind the index gives, and not a bounce
        if verdict is None or verdict.kind != entry["expected_kind"]:
            wrong.append(f"{entry['file']}: expected {entry['expected_kind']}, got {verdict}")
        assert detect_bounce(corpus_bytes("autoreplies", entry["file"])) is None, entry["file"]
    assert not wrong, "\n".join(wrong)


def test_verdicts_name_their_evidence() -> None:
    for entry in corpus_entries("autoreplies"):
        verdict = _verdict("autoreplies", entry["file"])
        assert verdict is not None and verdict.reason and "\n" not in verdict.reason


def test_every_delivery_report_is_automatic_but_no_auto_reply() -> None:
    # Given the bounces, delay notices, successes and complaints of the corpus
    rows = [
        e for e in corpus_entries("bounces")
        if e.get("expected_is_automatic") and e["file"] not in NOT_DELIVERY_REPORTS
    ]
    assert len(rows) > 650
    missed, misnamed = [], []
    for entry in rows:
        verdict = _verdict("bounces", entry["file"])
        if verdict is None:
            missed.append(entry["file"])
        elif verdict.kind in REPLY_KINDS:
            misnamed.append(f"{entry['file']}: {verdict}")
    # Then each is machine mail, and none is mistaken for a person's out-of-office reply
    assert not missed, "\n".join(missed)
    assert not misnamed, "\n".join(misnamed)


def test_spam_and_forwards_filed_under_bounces_stay_personal() -> None:
    for name, why in NOT_DELIVERY_REPORTS.items():
        assert _verdict("bounces", name) is None, f"{name}: {why}"


def test_negative_controls_are_personal_and_the_lotus_notes_reply_is_an_auto_reply() -> None:
    for entry in corpus_entries("bounces"):
        if entry["expected_kind"] == "human":
            assert _verdict("bounces", entry["file"]) is None, entry["file"]
    # "AUTO: Smith, John is out of the office." is filed as a non-bounce warning.
    verdict = _verdict("bounces", "bounceparser/warning-6.msg")
    assert verdict is not None and verdict.kind == "auto_reply"


@pytest.mark.parametrize("folder", ["replies", "multilingual", "threads"])
def test_personal_and_list_mail_is_never_an_auto_reply(folder: str) -> None:
    rows = [e for e in corpus_entries(folder) if e["format"] == "rfc822"]
    assert rows
    flagged = [
        f"{e['file']}: {v}"
        for e in rows
        if (v := _verdict(folder, e["file"])) is not None and v.kind in REPLY_KINDS
    ]
    assert not flagged, "\n".join(flagged)


def test_mailing_list_archives_are_bulk() -> None:
    # Given archived list mail that carries a List-Id header
    parser = BytesParser(policy=policy.compat32)
    listed = [
        e for e in corpus_entries("threads")
        if parser.parsebytes(corpus_bytes("threads", e["file"]), headersonly=True).get("list-id")
    ]
    assert len(listed) > 200
    # Then each is bulk mail (a ticket may open, but nothing is sent back to a list)
    verdicts = {e["file"]: _verdict("threads", e["file"]) for e in listed}
    wrong = [f"{name}: {v}" for name, v in verdicts.items() if v is None or v.kind != "bulk"]
    assert not wrong, "\n".join(wrong)


def test_malformed_mail_never_raises_and_stays_fast() -> None:
    slowest = (0.0, "")
    for entry in corpus_entries("malformed"):
        started = time.perf_counter()
        detect_automatic(corpus_bytes("malformed", entry["file"]))
        slowest = max(slowest, (time.perf_counter() - started, entry["file"]))
    assert slowest[0] < 2.0, slowest


# --------------------------------------------------------------------------- synthetic


def test_x_auto_response_suppress_alone_is_ordinary_outlook_mail() -> None:
    raw = mail("Subject: Printer question\nX-Auto-Response-Suppress: All\n"
               "X-MS-Has-Attach:\nThread-Topic: Printer question")
    assert detect_automatic(raw) is None


def test_auto_submitted_no_is_a_person() -> None:
    assert detect_automatic(mail("Subject: Help\nAuto-Submitted: no")) is None
    assert detect_automatic(mail("Subject: Help\nAuto-Submitted: No (manual)")) is None


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        ("Auto-Submitted: auto-replied", "auto_reply"),
        ("Auto-Submitted: auto-replied (vacation)", "auto_reply"),
        ("Auto-Submitted: auto-generated", "auto_generated"),
        ("Auto-Submitted: auto-notified; owner-email=x@y", "auto_generated"),
        ("X-Autoreply: yes", "auto_reply"),
        ("X-Autorespond: Out of office", "auto_reply"),
        ("X-Autoreply-From: alice@example.com", "auto_reply"),
        ("Precedence: auto_reply", "auto_reply"),
        ("Precedence: bulk", "bulk"),
        ("Precedence: list", "bulk"),
        ("List-Id: <users.lists.example.org>", "bulk"),
        ("List-Unsubscribe: <https://news.example.com/u/1>", "bulk"),
        ("X-Loop: alerts@example.com", "auto_generated"),
    ],
)
def test_rfc3834_and_practice_headers(header: str, kind: str) -> None:
    verdict = detect_automatic(mail(f"Subject: Your request\n{header}"))
    assert verdict is not None and verdict.kind == kind, verdict
    assert header.split(":")[0].lower() in verdict.reason.lower()


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Your ticket",
        "Auto Reply: Your ticket",
        "AutoReply: Your ticket",
        "Out of Office: Your ticket",
        "Out of Office AutoReply: Your ticket",
        "AUTO: Jane Doe is out of the office (returning 05/01)",
        "Abwesenheitsnotiz: Ihre Anfrage",
        "Automatische Antwort: Ihre Anfrage",
        "Afwezig: uw vraag",
        "Automatisch antwoord: uw vraag",
        "Risposta automatica: la sua richiesta",
        "Fuori sede: la sua richiesta",
        "Réponse automatique : votre demande",
        "Respuesta automática: su consulta",
        "Autosvar: din fråga",
        "[Automatyczna odpowiedź] test",
        "Autoodpowiedź: test",
        "Автоответ: ваш запрос",
        "自動応答: お問い合わせ",
        "不在: お問い合わせ",
        "Re: blah blah (Automatic Response)",
    ],
)
def test_auto_reply_subjects(subject: str) -> None:
    # Given the subject raw in UTF-8 and RFC 2047 encoded, as clients send it
    encoded = "=?utf-8?b?" + base64.b64encode(subject.encode()).decode() + "?="
    for header in (subject, encoded):
        verdict = detect_automatic(mail(f"Subject: {header}"))
        # Then it is an auto-reply
        assert verdict is not None and verdict.kind == "auto_reply", (header, verdict)


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Automatic reply: Your ticket",
        "Out of office policy question",
        "Question about auto reply settings",
        "Vacation request for May",
        "Auto: Reifenwechsel im Winter",
        "不在票について",
        "Thank you for your email",
    ],
)
def test_people_writing_about_auto_replies_are_people(subject: str) -> None:
    assert detect_automatic(mail(f"Subject: {subject}",
                                 "I'll be out of office next week, on vacation.\n")) is None


def test_weak_subjects_count_with_a_second_signal() -> None:
    raw = mail("Subject: Thank you for your email\nX-Auto-Response-Suppress: All")
    verdict = detect_automatic(raw)
    assert verdict is not None and verdict.kind == "auto_reply"
    assert detect_automatic(mail("Subject: Auto: Reifenwechsel\nX-Loop: x@y.example")) == (
        AutomaticVerdict("auto_reply", 'auto-reply subject "Auto: Reifenwechsel" with X-Loop'))


def test_vacation_program_reply_with_null_sender() -> None:
    # vacation(1): "Precedence: junk", mailed with MAIL FROM:<>
    raw = mail("Subject: Re: Your ticket\nPrecedence: junk")
    verdict = detect_automatic(raw, "<>")
    assert verdict is not None and verdict.kind == "auto_reply"
    assert detect_automatic(raw, "alice@example.com") == AutomaticVerdict(
        "bulk", "Precedence: junk header")


def test_envelope_sender() -> None:
    raw = mail("Subject: Status")
    # "<>" is the null sender (aiosmtpd passes it so); "" means unknown (IMAP, pipe).
    verdict = detect_automatic(raw, "<>")
    assert verdict is not None and verdict.kind == "auto_generated"
    assert detect_automatic(raw, "") is None
    assert detect_automatic(raw, "alice@example.com") is None
    verdict = detect_automatic(mail("Return-Path: <>\nSubject: Status"), "")
    assert verdict is not None and verdict.kind == "auto_generated"


@pytest.mark.parametrize(
    "sender",
    ["MAILER-DAEMON@mx.example.net", "postmaster@example.net", "noreply@shop.example",
     "no-reply@shop.example", "do-not-reply@shop.example", "donotreply@shop.example",
     "bounce@lists.example.org"],
)
def test_robot_senders(sender: str) -> None:
    verdict = detect_automatic(mail(f"From: {sender}\nSubject: Your order"))
    assert verdict is not None and verdict.kind == "auto_generated"
    assert sender.lower() in verdict.reason


def test_read_receipt() -> None:
    raw = mail(
        "Subject: Read: Your ticket\nMIME-Version: 1.0\nContent-Type: multipart/report; "
        "report-type=disposition-notification; boundary=R",
        "--R\nContent-Type: text/plain\n\nYour message was displayed.\n--R\n"
        "Content-Type: message/disposition-notification\n\n"
        "Final-Recipient: rfc822; alice@example.com\nOriginal-Message-ID: <t-1@support.example>\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\n--R--\n",
    )
    verdict = detect_automatic(raw)
    assert verdict is not None and verdict.kind == "read_receipt"
    # A person *asking* for a receipt is still a person.
    assert detect_automatic(mail("Subject: Hi\nDisposition-Notification-To: alice@example.com")) \
        is None


def test_challenge_response() -> None:
    raw = mail("From: noreply@boxbe.com\nSubject: Re: Your ticket (Action Required)",
               "Please add yourself to my Guest List so your messages will go to my Inbox.\n")
    verdict = detect_automatic(raw)
    assert verdict is not None and verdict.kind == "challenge_response"
    verdict = detect_automatic(mail("Subject: RE: Your ticket\nX-Bluebottle-Request: <1>"))
    assert verdict is not None and verdict.kind == "challenge_response"


def test_a_person_asking_about_a_guest_list_is_no_challenge() -> None:
    raw = mail("Subject: Conference",
               "Please add yourself to the guest list; the venue requires confirmation.\n")
    assert detect_automatic(raw) is None


def test_bounces_are_auto_generated() -> None:
    raw = mail(
        "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice",
        "Hi. This is the qmail-send program at mx.example.net.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
        "<bob@example.org>:\nRemote host said: 550 5.1.1 No such user\n",
    )
    verdict = detect_automatic(raw)
    assert verdict is not None and verdict.kind == "auto_generated"
    assert "bob@example.org" in verdict.reason


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\n\n",
        b"\x00\xff" * 50_000,
        b"Subject: Automatic reply\rFrom: a@b\r\rbody",
        b"Subject: =?utf-8?b?!!!?= =?x-unknown?q?abc?=\n\nbody",
        b"Subject: \xff\xfe\xfd Abwesenheitsnotiz\n\nbody",
        b"X-Long: " + b"a" * 300_000 + b"\n\nbody",
    ],
    ids=["empty", "blank", "binary", "cr-only", "broken-encoded-words", "8bit-junk", "long"],
)
def test_hostile_input_never_raises(raw: bytes) -> None:
    started = time.perf_counter()
    detect_automatic(raw)
    detect_automatic(raw, "<>")
    assert time.perf_counter() - started < 2.0


def test_cr_only_line_endings_read_like_lf() -> None:
    raw = mail("Subject: Automatic reply: Your ticket")
    assert detect_automatic(raw.replace(b"\n", b"\r")) == detect_automatic(raw)
    assert detect_automatic(raw.replace(b"\n", b"\r\n")) == detect_automatic(raw)
