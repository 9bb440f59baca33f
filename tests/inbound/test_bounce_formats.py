"""Delivery reports and automatic replies in the formats the shared corpus lacks, each
classified from its content and headers alone (relayed with an ordinary envelope sender)
and, with the null sender, never a ticket.

The samples follow the wording of the MTAs and clients named (classic Postfix and Sendmail
notices without a DSN part, qmail, GroupWise, Lotus Notes, Exchange, nameserver errors,
delay warnings, list moderation, Chinese and Latvian), with our own addresses.
"""

from __future__ import annotations

import pytest

from gateway.pipeline.steps.guard_auto_reply import REPLY_KINDS
from inbound.parsing.analysis import analyze
from inbound.parsing.automatic import detect_automatic
from inbound.parsing.bounces import detect_bounce, is_mail_system

RELAY = "list-bounces@lists.example.org"


def _mail(headers: str, body: str) -> bytes:
    return (headers.strip() + "\nTo: support@support.example\nMessage-ID: <r1@mx.example.net>"
            "\n\n" + body).encode()


BOUNCES = {
    "postfix-plain": _mail(
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\n"
        "Subject: Undelivered Mail Returned to Sender",
        "This is the Postfix program at host mx.example.net.\n\n"
        "I'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients. It's attached below.\n\n"
        "<bob@example.org>: host mx.example.org[192.0.2.7] said: 550 5.1.1\n"
        "    <bob@example.org>: Recipient address rejected: User unknown\n"),
    "sendmail-plain": _mail(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>\n"
        "Subject: Returned mail: User unknown",
        "The original message was received at Mon, 1 Jan 2024 10:00:00 GMT\n"
        "from localhost [127.0.0.1]\n\n"
        "   ----- The following addresses had permanent fatal errors -----\n"
        "<bob@example.org>\n\n   ----- Transcript of session follows -----\n"
        "... while talking to mx.example.org.:\n>>> RCPT To:<bob@example.org>\n"
        "<<< 550 5.1.1 <bob@example.org>... User unknown\n"),
    "qmail": _mail(
        "From: MAILER-DAEMON@mx.example.net\nSubject: failure notice",
        "Hi. This is the qmail-send program at mx.example.net.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<bob@example.org>:\nSorry, no mailbox here by that name. (#5.1.1)\n"),
    "groupwise": _mail(
        "From: postmaster@gw.example.org\nSubject: Message status - undeliverable",
        "The message that you sent was undeliverable to the following:\n"
        "        bob (user not found)\n\nPossible causes:\n"
        "        The e-mail address was incorrect\n\n"
        "  Original Message Header:\n\n To: bob@example.org\n Subject: Printer\n"),
    "nameserver": _mail(
        "From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.net>\n"
        "Subject: Returned mail: Host unknown (Name server: example.invalid: host not found)",
        "The original message was received at Mon, 1 Jan 2024 10:00:00 GMT\n\n"
        "   ----- The following addresses had permanent fatal errors -----\n"
        "<bob@example.invalid>\n\n   ----- Transcript of session follows -----\n"
        "550 5.1.2 <bob@example.invalid>... Host unknown (Name server: example.invalid: "
        "host not found)\n"),
    "chinese": _mail(
        "From: =?utf-8?b?57O757uf566h55CG5ZGY?= <postmaster@mail.example.cn>\n"
        "Subject: =?utf-8?b?57O757uf6YCA5L+h?=\nContent-Type: text/plain; charset=utf-8",
        "您发送的邮件无法投递到以下地址:\n\nwang@example.cn: 550 用户不存在\n"),
    "latvian": _mail(
        "From: Pasta sistēma <pasts@pasts.example.lv>\n"
        "Subject: =?utf-8?q?Nepieg=C4=81d=C4=81ts=3A_J=C5=ABsu_zi=C5=86ojums?=\n"
        "Content-Type: text/plain; charset=utf-8",
        "Jūsu ziņojumu nevarēja piegādāt šiem adresātiem:\n\n"
        "janis@example.lv: 550 5.1.1 lietotājs nav atrasts\n"),
}


