"""Recognise delivery reports: bounces, delay warnings, delivery successes and ARF complaints.

A support gateway must never turn "your mail could not be delivered" into a ticket, and
it must learn which of *our* recipients are undeliverable.  ``detect_bounce`` reads one
raw message and returns a :class:`BounceReport` naming the failed recipients, their
status codes and the Message-ID of the mail that bounced, or ``None`` when the message
is not a delivery report.

It understands standard reports first (RFC 3464 ``message/delivery-status``, RFC 6533
``message/global-delivery-status``, RFC 5965 ``message/feedback-report``, Amazon SES
JSON notifications) and then the plain-text formats that MTAs still send (qmail, Exim,
old Sendmail, Exchange, Domino, Gmail, Yahoo, KDDI and others), recognised by sender,
subject and the wording of the report, never by one signal alone.  Challenge/response
messages that dress up as bounces (Boxbe, "your server requires confirmation") are not
bounces: ``inbound.parsing.automatic`` reports those.

Every input is bytes from the outside world: the function never raises, reads the
header fields and the first part of the body first and looks deeper only when they look
like a report, and caps the bytes and parts it reads.  It reads the MIME tree that
:mod:`inbound.parsing.source` built once for every reader of the message (given raw
bytes, it builds that tree itself).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from flufl.bounce import all_failures

from inbound.parsing.headers import header_text
from inbound.parsing.phrases import Phrases, fold
from inbound.parsing.source import MailSource, read_source

__all__ = ["BounceReport", "FailedRecipient", "detect_bounce", "is_mail_system"]

log = logging.getLogger(__name__)


class _OnlyWhenDebugging(logging.Filter):
    """Lets ``flufl.bounce``'s own records through only when this module logs at DEBUG.

    It logs a line for each detector it runs (INFO) and, for one that chokes on odd input
    (any mail without a From: its Yale detector indexes an empty list), a traceback at
    ERROR before re-raising: six records for a message anyone can send, a traceback in
    the operator's log each time.  :func:`_library_failures` reports such a failure
    itself, once, and at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        return log.isEnabledFor(logging.DEBUG)


logging.getLogger("flufl.bounce").addFilter(_OnlyWhenDebugging())

MAX_BYTES = 1024 * 1024  # a report is small; only the returned original can be large
MAX_BOUNDARIES = 200  # more MIME boundaries than this: read the body as text
PEEK_CHARS = 64 * 1024  # body prefix read before deciding to parse the whole message
MAX_PARTS = 200
MAX_REPORT_CHARS = 100_000
MAX_DIAGNOSTIC_CHARS = 500


@dataclass(frozen=True)
class FailedRecipient:
    address: str  # lower-cased
    status: str | None  # DSN status like "5.1.1"
    smtp_code: str | None  # e.g. "550"
    diagnostic: str  # remote server's text, "" if unknown
    hard: bool  # permanent (5.x.x / 5xx / clearly permanent reason)


@dataclass(frozen=True)
class BounceReport:
    kind: str  # "bounce", "delay_notification", "delivery_success", "feedback_report"
    recipients: tuple[FailedRecipient, ...]
    original_message_id: str | None  # normalised, no angle brackets
    reason: str  # one human sentence


# --------------------------------------------------------------------------- patterns

