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
from collections.abc import Callable
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


@dataclass(slots=True)
class _Signals:
    """The header facts most rules read, computed once per message; a rule reads any
    other header field through :meth:`get` (only when it gets that far).

    Not frozen: a frozen dataclass is built through ``object.__setattr__``, which cost
    more than the rules themselves on a personal message (bench/classifiers.py)."""

    source: MailSource
    mail_from: str
    bounce: BounceReport | None | _Unset
    head: Message
    keys: list[str]  # header names, lower-cased, in message order
    names: set[str]  # the same, as a set
    subject: str
    sender: str  # the first From address, lower-cased
    sender_local: str
    null_sender: bool
    ctype: str
    report_type: str
    body_text: str  # the first BODY_PEEK_BYTES, lower-cased
    precedence: str
    auto_submitted: str
    suppress: str  # X-Auto-Response-Suppress
    list_header: str  # the first list header present, lower-cased, or ""

    def get(self, name: str) -> str:
        return header_text(self.head.get(name, ""))


def _signals(
    source: MailSource, mail_from: str, bounce: BounceReport | None | _Unset
) -> _Signals:
    head = source.message
    body = source.body_bytes(BODY_PEEK_BYTES)

    def get(name: str) -> str:
        return header_text(head.get(name, ""))

    keys = [k.lower() for k in head]
    names = set(keys)
    sender = _first_address(get("from"))
    envelope = mail_from.strip()
    return_path = get("return-path").replace(" ", "")
    return _Signals(
        source=source,
        mail_from=mail_from,
        bounce=bounce,
        head=head,
        keys=keys,
        names=names,
        subject=get("subject"),
        sender=sender,
        sender_local=sender.rpartition("@")[0] if "@" in sender else sender,
        null_sender=envelope == "<>" or (not envelope and return_path == "<>"),
        ctype=head.get_content_type(),
        report_type=str(head.get_param("report-type", "") or "").lower(),
        body_text=body.decode("latin-1").lower(),
        precedence=_token(get("precedence") or get("x-precedence")),
        auto_submitted=_token(get("auto-submitted")),
        suppress=get("x-auto-response-suppress"),
        list_header=next((n for n in _LIST_HEADERS if n in names), ""),
    )


def _detect(
    source: MailSource, mail_from: str, bounce: BounceReport | None | _Unset
) -> AutomaticVerdict | None:
    """The first rule of :data:`_RULES` that names the message, or None."""
    signals = _signals(source, mail_from, bounce)
    for rule in _RULES:
        verdict = rule(signals)
        if verdict is not None:
            return verdict
    return None


# 1. Challenge/response robots ask us to prove we are human: never answer them.


def _challenge_header(s: _Signals) -> AutomaticVerdict | None:
    # In message order: iterating the set would name a different header per process.
    for name in s.keys:
        if name.startswith(("x-boxbe", "x-bluebottle", "x-spamarrest", "x-mailblocks")):
            return AutomaticVerdict(
                "challenge_response", f"{_head_name(s.head, name)} header of a "
                "challenge/response anti-spam system")
    return None


def _challenge_sender(s: _Signals) -> AutomaticVerdict | None:
    if _CHALLENGE_DOMAIN.search(s.sender):
        return AutomaticVerdict(
            "challenge_response", f"sent by the challenge/response service {s.sender}")
    return None


def _challenge_wording(s: _Signals) -> AutomaticVerdict | None:
    # The wording alone could be a person's ("add me to the guest list"): only a
    # machine-sent message that asks to be whitelisted is a challenge.
    machine = (
        s.null_sender
        or s.ctype == "multipart/report"
        or bool(s.sender) and bool(_ROBOT_LOCAL.match(s.sender_local))
        or (s.auto_submitted not in ("", "no"))
        or s.precedence in ("bulk", "junk", "auto_reply")
    )
    if not machine:
        return None
    challenge = _CHALLENGE_TEXT.search(" ".join((s.subject, s.body_text)))
    if challenge is None:
        return None
    return AutomaticVerdict(
        "challenge_response", f"machine-sent message asking to be whitelisted (\"{challenge}\")")


# 2. Read receipts (RFC 8098).


def _read_receipt(s: _Signals) -> AutomaticVerdict | None:
    if s.report_type == "disposition-notification" or (
        s.ctype == "message/disposition-notification"
    ):
        return AutomaticVerdict(
            "read_receipt", "multipart/report; report-type=disposition-notification (read receipt)")
    if "message/disposition-notification" in s.body_text and (
            "original-message-id" in s.body_text):
        return AutomaticVerdict(
            "read_receipt", "message/disposition-notification part (read receipt)")
    return None


# 3. Delivery and feedback reports are machine mail, whatever else they claim.


def _delivery_report(s: _Signals) -> AutomaticVerdict | None:
    report = detect_bounce(s.source, s.mail_from) if s.bounce is _Unset.UNSET else s.bounce
    if report is not None:
        return AutomaticVerdict(
            "auto_generated", f"{report.kind.replace('_', ' ')}: {report.reason}")
    if s.ctype == "multipart/report" and s.report_type in ("delivery-status", "feedback-report"):
        return AutomaticVerdict(
            "auto_generated", f"multipart/report; report-type={s.report_type} (delivery report)")
    if "x-failed-recipients" in s.names:
        return AutomaticVerdict("auto_generated", "X-Failed-Recipients header (delivery report)")
    return None


# 4. RFC 3834 and the autoresponders' own headers.


def _auto_submitted(s: _Signals) -> AutomaticVerdict | None:
    if not s.auto_submitted or s.auto_submitted == "no":
        return None
    if s.auto_submitted == "auto-replied":
        return AutomaticVerdict("auto_reply", "Auto-Submitted: auto-replied header")
    return AutomaticVerdict("auto_generated", f"Auto-Submitted: {s.auto_submitted} header")