@pytest.mark.parametrize("name", list(BOUNCES))
def test_plain_text_bounces_are_recognised_from_their_content(name: str) -> None:
    report = detect_bounce(BOUNCES[name], RELAY)
    assert report is not None and report.kind == "bounce", name
    if name != "groupwise":  # names the local user only ("bob (user not found)")
        assert report.recipients, report
    assert all("@" in r.address for r in report.recipients), report
    assert all(r.address not in ("support@support.example", RELAY) for r in report.recipients)


def test_a_delivery_warning_is_a_temporary_delay() -> None:
    warning = _mail(
        "From: <postmaster@mail.example.org>\nSubject: Mail Delivery Warning",
        "This is an advisory-only email.  Please do not reply to it.\n\n"
        "Delivery of email to this address\n\n\"calvin@example.org\"\n\n"
        "has been postponed due to a full mailbox.\n\n"
        "We will continue to try to deliver your message over the next few days.\n")
    report = detect_bounce(warning, RELAY)
    assert report is not None and report.kind == "delay_notification"
    assert [r.address for r in report.recipients] == ["calvin@example.org"]
    assert not any(r.hard for r in report.recipients)


def test_list_moderation_notice_is_an_automatic_reply() -> None:
    notice = _mail(
        "From: help-bounces@lists.example.org\n"
        "Subject: Your message to Help awaits moderator approval\n"
        "X-List-Administrivia: yes\nList-Id: <help.lists.example.org>\nPrecedence: bulk",
        "Your mail to 'Help' with the subject\n\n    Printer\n\n"
        "Is being held until the list moderator can review it for approval.\n")
    verdict = detect_automatic(notice, RELAY)
    assert verdict is not None and verdict.kind in REPLY_KINDS
    # A person's subject with the same words, from a person, is a person's mail.
    person = _mail("From: anna@acme.example\nSubject: Your message awaits moderator approval?",
                   "Why is my post held?\n")
    assert detect_automatic(person, "anna@acme.example") is None


@pytest.mark.parametrize("subject", [
    "Automātiskā atbilde: Printeris", "自動回覆: 印表機", "Automatikus válasz: Nyomtató",
    "Réponse automatique : Imprimante", "Automatyczna odpowiedź: Drukarka",
])
def test_vacation_replies_in_more_languages(subject: str) -> None:
    raw = _mail(f"From: anna@acme.example\nSubject: {subject}", "Esmu atvaļinājumā.\n")
    verdict = detect_automatic(raw, "anna@acme.example")
    assert verdict is not None and verdict.kind == "auto_reply", subject


@pytest.mark.parametrize("sender", [
    "MAILER-DAEMON@mx.example.net", "postmaster@example.net",
    "Mail Delivery Subsystem <mail@mx.example.net>", '"Mail System" <>',
])
def test_mail_system_senders_never_open_a_ticket(sender: str) -> None:
    raw = _mail(f"From: {sender}\nSubject: Notice", "Something happened to your mail.\n")
    assert is_mail_system(sender)
    verdict = analyze(raw, RELAY).automatic
    assert verdict is not None and verdict.mail_system, sender


def test_the_null_envelope_marks_any_message_as_a_mail_systems_mail() -> None:
    raw = _mail("From: anna@acme.example\nSubject: Status", "All good.\n")
    verdict = detect_automatic(raw, "<>")
    assert verdict is not None and verdict.mail_system
    assert detect_automatic(raw, "anna@acme.example") is None
    # Robots that are not mail systems (shops, notifications) may still open tickets.
    for sender in ("anna@acme.example", "Anna <anna@acme.example>", "noreply@shop.example"):
        assert not is_mail_system(sender), sender