_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}@"
    r"[A-Za-z0-9#](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62}[A-Za-z0-9])?)+"
)
_STATUS = re.compile(r"(?<![\d.#])([245])\.(\d{1,3})\.(\d{1,3})(?![\d])")
_STATUS_HASH = re.compile(r"#\s?([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
_SMTP_CODE = re.compile(r"(?:^|[\s(\[:;\"'])([245][0-5]\d)(?=[\s\-:,]|$)", re.MULTILINE)

_ROBOT_LOCAL = re.compile(
    r"^(?:mailer[-_.]?daemon|mail[-_.]?daemon|postmaster|post_master|postoffice|"
    r"mail\.delivery\.system|mailer|mail[-_.]?delivery(?:[-_.]?(?:system|subsystem))?|"
    r"bounces?|bounce[-_+].*|nobody|noreply|no[-_.]?reply|donotreply|do[-_.]?not[-_.]?reply|"
    r"sysadmin|mmsc|smtp[-_.]?gateway|root|mdaemon)$",
    re.IGNORECASE,
)
_STRONG_ROBOT_LOCAL = re.compile(
    r"^(?:mailer[-_.]?daemon|mail[-_.]?daemon|postmaster|post_master|"
    r"mail\.delivery\.system|mail[-_.]?delivery[-_.]?(?:system|subsystem))$",
    re.IGNORECASE,
)

# Display names that mail systems, never people, sign their reports with.
_SYSTEM_NAME = re.compile(
    r"\b(?:mailer[- ]?daemon|postmaster|mail delivery (?:sub)?system|mail system|"
    r"ndr|non[- ]?delivery|delivery status notification|mail administrator)\b",
    re.IGNORECASE,
)


def is_mail_system(from_value: object) -> bool:
    """Whether a ``From:`` value is a mail system's: MAILER-DAEMON@, postmaster@, an
    empty address (``<>``) or a display name such as "Mail Delivery Subsystem"."""
    text = header_text(from_value).strip()
    if not text:
        return False
    try:
        pairs = getaddresses([text])
    except Exception:
        pairs = []
    for name, address in pairs:
        if address and _STRONG_ROBOT_LOCAL.match(_local_part(address.strip("<>"))):
            return True
        if name and _SYSTEM_NAME.search(name):
            return True
    lowered = text.lower()
    return lowered.endswith("<>") or "mailer-daemon" in lowered or lowered.startswith(
        "postmaster@")


_BOUNCE_SUBJECT = Phrases(
    r"undeliver|undelivered|returned mail|returning message|mail delivery (?:failed|failure|"
    r"problem|system|warning|delayed)|"
    r"delivery (?:status notification|failure|failed|has failed|problem|notification|report)|"
    r"failure notice|failed delivery|failure delivery|"
    r"non[- ]?delivery|delivery status|could not (?:be )?deliver|message not delivered|"
    r"mail (?:system )?(?:error|failure)|returned to sender|nondeliverable|"
    r"warning: message .* delayed|delayed mail|delivery delayed|mail delivery delayed|"
    r"message status - undeliverable|there was an error sending your mail|"
    r"unzustellbar|nicht zustellbar|non remis|non recapitabile|onbestelbaar|"
    r"no se puede entregar|no entregado|não entregue|"
    r"配信(?:不能|失敗|エラー)|送信(?:できません|失敗)|エラーメール|"
    r"未送達|退信|系统退信|无法投递|投递失败|发送失败|邮件(?:被)?退回|無法傳遞|傳送失敗|"
    r"nepieg[aā]d[aā]ts|pieg[aā]de neizdev[aā]s|nevar[eē]ja (?:tikt )?pieg[aā]d[aā]t|"
    r"недоставленное|не (?:может быть )?доставлен",
)

# Phrases that only delivery software writes (checked in the first part of the body).
_REPORT_MARKERS = Phrases(
    r"this is the qmail-send program|"
    r"this message was created automatically by mail delivery software|"
    r"this is the mail system at host|"
    r"the original message was received at|"
    r"the following addresses had (?:permanent fatal errors|transient non-fatal errors)|"
    r"transcript of session follows|failed addresses follow|"
    r"was undeliverable to the following|error: invalid user address|"
    r"recipient addresses that were\s+incorrectly constructed|"
    r"an error has occurred while attempting to deliver|a message is delayed for|"
    r"this is the mailer-daemon|"
    r"delivery to the following recipients? (?:failed|has been delayed|was aborted)|"
    r"delivery has failed to these recipients|"
    r"your message did not reach some or all of the intended recipients|"
    r"did not reach the following recipient|"
    r"sorry, we were unable to deliver your message|"
    r"i'm afraid i wasn't able to deliver your message|"
    r"unable to deliver (?:your )?message to the following|"
    r"(?:could not|cannot|can ?not) be delivered to (?:one or more|the following|some)|"
    r"the following (?:mail|message) (?:could not|cannot|can ?not) be delivered|"
    r"the following (?:recipient|address)(?:es|\(es\)|s|\(s\))? (?:failed|could not|had|was|were)|"
    r"this is an automatically generated delivery status notification|"
    r"there was an error delivering your mail|"
    r"each of the following recipients was rejected|"
    r"a message that you sent could not be delivered|"
    r"your mail sent on: .*\n\s*could not be delivered|"
    r"smtp error from remote (?:mail server|server|mailer)|"
    r"remote host said:|said: [45]\d\d|"
    r"diagnostic[- ]code:|final-recipient:|"
    r"not listed in (?:domino directory|public name & address book)|"
    r"送信(?:でき|出来)ませんでした|配信(?:でき|出来)ませんでした|"
    r"не может быть доставлено|не удалось доставить|无法(?:投递|送达)|投递失败|"
    r"nevar[eē]ja (?:tikt )?pieg[aā]d[aā]t|pieg[aā]de neizdev[aā]s",
    needles=("deliver", "following", "qmail", "mail system", "original message", "addresses",
             "transcript", "invalid user", "delayed", "daemon", "did not reach", "smtp",
             "said:", "diagnostic", "final-recipient", "not listed", "ませんでした", "достав",
             "无法", "投递失败", "nevar", "pieg"),
)
# Wording that delivery reports use, but people may too: weaker evidence.
_FAILURE_PHRASES = Phrases(
    r"no such user here|did not receive this message|was not delivered within|"
    r"not a valid user|message (?:could not|cannot) be delivered|"
    r"(?:was|were|could) not (?:be )?delivered to|undeliverable (?:mail|message)|"
    r"permanent(?:ly)? (?:fatal )?(?:error|failure)|message delivery has failed|"
    r"mail delivery failed|delivery failed|retry timeout exceeded|has not yet been delivered|"
    r"message will be retried|will (?:continue to )?be retried|"
    r"user unknown|unknown user|no such user|mailbox (?:unavailable|full|is full|not found)|"
    r"host unknown|domain (?:not found|does not exist)|宛先不明|メールボックスが一杯|"
    r"届きませんでした",
    needles=("deliver", "no such user", "did not receive", "valid user", "permanent",
             "retry timeout", "retried", "unknown", "mailbox", "domain", "宛先不明",
             "メールボックスが一杯", "届きませんでした"),
)

# Wording that says the delivery is being retried, not given up.
_DELAY_MARKERS = Phrases(
    r"this is a warning message only|you do not need to resend your message|"
    r"delivery to the following recipients? (?:has been|was) delayed|"
    r"has not yet been delivered|message will be retried|will (?:continue to )?be retried|"
    r"still being retried|delivery (?:is|has been) delayed|"
    r"delivery status notification \(delay\)|delayed mail|"
    r"warning: message .{0,80}? delayed|could not be delivered for .{0,20}? (?:hours|minutes)|"
    r"delivery status notification: warning|mail delivery (?:delayed|warning)|"
    r"will keep trying|(?:still )?trying to deliver|temporarily deferred|"
    r"only a temporary failure report|a message is delayed for|has been delayed",
)
_FINAL_MARKERS = Phrases(
    r"permanent(?:ly)? (?:fatal )?(?:error|failure)|failed permanently|i've given up|"
    r"giving up|gave up|has been (?:returned|deleted)|will be deleted from queue|"
    r"could not be delivered to|(?:was|were) not delivered|delivery (?:has )?failed|"
    r"returning message to sender|undeliverable|unable to deliver|retry timeout exceeded|"
    r"message expired|deleted from (?:the )?queue|did not reach",
)
_PERMANENT_WORDS = re.compile(
    r"permanent|user unknown|unknown user|no such (?:user|mailbox|recipient|address)|"
    r"does not exist|doesn't exist|not exist|invalid (?:recipient|address|mailbox)|"
    r"recipient (?:address )?rejected|mailbox (?:not found|unavailable|disabled)|"
    r"address rejected|not listed in|account (?:has been )?(?:disabled|deactivated)|"
    r"host not found|domain not found|no mx|host unknown|unknown host|unrouteable|"
    r"recipient name is not recognized|no valid recipients|not listed|not found|"
    r"invalid final delivery|no longer (?:valid|available|active)|"
    r"ディレクトリのリストにありません|存在しません|宛先不明",
    re.IGNORECASE,
)

# Lines after which the returned original message starts.
_ORIGINAL_MARKERS = re.compile(
    r"^[ \t>]*(?:-{2,}[ \t]*)?(?:"
    r"below this line is a copy of the message|"
    r"this is a copy of the message|"
    r"original message (?:follows|headers?|text)?|"
    r"a copy of the original message|"
    r"(?:the )?header of the original message|"
    r"original mail header|"
    r"returned message|"
    r"message headers follow|"
    r"headers of (?:the )?(?:original|returned) message|"
    r"the first \d+ lines of your message|"
    r"unsent message below|"
    r"your message (?:reads|follows)|"
    r"enclosed is a copy of the message|"
    r"message text follows|"
    r"[^\n]{0,40}copy of (?:the |your )?(?:original )?message"
    r")[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
_HEADER_START = re.compile(
    r"^(?:Received|Return-Path|DKIM-Signature|Delivered-To|X-Original-To|"
    r"Authentication-Results|ARC-Seal|Message-I[dD]|MIME-Version|X-Received):[ \t]",
    re.MULTILINE | re.IGNORECASE,
)
_MESSAGE_ID_LINE = re.compile(
    r"^[ \t>]*Message-I[dD]:[ \t]*(?:\n[ \t]+)?(<[^>\s]+>|\S+)", re.IGNORECASE | re.MULTILINE
)

_TEXT_DSN_RECIPIENT = re.compile(r"^[ \t]*(?:Final|Original)-Recipient:", re.I | re.M)
_TEXT_DSN_ACTION = re.compile(r"^[ \t]*Action:[ \t]*[A-Za-z]", re.I | re.M)
_TEXT_DSN_CLEAN = re.compile(r"^[ \t]+(?=(?:[A-Za-z-]+):)", re.MULTILINE)

_CHALLENGE = Phrases(
    r"boxbe|bluebottle|spamarrest|mailblocks|sender not pre-?approved|waitlisted|"
    r"requires? confirmation|whitelist\.aspx|"
    r"add (?:yourself|your (?:e-?mail )?address) to (?:my|the|our) (?:guest|allowed|approved|white)"
    r" ?list|challenge[- /]response|please (?:click|confirm) .{0,40}(?:verify|whitelist)",
)

_REPORT_PART_TYPES = frozenset(
    {"message/delivery-status", "message/global-delivery-status"}
)
_ORIGINAL_PART_TYPES = frozenset(
    {
        "message/rfc822",
        "message/global",
        "text/rfc822-headers",
        "message/rfc822-headers",
        "message/global-headers",
        "text/rfc822",
    }
)


# --------------------------------------------------------------------------- helpers


def _addresses(value: object) -> list[str]:
    text = header_text(value)
    try:
        pairs = getaddresses([text])
    except Exception:
        pairs = []
    out = [addr.strip().strip("<>").lower() for _, addr in pairs if "@" in addr]
    if not out:
        out = [m.group(0).lower() for m in _ADDRESS.finditer(text)]
    return out


def _local_part(address: str) -> str:
    return address.rpartition("@")[0] if "@" in address else address


def _part_text(part: Message) -> str:
    """Decoded text of a leaf part; '' when it has none."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        payload = None
    if not isinstance(payload, bytes | bytearray):
        raw_payload = part.get_payload()
        return raw_payload if isinstance(raw_payload, str) else ""
    try:
        charset = part.get_content_charset() or "utf-8"
    except Exception:
        charset = "utf-8"
    return _decode_bytes(bytes(payload), charset)


def _decode_bytes(data: bytes, charset: str) -> str:
    """Decode with the declared charset, else the usual mislabels (8-bit "ISO-2022-JP")."""
    for candidate in (charset, "utf-8", "euc-jp", "shift_jis"):
        try:
            return data.decode(candidate)
        except (LookupError, ValueError):
            continue
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        return data.decode("utf-8", errors="replace")


_TAG = re.compile(r"<[^<>]*>")
_BREAK = re.compile(r"<br\s*/?>|</p>|</div>|</tr>|</li>", re.IGNORECASE)


def _drop_scripts(html: str) -> str:
    """Remove <script> and <style> elements in one linear pass (no regex backtracking)."""
    lowered = html.lower()
    out: list[str] = []
    pos = 0
    while pos < len(html):
        starts = [i for i in (lowered.find("<script", pos), lowered.find("<style", pos)) if i >= 0]
        if not starts:
            out.append(html[pos:])
            break
        start = min(starts)
        out.append(html[pos:start])
        tag = "</script" if lowered.startswith("<script", start) else "</style"
        end = lowered.find(tag, start)
        if end < 0:
            break
        close = lowered.find(">", end)
        pos = close + 1 if close >= 0 else len(html)
    return " ".join(out)


def _html_to_text(html: str) -> str:
    html = _drop_scripts(html[:MAX_REPORT_CHARS])
    html = _BREAK.sub("\n", html)
    text = _TAG.sub(" ", html)
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&nbsp;", " "),
                         ("&#39;", "'"), ("&amp;", "&")):
        text = text.replace(entity, char)
    return text


def _blocks(text: str) -> list[list[tuple[str, str]]]:
    """Split ``Name: value`` field groups separated by blank lines (RFC 3464 syntax)."""
    groups: list[list[tuple[str, str]]] = []
    current: list[tuple[str, str]] = []
    for line in text.split("\n"):
        if not line.strip():
            if current:
                groups.append(current)
                current = []
            continue
        if line[0] in " \t" and current:
            name, value = current[-1]
            current[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if colon and name.strip() and " " not in name.strip():
            current.append((name.strip().lower(), value.strip()))
    if current:
        groups.append(current)
    return groups


def _field_groups(part: Message) -> list[list[tuple[str, str]]]:
    """Field groups of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        groups: list[list[tuple[str, str]]] = []
        for block in payload:
            if isinstance(block, Message):
                fields = [(k.lower(), header_text(v)) for k, v in block.items()]
                # A block's own body can hold more fields when a blank line was missing.
                extra = block.get_payload()
                if isinstance(extra, str) and extra.strip():
                    groups.append(fields)
                    groups.extend(_blocks(extra))
                    continue
                if fields:
                    groups.append(fields)
        return groups
    return _blocks(_part_text(part))


def _strip_type(value: str) -> str:
    """``rfc822; <a@b>`` → ``a@b``; ``smtp; 550 ...`` → ``550 ...``."""
    kind, semi, rest = value.partition(";")
    if semi and len(kind.strip()) < 20 and " " not in kind.strip():
        value = rest
    return value.strip()


def _clean_address(value: str) -> str:
    value = _strip_type(value)
    match = _ADDRESS.search(value)
    if match:
        return match.group(0).lower().strip(".")
    return value.strip().strip("<>").lower()


def _status_in(text: str) -> str | None:
    matches = [m for m in (_STATUS_HASH.search(text), _STATUS.search(text)) if m]
    if not matches:
        return None
    return ".".join(min(matches, key=lambda m: m.start()).groups())


_REMOTE_REPLY = re.compile(r"(?<![\d.])([245])\d\d[ -]'?#?([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")


def _remote_status(diagnostic: str) -> str | None:
    """The enhanced status code inside a remote SMTP reply ("550 5.7.1 ..."), if any."""
    for match in _REMOTE_REPLY.finditer(diagnostic):
        if match.group(1) == match.group(2):
            return ".".join(match.groups()[1:])
    return None


def _smtp_code_in(text: str, failure: bool = False) -> str | None:
    """The first SMTP reply code in ``text``; with ``failure``, the first 4xx/5xx one."""
    for match in _SMTP_CODE.finditer(text):
        if not failure or match.group(1)[0] in "45":
            return match.group(1)
    return None


def _squash(text: str, limit: int = MAX_DIAGNOSTIC_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_hard(status: str | None, code: str | None, diagnostic: str) -> bool:
    if status:
        return status.startswith("5")
    if code:
        return code.startswith("5") and code != "552"
    return bool(_PERMANENT_WORDS.search(diagnostic))


def _normalise_message_id(value: str | None) -> str | None:
    if not value:
        return None
    value = header_text(value).strip()
    match = re.search(r"<([^<>\s]+)>", value)
    if match:
        value = match.group(1)
    value = value.strip().strip("<>").strip()
    return value or None


# --------------------------------------------------------------------------- walking


@dataclass
class _Facts:
    """What one walk over the MIME tree found."""

    dsn_groups: list[list[tuple[str, str]]]
    feedback_groups: list[list[tuple[str, str]]]
    original_headers: list[Message]
    report_text: list[str]
    has_mdn: bool
    report_type: str


def _walk(root: Message) -> Iterator[tuple[Message, bool]]:
    """Yield (part, inside_original) depth first, bounded."""
    stack: list[tuple[Message, bool]] = [(root, False)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, inside = stack.pop()
        seen += 1
        yield part, inside
        ctype = part.get_content_type()
        if ctype in _REPORT_PART_TYPES or ctype == "message/feedback-report":
            continue
        if ctype in _ORIGINAL_PART_TYPES:
            continue  # the returned message is evidence, not part of the report
        payload = part.get_payload()
        if isinstance(payload, list):
            for child in reversed(payload):
                if isinstance(child, Message):
                    stack.append((child, inside))


def _collect(root: Message) -> _Facts:
    report_type = root.get_param("report-type", "")
    facts = _Facts([], [], [], [], False, report_type if isinstance(report_type, str) else "")
    text_chars = 0
    for part, inside in _walk(root):
        ctype = part.get_content_type()
        if ctype in _REPORT_PART_TYPES:
            facts.dsn_groups.extend(_field_groups(part))
            continue
        if ctype == "message/feedback-report":
            facts.feedback_groups.extend(_field_groups(part))
            continue
        if ctype in ("message/disposition-notification", "message/global-disposition-notification"):
            facts.has_mdn = True
            continue
        if ctype in _ORIGINAL_PART_TYPES and not inside:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                facts.original_headers.append(payload[0])
            else:
                with contextlib.suppress(Exception):
                    headers = HeaderParser().parsestr(_part_text(part), headersonly=True)
                    facts.original_headers.append(headers)
            continue
        if inside or part.is_multipart():
            continue
        maintype = part.get_content_maintype()
        if maintype not in ("text", "multipart") and part is not root:
            continue
        if text_chars >= MAX_REPORT_CHARS:
            continue
        text = _part_text(part)
        if part.get_content_subtype() == "html":
            if any(t for t in facts.report_text):
                continue
            text = _html_to_text(text)
        text = text[: MAX_REPORT_CHARS - text_chars]
        text_chars += len(text)
        facts.report_text.append(text)
    return facts


# --------------------------------------------------------------------------- detection


def detect_bounce(raw: bytes | MailSource, mail_from: str = "") -> BounceReport | None:
    """Classify ``raw`` (bytes, or the source ``analyze`` read) as a delivery report, or
    return None; never raises.

    ``mail_from`` is the SMTP envelope sender when known: ``"<>"`` is the null
    sender that delivery reports use; ``""`` means "not known" (IMAP, pipe).
    """
    try:
        if not isinstance(raw, MailSource):  # called on its own: build no tree to cut
            raw = read_source(raw, headers_only=_too_wide(bytes(raw)))
        return _detect(raw, mail_from)
    except Exception:  # defensive: a classifier must not take the pipeline down
        log.exception("bounce detection failed; treating the message as not a bounce")
        return None


def _too_wide(data: bytes) -> bool:
    """More MIME boundaries than a report has: no report's shape, its body is read as text."""
    return (data.count(b"boundary=", 0, MAX_BYTES) > MAX_BOUNDARIES
            or data.count(b"\n--", 0, MAX_BYTES) > 10 * MAX_BOUNDARIES)


def _report_tree(source: MailSource) -> Message:
    """The tree the report is read from, bounded: a report is small, only the returned
    original can be large; a structure too wide for a report is read as text."""
    data = source.data
    if source.defect or _too_wide(data):
        log.info("MIME structure too deep or too wide; reading the body as text")
        return source.text_view(MAX_BYTES)
    if len(data) > MAX_BYTES:
        return source.bounded_view(MAX_BYTES, MAX_PARTS)
    return source.message


@dataclass(slots=True)
class _Head:
    """What the header fields and the envelope say, read once for every step below
    (slots, not frozen: see ``automatic._Signals``)."""

    head: Message
    subject: str
    sender: str  # the first From address, lower-cased; "" when there is none
    envelope: str
    null_sender: bool
    robot: bool  # a mail system's or robot's From
    failed_header: list[str]  # X-Failed-Recipients values
    list_rejection: bool
    ctype: str


def _read_head(head: Message, mail_from: str) -> _Head:
    subject = header_text(head.get("subject", ""))
    from_addrs = _addresses(head.get("from", ""))
    sender = from_addrs[0] if from_addrs else ""
    envelope = mail_from.strip()
    return_path = str(head.get("return-path", "") or "").strip()
    return _Head(
        head=head,
        subject=subject,
        sender=sender,
        envelope=envelope,
        null_sender=envelope == "<>" or (not envelope and return_path.replace(" ", "") == "<>"),
        robot=_is_robot_sender(head, sender),
        failed_header=head.get_all("x-failed-recipients") or [],
        list_rejection=_is_list_rejection(head, sender, subject),
        ctype=head.get_content_type(),
    )


def _is_robot_sender(head: Message, sender: str) -> bool:
    if sender:
        return bool(_ROBOT_LOCAL.match(_local_part(sender)))
    raw_from = str(head.get("from", "") or "").lower()
    return ("mailer-daemon" in raw_from or "postmaster" in raw_from
            or raw_from.strip() in ("<>", "") or raw_from.rstrip().endswith("<>"))


def _is_candidate(h: _Head, body_peek: str) -> bool:
    """Whether the header fields or the start of the body look like a report: only then
    is the whole message read."""
    peek = fold(body_peek)
    lowered_peek = body_peek.lower() if peek.lower is None else peek.lower
    return h.list_rejection or (
        h.ctype == "multipart/report"
        or h.ctype in _REPORT_PART_TYPES
        or h.ctype == "message/feedback-report"
        or "message/delivery-status" in lowered_peek
        or "message/global-delivery-status" in lowered_peek
        or "message/feedback-report" in lowered_peek
        or bool(h.failed_header)
        or h.robot
        or h.null_sender
        or _BOUNCE_SUBJECT.search(h.subject) is not None
        or '"notificationtype"' in lowered_peek
        or "x-hmxmroriginalrecipient" in lowered_peek
        or _apple_unsubscribe(h.head)
        or _REPORT_MARKERS.search(peek) is not None
        or _FAILURE_PHRASES.search(peek) is not None
    )


def _a_persons_mail_with_a_report_in_it(h: _Head) -> bool:
    """A person's own mail (no null sender, no mail system's From, no X-Failed-Recipients)
    that is ``multipart/mixed``: a delivery report inside it is one she attached ("our
    mail to you bounced, the report is attached"), a request for us, never a report about
    our mail.  Mail systems send delivery reports as ``multipart/report`` (RFC 3464) or as
    text from a robot's address, with the null sender.  (Complaints are decided before:
    Microsoft's come as ``multipart/mixed`` from a person-like address.)"""
    return (h.ctype == "multipart/mixed"
            and not (h.robot or h.null_sender or h.failed_header or h.list_rejection)
            and not _SYSTEM_NAME.search(str(h.head.get("from", "") or "")))


def _apple_unsubscribe(head: Message) -> bool:
    return str(head.get("x-apple-unsubscribe", "")).strip().lower() == "true"


def _detect(source: MailSource, mail_from: str) -> BounceReport | None:
    body_peek = source.body_text(PEEK_CHARS)
    h = _read_head(source.message, mail_from)
    if not _is_candidate(h, body_peek):
        return None

    message = _report_tree(source)
    facts = _collect(message)
    report_text = "\n".join(facts.report_text)
    original_id = _original_message_id(facts, report_text)

    ses = _amazon_ses(report_text, original_id)
    if ses is not None:
        return ses
    if _is_challenge(h, facts, report_text):
        log.debug("challenge/response message, not a bounce: %s", h.subject)
        return None
    complaint = _complaint(h, facts, message, original_id)
    if complaint is not None:
        return complaint
    if facts.has_mdn and not facts.dsn_groups:
        return None
    if _a_persons_mail_with_a_report_in_it(h):
        return None
    return _delivery_report(h, facts, message, report_text, original_id)


def _is_challenge(h: _Head, facts: _Facts, report_text: str) -> bool:
    """A challenge/response robot dressed up as a bounce (``automatic`` names it)."""
    diagnostics = " ".join(v for g in facts.dsn_groups for k, v in g if k == "diagnostic-code")
    challenge_text = " ".join((h.subject, h.sender, diagnostics, report_text[:5000]))
    return _CHALLENGE.search(challenge_text) is not None or any(
        name.lower().startswith(("x-boxbe", "x-bluebottle")) for name in h.head
    )


def _complaint(
    h: _Head, facts: _Facts, message: Message, original_id: str | None
) -> BounceReport | None:
    """A feedback report: ARF, a Microsoft JMRP complaint or an Apple unsubscribe robot."""
    if facts.feedback_groups or facts.report_type.lower() == "feedback-report":
        return _feedback(facts, message, original_id)
    jmrp = [
        a for head in facts.original_headers
        for a in _addresses(head.get("x-hmxmroriginalrecipient"))
    ]
    if jmrp:  # Microsoft JMRP complaint: the reported mail, with its recipient marked
        facts.feedback_groups.append([("feedback-type", "abuse")]
                                     + [("original-rcpt-to", a) for a in jmrp])
        return _feedback(facts, message, original_id)
    if _apple_unsubscribe(h.head) and h.sender:
        facts.feedback_groups.append(
            [("feedback-type", "opt-out"), ("original-rcpt-to", h.sender)])
        return _feedback(facts, message, original_id)
    return None


def _delivery_report(
    h: _Head, facts: _Facts, message: Message, report_text: str, original_id: str | None
) -> BounceReport | None:
    """A bounce, delay or success: from the RFC 3464 fields, else from the wording."""
    own = _own_addresses(message, h.envelope, h.sender, facts, report_text)
    if (not facts.dsn_groups and _TEXT_DSN_RECIPIENT.search(report_text)
            and _TEXT_DSN_ACTION.search(report_text)):
        # Some MTAs paste the RFC 3464 fields into the text part instead of their own part.
        facts.dsn_groups.extend(_blocks(_TEXT_DSN_CLEAN.sub("", report_text)))
    if facts.dsn_groups:
        listed = [a for v in h.failed_header for a in _addresses(v)]
        report = _from_dsn(facts, report_text, original_id, listed)
        if report is not None:
            return report

    if h.list_rejection:
        return _list_rejection(h.subject, h.sender, report_text, original_id, own)
    report = _from_text(
        message, h.subject, h.sender, h.robot, h.null_sender, h.failed_header, report_text,
        original_id, own, bool(facts.dsn_groups) or h.ctype == "multipart/report",
    )
    if report is not None and report.recipients:
        return report
    return _with_library(h, message, report, report_text, original_id)


def _with_library(
    h: _Head, message: Message, report: BounceReport | None, report_text: str,
    original_id: str | None,
) -> BounceReport | None:
    """``report`` (from the wording, without recipients, or None), or ``flufl.bounce``'s
    when the message comes from a reporter and is no person's forward."""
    forwarded = (not (h.robot or h.null_sender or h.failed_header)
                 and _FORWARD_SUBJECT.match(h.subject))
    reporter = (h.robot or h.null_sender or bool(h.failed_header) or report is not None
                or _BOUNCE_SUBJECT.search(h.subject) is not None
                or _FAILURE_PHRASES.search(h.subject) is not None
                or _REPORT_MARKERS.search(fold(report_text[:PEEK_CHARS])) is not None)
    if forwarded or not reporter:
        return report
    return _library_report(message, report, report_text, original_id, h.envelope) or report


def _library_failures(message: Message) -> tuple[list[str], set[str]]:
    """Failed recipients by GNU Mailman's ``flufl.bounce`` detectors: (all, permanent).

    Its detectors know the wording of many MTAs (qmail, Exim, Postfix, Exchange,
    GroupWise, Yahoo, Sina, ...) and tell temporary from permanent failures; they
    assume the message *is* a bounce, so the caller asks only when other evidence
    says so.
    """
    try:
        temporary, permanent = all_failures(message)
    except Exception as error:  # a detector choking on odd input must not lose the message
        log.info("flufl.bounce failed on this message (%s: %s); no recipients from it",
                 type(error).__name__, error, exc_info=log.isEnabledFor(logging.DEBUG))
        return [], set()

    def text(address: bytes) -> str:
        return address.decode("latin-1").strip().strip("<>").lower()

    hard = {text(a) for a in permanent}
    found = sorted({text(a) for a in temporary} | hard)
    return [a for a in found if _ADDRESS.fullmatch(a)], hard


def _library_report(
    message: Message, text_report: BounceReport | None, report_text: str,
    original_id: str | None, envelope: str,
) -> BounceReport | None:
    """A report from ``flufl.bounce``'s recipients, with our diagnostics for each.

    Only the report's own sender and addressees are left out: the returned original
    often names the failed recipient as its sender (a list's reply to a member).
    """
    addresses, permanent = _library_failures(message)
    own = {envelope.strip("<>").lower()}
    for name in ("from", "to", "cc", "sender"):
        for value in message.get_all(name) or []:
            own.update(_addresses(value))
    addresses = [a for a in addresses if a not in own]
    if not addresses:
        return None
    cut = _original_start(report_text)
    section = (report_text[:cut] if cut is not None else report_text)[:MAX_REPORT_CHARS]
    lowered = section.lower()
    rows = []
    for address in addresses:
        pos = lowered.find(address)
        row = _row_from_text(address, section, pos, len(section) if pos < 0 else pos + 2000,
                             len(addresses), address in permanent)
        if row.status is None and row.smtp_code is None:
            row = FailedRecipient(row.address, None, None, row.diagnostic, address in permanent)
        rows.append(row)
    if not permanent and (text_report is None or text_report.kind == "delay_notification"):
        # Only temporary failures: a warning, the mail is still being retried.
        soft = [FailedRecipient(r.address, r.status, r.smtp_code, r.diagnostic, False)
                for r in rows]
        return _report("delay_notification", soft, original_id)
    return _report("bounce", rows, original_id)


_LIST_MANAGER_HEADERS = ("x-mlserver", "x-ml-name", "x-mailman-version", "x-ecartis-version",
                         "x-listserver", "x-list-server")
_LIST_ROBOT = re.compile(r"-(?:admin|owner|request|bounces?)$|^(?:owner|listserv|majordomo)-?",
                         re.IGNORECASE)
_LIST_REJECTION_SUBJECT = re.compile(
    r"are not (?:a )?member|not a member|loop alert|post(?:ing)? (?:rejected|refused)|"
    r"message (?:rejected|refused)|not allowed to post|non-member submission",
    re.IGNORECASE,
)


def _is_list_rejection(head: Message, sender: str, subject: str) -> bool:
    """A mailing-list manager refusing our post (fml, Mailman, Majordomo)."""
    return bool(
        _LIST_REJECTION_SUBJECT.search(subject)
        and _LIST_ROBOT.search(_local_part(sender))
        and any(head.get(name) for name in _LIST_MANAGER_HEADERS)
    )


def _list_rejection(
    subject: str, sender: str, report_text: str, original_id: str | None, own: set[str]
) -> BounceReport:
    cut = _original_start(report_text)
    section = report_text[:cut] if cut is not None else report_text
    # The list's own address is the first one the notice names ("... of this mailing
    # list <list@example.org>").
    named = (m.group(0).lower() for m in _ADDRESS.finditer(section[:MAX_REPORT_CHARS]))
    address = next((a for a in named if a not in own), sender)
    rows = [FailedRecipient(address, None, None, _squash(subject), False)]
    return BounceReport("bounce", tuple(rows), original_id,
                        f"mailing list manager {sender} refused the message: {subject[:120]}")


def _original_message_id(facts: _Facts, report_text: str) -> str | None:
    for headers in facts.original_headers:
        mid = _normalise_message_id(headers.get("message-id"))
        if mid:
            return mid
    cut = _original_start(report_text)
    if cut is not None:
        match = _MESSAGE_ID_LINE.search(report_text, cut)
        if match:
            return _normalise_message_id(match.group(1))
    return None


def _original_start(text: str) -> int | None:
    positions = []
    marker = _ORIGINAL_MARKERS.search(text)
    if marker:
        positions.append(marker.start())
    header = _HEADER_START.search(text)
    if header:
        positions.append(header.start())
    return min(positions) if positions else None


def _own_addresses(
    message: Message, envelope: str, sender: str, facts: _Facts, report_text: str
) -> set[str]:
    """Addresses that are not failed recipients: the original sender and the reporter."""
    own: set[str] = set()
    for name in ("to", "cc", "delivered-to", "envelope-to"):
        for value in message.get_all(name) or []:
            own.update(_addresses(value))
    if envelope.strip("<>"):
        own.add(envelope.strip("<>").lower())
    if sender:
        own.add(sender)
    for headers in facts.original_headers:
        for name in ("from", "return-path", "sender", "reply-to"):
            own.update(_addresses(headers.get(name, "")))
    cut = _original_start(report_text)
    if cut is not None:
        tail = report_text[cut : cut + 20000]
        for match in re.finditer(r"^(?:From|Return-Path|Sender):(.*)$", tail, re.I | re.M):
            own.update(_addresses(match.group(1)))
    for groups in facts.dsn_groups:
        for key, value in groups:
            if key in ("x-postfix-sender", "x-original-message-sender"):
                own.add(_clean_address(value))
    return own


_FAILED_ACTIONS = ("failed", "undeliverable")
_DELIVERED_ACTIONS = ("delivered", "relayed", "expanded", "deliverable")


def _from_dsn(
    facts: _Facts, report_text: str, original_id: str | None, failed_header: list[str]
) -> BounceReport | None:
    rows = [
        row for group in facts.dsn_groups
        if (row := _dsn_row(group, report_text, failed_header)) is not None
    ]
    if not rows:
        return None
    if len(rows) == 1 and rows[0][1].smtp_code is None and rows[0][0] != "delivered":
        rows = [_with_text_code(rows[0], report_text)]
    return _dsn_report(rows, original_id)


def _dsn_row(
    group: list[tuple[str, str]], report_text: str, failed_header: list[str]
) -> tuple[str, FailedRecipient] | None:
    """(action, recipient) of one per-recipient field group; None without a recipient."""
    fields: dict[str, str] = {}
    for key, value in group:
        fields.setdefault(key, value)
    address = _dsn_address(fields, failed_header)
    if not address:
        return None
    words = fields.get("action", "").split()
    action = words[0].lower().strip(";") if words else ""
    diagnostic = _strip_type(fields.get("diagnostic-code", ""))
    if not diagnostic:
        diagnostic = _text_diagnostic(report_text, _clean_address(address))
    status = _dsn_status(fields.get("status", ""), diagnostic)
    if not action:
        action = {"2": "delivered", "4": "delayed", "5": "failed"}.get((status or "5")[0],
                                                                      "failed")
    code = _smtp_code_in(diagnostic, failure=action not in _DELIVERED_ACTIONS)
    recipient = FailedRecipient(
        address=_clean_address(address),
        status=status,
        smtp_code=code,
        diagnostic=_squash(diagnostic),
        hard=_is_hard(status, code, diagnostic) if action in _FAILED_ACTIONS else False,
    )
    return action, recipient


def _dsn_address(fields: dict[str, str], failed_header: list[str]) -> str:
    named = [fields.get("final-recipient", ""), fields.get("original-recipient", "")]
    # "Final-Recipient: LOCAL;<f.b>" names a mailbox; the original recipient has the domain.
    address = next((a for a in named if "@" in a), named[0] or named[1])
    if address and "@" not in address and len(failed_header) == 1:
        address = failed_header[0]  # Exim: "Final-Recipient: rfc822;/path/to/mailbox"
    return address


def _dsn_status(field: str, diagnostic: str) -> str | None:
    status = _status_in(field)
    remote = _remote_status(diagnostic)
    if remote:
        # The remote server's own enhanced code is more precise than the status the
        # reporting MTA synthesised ("5.0.0", or 5.1.1 for every RCPT rejection).
        return remote
    if status is None or status.endswith(".0.0"):
        return _status_in(diagnostic) or status
    return status


def _with_text_code(
    row: tuple[str, FailedRecipient], report_text: str
) -> tuple[str, FailedRecipient]:
    """No Diagnostic-Code: a lone recipient's SMTP reply is in the human-readable part."""
    action, recipient = row
    cut = _original_start(report_text)
    code = _smtp_code_in(report_text[: min(cut or 5000, 5000)], failure=True)
    if not code:
        return row
    return action, FailedRecipient(recipient.address, recipient.status, code,
                                   recipient.diagnostic, recipient.hard)


def _dsn_report(
    rows: list[tuple[str, FailedRecipient]], original_id: str | None
) -> BounceReport:
    """The report of the per-recipient rows: a failure wins over a delay over a success."""
    failed = [r for a, r in rows if a in _FAILED_ACTIONS]
    delayed = [r for a, r in rows if a == "delayed"]
    delivered = [r for a, r in rows if a in _DELIVERED_ACTIONS]
    if failed:
        # Recipients still being retried are listed too, as soft failures.
        problems = [r for a, r in rows if a in (*_FAILED_ACTIONS, "delayed")]
        return _report("bounce", problems, original_id)
    if delayed:
        return _report("delay_notification", delayed, original_id)
    if delivered:
        return _report("delivery_success", delivered, original_id)
    return _report("bounce", [r for _, r in rows], original_id)


def _text_diagnostic(report_text: str, address: str) -> str:
    cut = _original_start(report_text)
    section = report_text[:cut] if cut is not None else report_text
    index = section.lower().find(address)
    if index < 0:
        return ""
    return section[index + len(address) : index + len(address) + MAX_DIAGNOSTIC_CHARS]


def _feedback(facts: _Facts, message: Message, original_id: str | None) -> BounceReport:
    feedback_type = ""
    recipients: list[str] = []
    for group in facts.feedback_groups:
        for key, value in group:
            if key == "feedback-type" and not feedback_type:
                feedback_type = value.split()[0].lower() if value.split() else ""
            elif key in ("original-rcpt-to", "removal-recipient"):
                recipients.append(_clean_address(value))
    if not recipients:
        for headers in facts.original_headers:
            recipients.extend(_addresses(headers.get("to", "")))
    if not recipients:
        for key in ("original-rcpt-to",):
            recipients.extend(_addresses(message.get(key, "")))
    seen: list[str] = []
    for address in recipients:
        if address and address not in seen:
            seen.append(address)
    rows = [
        FailedRecipient(address=a, status=None, smtp_code=None,
                        diagnostic=f"feedback-type: {feedback_type or 'unknown'}", hard=False)
        for a in seen
    ]
    about = f" about mail to {', '.join(seen[:3])}" if seen else ""
    reason = f"feedback report ({feedback_type or 'complaint'}){about}"
    return BounceReport("feedback_report", tuple(rows), original_id, reason)


def _amazon_ses(report_text: str, original_id: str | None) -> BounceReport | None:
    """Amazon SES notifications: JSON, bare or wrapped in an SNS envelope."""
    start = report_text.find("{")
    if start < 0 or "notificationType" not in report_text[start : start + 2000]:
        return None
    # Long lines arrive folded by the mail system as "!\n " (RFC 5322 line-length limit).
    blob = report_text[start:].replace("!\n ", "").replace("!\r\n ", "")
    data, _ = _json_prefix(blob)
    if isinstance(data, dict) and isinstance(data.get("Message"), str):
        data, _ = _json_prefix(data["Message"])
    if not isinstance(data, dict):
        return None
    kind = str(data.get("notificationType") or data.get("eventType") or "")
    mail = data.get("mail") if isinstance(data.get("mail"), dict) else {}
    mid = original_id
    if isinstance(mail, dict):
        common = mail.get("commonHeaders")
        if isinstance(common, dict) and common.get("messageId"):
            mid = _normalise_message_id(str(common["messageId"])) or mid
    if kind == "Bounce" and isinstance(data.get("bounce"), dict):
        bounce = data["bounce"]
        permanent = str(bounce.get("bounceType", "")) == "Permanent"
        rows = []
        for item in bounce.get("bouncedRecipients") or []:
            if not isinstance(item, dict) or not item.get("emailAddress"):
                continue
            diagnostic = _strip_type(str(item.get("diagnosticCode") or ""))
            status = _status_in(str(item.get("status") or "")) or _status_in(diagnostic)
            code = _smtp_code_in(diagnostic)
            rows.append(FailedRecipient(
                address=str(item["emailAddress"]).lower(), status=status, smtp_code=code,
                diagnostic=_squash(diagnostic),
                hard=permanent or _is_hard(status, code, diagnostic)))
        return _report("bounce", rows, mid, robot="Amazon SES")
    if kind == "Complaint" and isinstance(data.get("complaint"), dict):
        complaint = data["complaint"]
        ftype = str(complaint.get("complaintFeedbackType") or "abuse")
        rows = [
            FailedRecipient(address=str(item.get("emailAddress", "")).lower(), status=None,
                            smtp_code=None, diagnostic=f"feedback-type: {ftype}", hard=False)
            for item in complaint.get("complainedRecipients") or []
            if isinstance(item, dict) and item.get("emailAddress")
        ]
        about = f" about mail to {', '.join(r.address for r in rows[:3])}" if rows else ""
        return BounceReport("feedback_report", tuple(rows), mid,
                            f"Amazon SES feedback report ({ftype}){about}")
    if kind == "Delivery" and isinstance(data.get("delivery"), dict):
        delivery = data["delivery"]
        diagnostic = str(delivery.get("smtpResponse") or "")
        rows = [
            FailedRecipient(address=str(a).lower(), status=_status_in(diagnostic),
                            smtp_code=_smtp_code_in(diagnostic), diagnostic=_squash(diagnostic),
                            hard=False)
            for a in delivery.get("recipients") or []
        ]
        return _report("delivery_success", rows, mid, robot="Amazon SES")
    return None


def _json_prefix(blob: str) -> tuple[object, int]:
    try:
        return json.JSONDecoder().raw_decode(blob)
    except ValueError:
        return None, 0


def _report(
    kind: str, rows: list[FailedRecipient], original_id: str | None, robot: str = ""
) -> BounceReport:
    unique: list[FailedRecipient] = []
    seen: set[str] = set()
    for row in rows:
        if row.address and row.address not in seen:
            seen.add(row.address)
            unique.append(row)
    verb = {
        "bounce": "delivery failed",
        "delay_notification": "delivery delayed",
        "delivery_success": "delivered",
    }[kind]
    prefix = f"{robot} reports " if robot else ""
    if not unique:
        return BounceReport(kind, (), original_id,
                            f"{prefix}{verb}, but the report names no recipient")
    first = unique[0]
    names = ", ".join(r.address for r in unique[:3])
    if len(unique) > 3:
        names += f" and {len(unique) - 3} more"
    detail = " ".join(x for x in (first.status or first.smtp_code or "",
                                  _squash(first.diagnostic, 160)) if x)
    preposition = "to" if kind == "delivery_success" else "for"
    reason = f"{prefix}{verb} {preposition} {names}" + (f": {detail}" if detail else "")
    return BounceReport(kind, tuple(unique), original_id, reason)


# --------------------------------------------------------------------------- plain text

_LINE_ADDRESS = re.compile(
    r"^[ \t]*(?:[-*•][ \t]*)?(?:[245]\d\d[ -]+)?(?:RCPT TO:|Recipient:|Address:|"
    r"Recipient address:|Original-Recipient:[^;\n]*;|Final-Recipient:[^;\n]*;)?[ \t]*"
    r"\"?<?(" + _ADDRESS.pattern + r")>?\"?(?:[ \t:]|\.\.\.|\(|$)",
    re.MULTILINE | re.IGNORECASE,
)
_INLINE_ADDRESS = re.compile(
    r"(?:delivered to|deliver (?:your message )?to|delivering your mail to|recipient|"
    r"address(?:ee)?|user|mailbox|to)[:\s]+(?:the following (?:address|recipient)[:\s]+)?"
    r"\"?<?(" + _ADDRESS.pattern + r")>?",
    re.IGNORECASE,
)
_DOMINO = re.compile(r"User [^\n(]{0,80}\((" + _ADDRESS.pattern + r")\)", re.IGNORECASE)
_NOT_RECIPIENT_CONTEXT = re.compile(
    r"(?:mail from:?|envelope-from|from:?|sender:?|return-path:?|reply-to:?|message-id:?|"
    r"smtp\.mail=|by |postmaster)\s*<?$",
    re.IGNORECASE,
)


_GIVEN_UP = Phrases(r"permanent|given up|gave up|failed permanently",
                     needles=("permanent", "given up", "gave up"))
_FORWARD_SUBJECT = re.compile(r"^\s*(?:fwd?|fw|wg|tr|rv|enc|doorst|i)\s*:", re.IGNORECASE)
_QUOTED_LINE = re.compile(r"^[ \t]*>.*$", re.MULTILINE)
_MEANINGFUL = re.compile(r"[^\W_]{3,}")


def _from_text(
    message: Message,
    subject: str,
    sender: str,
    robot: bool,
    null_sender: bool,
    failed_header: list[str],
    report_text: str,
    original_id: str | None,
    own: set[str],
    report_structure: bool,
) -> BounceReport | None:
    if not (robot or null_sender or failed_header) and _FORWARD_SUBJECT.match(subject):
        # A person forwarding a bounce to us ("why did my mail fail?") is asking for help.
        return None
    cut = _original_start(report_text)
    section = report_text[:cut] if cut is not None else report_text
    section = section[:MAX_REPORT_CHARS]
    if not (robot or null_sender):
        section = _QUOTED_LINE.sub("", section)  # quoted text is what a person replied to
    strong_local = bool(sender) and bool(_STRONG_ROBOT_LOCAL.match(_local_part(sender)))
    strong_sender = strong_local or is_mail_system(message.get("from", ""))
    subject_hit = _BOUNCE_SUBJECT.search(subject) is not None
    peek = fold(section[:PEEK_CHARS])
    marker = _REPORT_MARKERS.search(peek) is not None
    phrase = (_FAILURE_PHRASES.search(peek) is not None
              or _FAILURE_PHRASES.search(subject) is not None)
    evidence = sum(
        (
            2 * bool(failed_header),
            strong_sender or null_sender,
            robot and not strong_local,
            subject_hit,
            2 if marker else 1 if phrase else 0,
            report_structure,
        )
    )
    hard_signal = bool(failed_header or strong_sender or null_sender or marker or report_structure)
    if evidence < 3 or not hard_signal:
        return None

    addresses = _text_recipients(section, own)
    if failed_header:
        listed = [a for v in failed_header for a in _addresses(v)]
        addresses = listed or addresses
    if not addresses:
        # Last resort: a returned original with exactly one recipient names it.
        originals = [a for h in _original_recipients(message, report_text) for a in h]
        if len(originals) == 1 and originals[0] not in own:
            addresses = originals
    lowered = section.lower()
    positions = sorted(
        (pos, addr) for addr in addresses if (pos := lowered.find(addr)) >= 0
    )
    final_text = peek  # section[:PEEK_CHARS], folded once for the three searches below
    permanent = _GIVEN_UP.search(final_text) is not None
    rows = []
    for index, (pos, address) in enumerate(positions):
        end = positions[index + 1][0] if index + 1 < len(positions) else len(section)
        rows.append(_row_from_text(address, section, pos, end, len(addresses), permanent))
    for address in addresses:
        if all(r.address != address for r in rows):
            # Named only in X-Failed-Recipients: the report text is its diagnostic.
            rows.append(_row_from_text(address, section, -1, len(section), len(addresses),
                                       permanent))

    delayed = (_DELAY_MARKERS.search(subject) is not None
               or _DELAY_MARKERS.search(final_text) is not None)
    final = (_FINAL_MARKERS.search(subject) is not None
             or _FINAL_MARKERS.search(final_text) is not None)
    if delayed and not final:
        rows = [FailedRecipient(r.address, r.status, r.smtp_code, r.diagnostic, False)
                for r in rows]
        return _report("delay_notification", rows, original_id)
    return _report("bounce", rows, original_id)


def _original_recipients(message: Message, report_text: str) -> list[list[str]]:
    """To addresses of the returned original message (part or pasted text)."""
    found: list[list[str]] = []
    for part, _inside in _walk(message):
        if part.get_content_type() in _ORIGINAL_PART_TYPES:
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                found.append(_addresses(payload[0].get("to", "")))
    if not found:
        cut = _original_start(report_text)
        if cut is not None:
            tail = report_text[cut : cut + 20000]
            match = re.search(r"^To:(.*(?:\n[ \t].*)*)", tail, re.IGNORECASE | re.MULTILINE)
            if match:
                found.append(_addresses(match.group(1)))
    return found


def _row_from_text(
    address: str, section: str, pos: int, end: int, count: int, permanent: bool
) -> FailedRecipient:
    """One failed recipient from a plain-text report: the lines around its address."""
    if pos < 0:
        block = section[:2000] if count == 1 else ""
    else:
        line_start = section.rfind("\n", 0, pos) + 1
        block = section[line_start : min(end, pos + 2000)]
        rest = block.lower().replace(address, " ")
        if len(_MEANINGFUL.findall(rest)) < 2:
            # "Unknown user: addr" / "reason\naddr": the reason precedes the address.
            before = section[max(0, line_start - 600) : line_start].rstrip("\n")
            paragraph = before.rsplit("\n\n", 1)[-1]
            block = paragraph[-400:] + "\n" + block
    status = _status_in(block)
    code = _smtp_code_in(block, failure=True)
    if status is None and code is None and count == 1:
        # A single recipient: the codes anywhere in the report are its codes.
        status = _status_in(section[:5000])
        code = _smtp_code_in(section[:5000], failure=True)
    diagnostic = _squash(block.replace(address, "").strip(" \t:<>\n"))
    hard = _is_hard(status, code, block) or (status is None and code is None and permanent)
    return FailedRecipient(address, status, code, diagnostic, hard)


def _text_recipients(section: str, own: set[str]) -> list[str]:
    found: list[str] = []

    def add(address: str, start: int) -> None:
        address = address.lower().strip(".")
        if address in own or address in found:
            return
        if _ROBOT_LOCAL.match(_local_part(address)) and _STRONG_ROBOT_LOCAL.match(
            _local_part(address)
        ):
            return
        before = section[max(0, start - 20) : start]
        if _NOT_RECIPIENT_CONTEXT.search(before):
            return
        found.append(address)

    for pattern in (_LINE_ADDRESS, _DOMINO, _INLINE_ADDRESS):
        for match in pattern.finditer(section):
            add(match.group(1), match.start(1))
        if found:
            return found
    for match in _ADDRESS.finditer(section):
        add(match.group(0), match.start())
    return found