def _autoresponder_header(s: _Signals) -> AutomaticVerdict | None:
    for name in _AUTO_REPLY_HEADERS:
        if name in s.names and _token(s.get(name)) not in ("no", "false", "0"):
            return AutomaticVerdict("auto_reply", f"{_head_name(s.head, name)} header")
    if s.precedence == "auto_reply":
        return AutomaticVerdict("auto_reply", "Precedence: auto_reply header")
    if _token(s.get("x-autogenerated")) == "reply":
        return AutomaticVerdict("auto_reply", "X-Autogenerated: Reply header")
    return None


def _vendor_header(s: _Signals) -> AutomaticVerdict | None:
    if "vacation" in s.get("x-apple-action").lower() or "kind=vacation" in s.get(
            "x-apple-criteria").lower():
        return AutomaticVerdict("auto_reply", "X-Apple-Action: VACATION header")
    if _token(s.get("x-apple-unsubscribe")) == "true":
        return AutomaticVerdict("auto_generated", "X-Apple-Unsubscribe: true (unsubscribe robot)")
    mailer = s.get("x-mailer")
    if mailer and _AUTORESPONDER_MAILER.search(mailer):
        return AutomaticVerdict("auto_reply", f"X-Mailer: {mailer[:60]} is an autoresponder")
    return None


# 5. Subjects: strong ones alone, weak ones with a second signal.


def _auto_reply_subject(s: _Signals) -> AutomaticVerdict | None:
    subject = s.subject
    if _AUTO_REPLY_SUBJECT.match(subject) or _AUTO_REPLY_SUBJECT_SUFFIX.search(subject) or (
        _LOTUS_AUTO.match(subject)
    ):
        return AutomaticVerdict("auto_reply", f"auto-reply subject \"{subject[:80]}\"")
    return None


def _weak_signals(s: _Signals) -> AutomaticVerdict | None:
    """Hints that Outlook, vacation(1) and list software also put on other mail, which
    count only together."""
    rules_loop = "x-ms-exchange-inbox-rules-loop" in s.names
    vacation_precedence = s.precedence in ("bulk", "junk") and not s.list_header
    body_phrase = _BODY_AUTO_PHRASE.search(s.body_text)  # body_text is lower-cased already
    support = _support(s, rules_loop, vacation_precedence)
    if _WEAK_SUBJECT.match(s.subject) and support:
        return AutomaticVerdict(
            "auto_reply", f"auto-reply subject \"{s.subject[:80]}\" with {support[0]}")
    if vacation_precedence and (
        s.null_sender or body_phrase is not None or s.suppress or rules_loop
    ):
        # vacation(1) and friends: Precedence: junk/bulk on a personal reply.
        other = [x for x in support if not x.startswith("Precedence")]
        evidence = other[0] if other else f"\"{body_phrase or ''}\""
        return AutomaticVerdict(
            "auto_reply", f"Precedence: {s.precedence} without list headers and {evidence}")
    if s.suppress and s.null_sender:
        return AutomaticVerdict(
            "auto_reply", "X-Auto-Response-Suppress on a message with an empty envelope sender")
    if rules_loop and s.suppress:
        return AutomaticVerdict(
            "auto_generated", "X-Auto-Response-Suppress and X-MS-Exchange-Inbox-Rules-Loop "
            "(sent by an Exchange inbox rule)")
    return None


def _support(s: _Signals, rules_loop: bool, vacation_precedence: bool) -> list[str]:
    """The weak signals present, named, in a fixed order."""
    return [
        label
        for label, present in (
            ("X-Auto-Response-Suppress", bool(s.suppress)),
            ("X-MS-Exchange-Inbox-Rules-Loop", rules_loop),
            ("an empty envelope sender", s.null_sender),
            (f"Precedence: {s.precedence} without list headers", vacation_precedence),
            ("X-Loop", "x-loop" in s.names),
        )
        if present
    ]


# 6. Mailing lists and bulk mail; a list manager's answer to a post (moderation,
# rejection) is its automatic reply to us, not list traffic.


def _list_mail(s: _Signals) -> AutomaticVerdict | None:
    notice = _list_notice(s.head, s.sender_local, s.subject, s.names)
    if notice:
        return AutomaticVerdict("auto_reply", notice)
    if s.list_header:
        return AutomaticVerdict(
            "bulk", f"{_head_name(s.head, s.list_header)} header (mailing list)")
    if s.precedence in ("bulk", "list", "junk"):
        return AutomaticVerdict("bulk", f"Precedence: {s.precedence} header")
    return None


# 7. Robots.


def _robot(s: _Signals) -> AutomaticVerdict | None:
    if s.sender and _ROBOT_LOCAL.match(s.sender_local):
        return AutomaticVerdict("auto_generated", f"robot sender {s.sender}")
    if s.null_sender:
        return AutomaticVerdict("auto_generated", "empty envelope sender (<>)")
    if "x-loop" in s.names:
        return AutomaticVerdict("auto_generated", f"X-Loop: {s.get('x-loop')[:60]} header")
    if "x-cron-env" in s.names:
        return AutomaticVerdict("auto_generated", "X-Cron-Env header (cron job output)")
    return None


#: The rules in order of precedence: the first that names the message decides.
_RULES: tuple[Callable[[_Signals], AutomaticVerdict | None], ...] = (
    _challenge_header,
    _challenge_sender,
    _challenge_wording,
    _read_receipt,
    _delivery_report,
    _auto_submitted,
    _autoresponder_header,
    _vendor_header,
    _auto_reply_subject,
    _weak_signals,
    _list_mail,
    _robot,
)


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
