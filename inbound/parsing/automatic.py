"""Recognise machine-written mail (RFC 3834 and practice) so that we never answer it.

An acknowledgement sent to an out-of-office reply, a mailing list or a robot starts a
mail loop, and a challenge/response system mailed by us asks *us* to prove we are
human.  ``detect_automatic`` reads one raw message and says what kind of automatic
mail it is, naming the evidence, or ``None`` when a person wrote it:

* ``auto_reply``: vacation / out-of-office / autoresponder replies;
* ``challenge_response``: "add me to your whitelist" anti-spam robots (Boxbe, ...);
* ``read_receipt``: RFC 8098 message disposition notifications;
* ``bulk``: mailing lists and newsletters (``Precedence: bulk/list``, ``List-Id``);
* ``auto_generated``: other robots, delivery reports, notifications.

Only headers and the first few kilobytes of the body are read, so the check is fast on
any input; it never raises.  They are read from the tree :mod:`inbound.parsing.source`
built once for every reader of the message (given raw bytes, it builds that tree).
Weak hints (``X-Auto-Response-Suppress``, which Outlook also puts on ordinary mail,
``Precedence: junk``, a "Thank you for your e-mail" subject) count only together.
Delivery reports are named ``auto_generated`` here; ``inbound.parsing.bounces`` tells
what bounced.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass, replace
from email.message import Message
from email.utils import getaddresses

from inbound.parsing.bounces import BounceReport, detect_bounce, is_mail_system
from inbound.parsing.headers import header_text
from inbound.parsing.phrases import Phrases
from inbound.parsing.source import MailSource, read_source

__all__ = ["AutomaticVerdict", "detect_automatic"]

log = logging.getLogger(__name__)

BODY_PEEK_BYTES = 16 * 1024


@dataclass(frozen=True)
class AutomaticVerdict:
    kind: str  # auto_reply | challenge_response | read_receipt | bulk | auto_generated
    reason: str  # one human sentence naming the evidence
    # Sent by a mail system (null envelope sender, MAILER-DAEMON/postmaster From):
    # such mail never opens a ticket, whatever else it is.
    mail_system: bool = False


# Subjects that only autoresponders write (anchored at the start, or AOL's suffix).
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*[\[(【]?\s*(?:"
    r"auto(?:matic|matische|matisch|matique|matico|matica|matisk|maattinen)?[- ]?"
    r"(?:reply|response|respons|answer|antwort|antwoord|svar|vastaus|réponse|risposta)|"
    r"automatic (?:reply|response)|out of (?:the )?office(?: auto ?reply)?|"
    r"abwesenheits(?:notiz|nachricht|meldung)|automatische antwort|automatisch antwoord|"
    r"afwezig(?:heidsbericht)?|risposta automatica|fuori sede|réponse automatique|"
    r"absence|respuesta automática|respuesta automatica|resposta automática|"
    r"automatyczna odpowied[źz]|autoodpowied[źz]|autosvar|automatisk svar|"
    r"automaattinen vastaus|automatická odpověď|automatická odpoveď|otomatik yanıt|"
    r"автоответ|автоматический ответ|自動応答|自動返信|自动回复|자동\s?(?:회신|응답)|"
    r"不在(?:通知|連絡|のお知らせ)?|vacation (?:reply|response|notice|message)|"
    r"on vacation|away from (?:the|my) office|autoresponder|"
    # More languages: Latvian, Lithuanian, Estonian, Hungarian, Romanian, Greek,
    # Turkish, South Slavic, Bulgarian, Ukrainian, Hebrew, Arabic, Chinese
    # (traditional), Vietnamese, Indonesian, and out-of-office words.
    r"autom[aā]tisk[aā] atbilde|automatinis atsakymas|automaatvastus|automaatne vastus|"
    r"automatikus v[aá]lasz|r[aă]spuns automat|αυτόματη απάντηση|otomatik cevap|"
    r"automatski odgovor|samodejni odgovor|автоматичен отговор|автоматична відповідь|"
    r"תשובה אוטומטית|رد تلقائي|自動回覆|trả lời tự động|balasan otomatis|"
    r"außer haus|abwesend|afwezigheidsassistent|fuera de la oficina|hors du bureau|"
    r"ausente|nieobecno[śs][ćc]|fr[aå]nvaro|frav[æa]r(?:ende)?|poissaolo|"
    r"вне офиса|нет на месте|부재중?|外出中"
    r")(?:\s*[\])】]|\s*[:：\-]|\s*$)",
    re.IGNORECASE,
)
_AUTO_REPLY_SUBJECT_SUFFIX = re.compile(
    r"\((?:automatic (?:response|reply)|auto-?reply|auto-?response|autoreply)\)\s*$",
    re.IGNORECASE,
)
_LOTUS_AUTO = re.compile(r"^\s*AUTO:\s")  # Lotus Notes; case matters ("Auto:" is a car)
_WEAK_SUBJECT = re.compile(
    r"^\s*(?:auto:|out of (?:the )?office|vacation|away|i am away|i'm away|"
    r"thank you for (?:your|the) (?:e-?mail|message|mail|enquiry|inquiry|request)|"
    r"thanks for (?:your|the) (?:e-?mail|message)|we have received your|"
    r"received your (?:e-?mail|message)|urlaub|ferie|vacances|vakantie)",
    re.IGNORECASE,
)
_BODY_AUTO_PHRASE = Phrases(
    r"out of (?:the )?office|automated (?:response|reply)|automatic(?:ally generated)? "
    r"(?:reply|response)|auto-?reply|i am (?:currently )?(?:away|on (?:vacation|leave|holiday))|"
    r"i'm (?:currently )?(?:away|on (?:vacation|leave|holiday))|with limited access to e-?mail|"
    r"will (?:respond|reply|get back to you) (?:to you )?(?:upon|when|after) (?:my|i) return|"
    r"this is an auto|abwesend|nicht im büro|afwezig|fuori ufficio|absent du bureau|"
    r"automatische antwort|réponse automatique|respuesta automática|risposta automatica|"
    r"automātiskā atbilde|自动回复|自動返信|автоматический ответ",
    needles=("auto", "office", "i am ", "i'm ", "limited access", "return", "abwesend",
             "nicht im büro", "afwezig", "fuori ufficio", "absent du bureau", "réponse",
             "respuesta", "risposta", "automātiskā", "自动回复", "自動返信", "автоматический"),
)
_CHALLENGE_TEXT = Phrases(
    r"boxbe|bluebottle|spamarrest|mailblocks|sender not pre-?approved|waitlisted|"
    r"requires? confirmation|whitelist\.aspx|guest list|"
    r"add (?:yourself|your (?:e-?mail )?address) to (?:my|the|our) "
    r"(?:guest|allowed|approved|white|safe) ?(?:sender)?s? ?list|"
    r"challenge[- /]response|verify (?:that )?you are (?:a )?(?:human|real person|not a spammer)|"
    r"please (?:click|confirm|verify) [^\n]{0,60}(?:whitelist|deliver your message|"
    r"approved senders)|your message (?:is|has been) (?:held|quarantined) (?:pending|until) "
    r"(?:your )?(?:verification|confirmation)",
)
_CHALLENGE_DOMAIN = re.compile(
    r"@(?:[\w-]+\.)*(?:boxbe\.com|bluebottle\.com|spamarrest\.com|mailblocks\.com)$",
    re.IGNORECASE,
)
_AUTORESPONDER_MAILER = re.compile(
    r"vacation|auto-?respond|auto-?reply|autoresponse|out of office", re.IGNORECASE
)
_ROBOT_LOCAL = re.compile(
    r"^(?:mailer[-_.]?daemon|mail[-_.]?daemon|postmaster|post_master|"
    r"no[-_.]?reply|noreply[-_.+].*|.*[-_.]no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|"
    r"bounces?|bounces?[-+_.].*|.*[-+_.]bounces?|nobody|auto[-_.]?reply|autoresponder|"
    r"auto[-_.]?confirm|notifications?|notify|alerts?|daemon)$",
    re.IGNORECASE,
)
_AUTO_REPLY_HEADERS = (
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-autoreply-from",
    "x-mail-autoreply",
    "x-auto-reply",
    "x-autoresponse",
    "x-vacation",
)
_LIST_HEADERS = (
    "list-id",
    "list-unsubscribe",
    "list-post",
    "list-help",
    "list-subscribe",
    "mailing-list",
    "x-mailman-version",
    "x-mlserver",
    "x-ml-name",
    "x-beenthere",
    "x-list",
)




def _first_address(value: str) -> str:
    try:
        pairs = getaddresses([value])
    except Exception:
        pairs = []
    for _, addr in pairs:
        if "@" in addr:
            return addr.strip().strip("<>").lower()
    match = re.search(r"[^\s<>\"]+@[^\s<>\"]+", value)
    if match:
        return match.group(0).lower()
    return value.strip().strip("<>").lower()


def _token(value: str) -> str:
    """First word of a header value, lower-cased, without parameters or comments."""
    value = re.split(r"[;(\s]", value.strip(), maxsplit=1)[0]
    return value.strip().strip('"').lower()


class _Unset(enum.Enum):
    """Marks an argument the caller did not pass (None is a meaningful value)."""

    UNSET = enum.auto()


def detect_automatic(
    raw: bytes | MailSource,
    mail_from: str = "",
    *,
    bounce: BounceReport | None | _Unset = _Unset.UNSET,
) -> AutomaticVerdict | None:
    """Say whether a machine wrote ``raw`` (bytes, or the source ``analyze`` read) and what
    kind; None for a person; never raises.

    ``mail_from`` is the SMTP envelope sender when known: ``"<>"`` is the null sender
    of delivery reports and RFC 3834 responders; ``""`` means "not known" (IMAP, pipe),
    and then a ``Return-Path: <>`` header stands for it.

    ``bounce`` is the result of ``detect_bounce(raw, mail_from)`` (a report or None)
    when the caller has it already: a delivery report is automatic mail, and passing
    it saves reading the report twice.  Left out, it is computed here.
    """
    # Called on its own with the report known, only the header fields and the text are read.
    source = raw if isinstance(raw, MailSource) else read_source(
        raw, headers_only=bounce is not _Unset.UNSET)
    try:
        verdict = _detect(source, mail_from, bounce)
    except Exception:  # defensive: a classifier must not take the pipeline down
        log.exception("automatic-mail detection failed; treating the message as personal")
        return None
    system = _from_mail_system(source.message, mail_from)
    if system and verdict is None:
        return AutomaticVerdict("auto_generated", f"sent by a mail system ({system})", True)
    if system and verdict is not None:
        return replace(verdict, mail_system=True)
    return verdict


def _from_mail_system(head: Message, mail_from: str) -> str:
    """The evidence that a mail system sent the message with header fields ``head``, or "":
    the null envelope sender (or ``Return-Path: <>`` when the envelope is unknown), or a
    ``From:`` of MAILER-DAEMON, postmaster or "Mail Delivery Subsystem"."""
    envelope = mail_from.strip()
    if envelope == "<>" or (not envelope and header_text(head.get("return-path", "")).replace(
            " ", "") == "<>"):
        return "empty envelope sender"
    sender = head.get("from", "")
    return f"From: {header_text(sender)[:80]}" if is_mail_system(sender) else ""


def _detect(
    source: MailSource, mail_from: str, bounce: BounceReport | None | _Unset
) -> AutomaticVerdict | None:
    head = source.message
    body = source.body_bytes(BODY_PEEK_BYTES)

    def get(name: str) -> str:
        return header_text(head.get(name, ""))

    names = {k.lower() for k in head}
    subject = get("subject")
    sender = _first_address(get("from"))
    sender_local = sender.rpartition("@")[0] if "@" in sender else sender
    envelope = mail_from.strip()
    return_path = get("return-path").replace(" ", "")
    null_sender = envelope == "<>" or (not envelope and return_path == "<>")
    ctype = head.get_content_type()
    report_type = str(head.get_param("report-type", "") or "").lower()
    body_text = body.decode("latin-1").lower()
    precedence = _token(get("precedence") or get("x-precedence"))
    auto_submitted = _token(get("auto-submitted"))
    suppress = get("x-auto-response-suppress")
    list_header = next((n for n in _LIST_HEADERS if n in names), "")

    # 1. Challenge/response robots ask us to prove we are human: never answer them.
    # In message order: iterating the set would name a different header per process.
    for name in (key.lower() for key in head):
        if name.startswith(("x-boxbe", "x-bluebottle", "x-spamarrest", "x-mailblocks")):
            return AutomaticVerdict(
                "challenge_response", f"{_head_name(head, name)} header of a challenge/response "
                "anti-spam system")
    if _CHALLENGE_DOMAIN.search(sender):
        return AutomaticVerdict(
            "challenge_response", f"sent by the challenge/response service {sender}")
    machine = (
        null_sender
        or ctype == "multipart/report"
        or bool(sender) and bool(_ROBOT_LOCAL.match(sender_local))
        or (auto_submitted not in ("", "no"))
        or precedence in ("bulk", "junk", "auto_reply")
    )
    challenge = _CHALLENGE_TEXT.search(" ".join((subject, body_text))) if machine else None
    if challenge is not None:
        # The wording alone could be a person's ("add me to the guest list"): only a
        # machine-sent message that asks to be whitelisted is a challenge.
        return AutomaticVerdict(
            "challenge_response",
            f"machine-sent message asking to be whitelisted (\"{challenge}\")")

    # 2. Read receipts (RFC 8098).
    if report_type == "disposition-notification" or (
        ctype == "message/disposition-notification"
    ):
        return AutomaticVerdict(
            "read_receipt", "multipart/report; report-type=disposition-notification (read receipt)")
    if "message/disposition-notification" in body_text and "original-message-id" in body_text:
        return AutomaticVerdict(
            "read_receipt", "message/disposition-notification part (read receipt)")

    # 3. Delivery and feedback reports are machine mail, whatever else they claim.
    report = detect_bounce(source, mail_from) if bounce is _Unset.UNSET else bounce
    if report is not None:
        return AutomaticVerdict(
            "auto_generated", f"{report.kind.replace('_', ' ')}: {report.reason}")
    if ctype == "multipart/report" and report_type in ("delivery-status", "feedback-report"):
        return AutomaticVerdict(
            "auto_generated", f"multipart/report; report-type={report_type} (delivery report)")
    if "x-failed-recipients" in names:
        return AutomaticVerdict("auto_generated", "X-Failed-Recipients header (delivery report)")

    # 4. RFC 3834 and the autoresponders' own headers.
    if auto_submitted and auto_submitted != "no":
        if auto_submitted == "auto-replied":
            return AutomaticVerdict("auto_reply", "Auto-Submitted: auto-replied header")
        return AutomaticVerdict("auto_generated", f"Auto-Submitted: {auto_submitted} header")
    for name in _AUTO_REPLY_HEADERS:
        if name in names and _token(get(name)) not in ("no", "false", "0"):
            return AutomaticVerdict("auto_reply", f"{_head_name(head, name)} header")
    if precedence == "auto_reply":
        return AutomaticVerdict("auto_reply", "Precedence: auto_reply header")
    if _token(get("x-autogenerated")) == "reply":
        return AutomaticVerdict("auto_reply", "X-Autogenerated: Reply header")
    if "vacation" in get("x-apple-action").lower() or "kind=vacation" in get(
            "x-apple-criteria").lower():
        return AutomaticVerdict("auto_reply", "X-Apple-Action: VACATION header")
    if _token(get("x-apple-unsubscribe")) == "true":
        return AutomaticVerdict("auto_generated", "X-Apple-Unsubscribe: true (unsubscribe robot)")
    mailer = get("x-mailer")
    if mailer and _AUTORESPONDER_MAILER.search(mailer):
        return AutomaticVerdict("auto_reply", f"X-Mailer: {mailer[:60]} is an autoresponder")

    # 5. Subjects: strong ones alone, weak ones with a second signal.
    if _AUTO_REPLY_SUBJECT.match(subject) or _AUTO_REPLY_SUBJECT_SUFFIX.search(subject) or (
        _LOTUS_AUTO.match(subject)
    ):
        return AutomaticVerdict("auto_reply", f"auto-reply subject \"{subject[:80]}\"")
    rules_loop = "x-ms-exchange-inbox-rules-loop" in names
    vacation_precedence = precedence in ("bulk", "junk") and not list_header
    body_phrase = _BODY_AUTO_PHRASE.search(body_text)  # body_text is lower-cased already
    support = [
        label
        for label, present in (
            ("X-Auto-Response-Suppress", bool(suppress)),
            ("X-MS-Exchange-Inbox-Rules-Loop", rules_loop),
            ("an empty envelope sender", null_sender),
            (f"Precedence: {precedence} without list headers", vacation_precedence),
            ("X-Loop", "x-loop" in names),
        )
        if present
    ]
    if _WEAK_SUBJECT.match(subject) and support:
        return AutomaticVerdict(
            "auto_reply", f"auto-reply subject \"{subject[:80]}\" with {support[0]}")
    if vacation_precedence and (
        null_sender or body_phrase is not None or suppress or rules_loop
    ):
        # vacation(1) and friends: Precedence: junk/bulk on a personal reply.
        other = [x for x in support if not x.startswith("Precedence")]
        evidence = other[0] if other else f"\"{body_phrase or ''}\""
        return AutomaticVerdict(
            "auto_reply", f"Precedence: {precedence} without list headers and {evidence}")
    if suppress and null_sender:
        return AutomaticVerdict(
            "auto_reply", "X-Auto-Response-Suppress on a message with an empty envelope sender")
    if rules_loop and suppress:
        return AutomaticVerdict(
            "auto_generated", "X-Auto-Response-Suppress and X-MS-Exchange-Inbox-Rules-Loop "
            "(sent by an Exchange inbox rule)")

    # 6. Mailing lists and bulk mail; a list manager's answer to a post (moderation,
    # rejection) is its automatic reply to us, not list traffic.
    notice = _list_notice(head, sender_local, subject, names)
    if notice:
        return AutomaticVerdict("auto_reply", notice)
    if list_header:
        return AutomaticVerdict("bulk", f"{_head_name(head, list_header)} header (mailing list)")
    if precedence in ("bulk", "list", "junk"):
        return AutomaticVerdict("bulk", f"Precedence: {precedence} header")

    # 7. Robots.
    if sender and _ROBOT_LOCAL.match(sender_local):
        return AutomaticVerdict("auto_generated", f"robot sender {sender}")
    if null_sender:
        return AutomaticVerdict("auto_generated", "empty envelope sender (<>)")
    if "x-loop" in names:
        return AutomaticVerdict("auto_generated", f"X-Loop: {get('x-loop')[:60]} header")
    if "x-cron-env" in names:
        return AutomaticVerdict("auto_generated", "X-Cron-Env header (cron job output)")

    return None


_LIST_NOTICE_SUBJECT = re.compile(
    r"awaits? (?:the )?moderator(?:'s)? approval|held for (?:moderation|approval)|"
    r"requires? (?:moderator )?approval|posting to a restricted list|"
    r"post(?:ing)? (?:rejected|refused|held)|not a member|non-?member (?:post|submission)|"
    r"(?:message|post|submission) (?:rejected|held|refused|auto-?discarded)|"
    r"moderation (?:request|notice|required)|auto-?discard|"
    r"your message to \S+ (?:was|has been) (?:rejected|held|discarded)",
    re.IGNORECASE,
)
_LIST_MANAGER_LOCAL = re.compile(
    r"(?:-(?:owner|owners|bounces?|request|admin|moderator)s?(?:\+.*)?$)|"
    r"^(?:owner-|listserv$|majordomo$|sympa$|mailman$|ecartis$|lyris|listmaster$)",
    re.IGNORECASE,
)


def _list_notice(head: Message, sender_local: str, subject: str, names: set[str]) -> str:
    """A mailing-list manager's notice about our post, with the evidence; "" if not."""
    administrivia = _token(header_text(head.get("x-list-administrivia", ""))) == "yes"
    manager = bool(sender_local) and bool(_LIST_MANAGER_LOCAL.search(sender_local))
    if not _LIST_NOTICE_SUBJECT.search(subject):
        return ""
    if administrivia:
        return f"X-List-Administrivia notice \"{subject[:80]}\" (mailing-list moderation)"
    if manager:
        return (f"mailing-list manager notice \"{subject[:80]}\" from {sender_local}@ "
                "(moderation or rejection of a post)")
    return ""


def _head_name(head: Message, lowered: str) -> str:
    """The header name as the message spells it."""
    for key in head:
        if key.lower() == lowered:
            return key
    return lowered
