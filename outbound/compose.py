"""Build every message the gateway sends as an ``EmailMessage`` (DESIGN §8, STYLE convention 10).

Why one place: the headers that make our mail thread correctly, recognisable as automatic
(RFC 3834) and impossible to abuse must be identical on every notice, as Mailman builds all
its notices through one class. This module only composes; it neither renders templates
(``outbound.render``) nor sends (``outbound.transports``).

Guarantees:

- Headers are set through the standard library's email policy (``email.policy.SMTP``, CRLF
  line ends) and its header objects, never by string concatenation. Before that, every CR,
  LF and other control character in a subject, display name or extra header value is
  collapsed to one space, so user text such as ``"hi\\r\\nBcc: evil@example.com"`` stays
  inside its own header. Addresses, message ids and header names are validated instead and
  rejected with ``ValueError``.
- Headers that must reach the recipient byte for byte (Message-ID, In-Reply-To, References
  and ASCII ``extra_headers`` such as List-Unsubscribe) are folded only between words. Left
  to itself the standard library turns any word longer than a line (an Outlook Message-ID,
  an unsubscribe URL) into an RFC 2047 encoded-word, which no client decodes there: threads
  and unsubscribe links would silently break.
- Message ids are written ``<id>`` whether given with or without angle brackets. References
  are the given ids plus ``in_reply_to`` as the last one, duplicates removed, capped to
  :data:`MAX_REFERENCES` (the thread root and the most recent ones are kept). Ids that came
  from outside and are unusable (spaces, non-ASCII, far too long) are dropped with a warning
  rather than failing the whole mail.
- Bodies are UTF-8 ``text/plain`` followed by ``text/html`` in ``multipart/alternative``. The
  message policy is ``email.policy.SMTP`` restricted to 7-bit transfer encodings, so the
  standard library picks 7bit, quoted-printable or base64 per part: the bytes are ASCII, no
  line exceeds 998 octets, and no relay needs 8BITMIME.
"""

from __future__ import annotations

import email.generator
import email.policy
import email.utils
import functools
import logging
import random
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.headerregistry import Address, BaseHeader, Group, HeaderRegistry
from email.message import EmailMessage, Message
from email.policy import Policy
from io import BytesIO
from typing import Any

__all__ = [
    "MAX_REFERENCES",
    "POLICY",
    "Content",
    "Envelope",
    "compose",
    "make_message_id",
    "message_bytes",
    "normalise_message_id",
    "unwritable_address",
    "verbatim_header",
]

log = logging.getLogger(__name__)


class _FoldOnce(BaseHeader):
    """A standard header object that remembers its folded text for the last policy.

    The generator folds every header of every message it writes, and folding re-walks
    the header's parse tree; a shared header object (see :class:`_HeaderClasses`) is
    folded once per policy instead.  The remembered text is not part of its state.

    "The same policy" is one of the same class with the same settings, not only the
    same object: the generator writes each part of a multipart message with a fresh
    ``policy.clone(linesep=…)`` of the message's, so an identity check missed for every
    part header (each part's Content-Type and Content-Transfer-Encoding, folded anew in
    every mail).  Folding reads nothing of a policy but its settings.
    """

    def fold(self, *, policy: Policy) -> str:
        remembered = self.__dict__.get("_folded")
        if remembered is not None and _same_policy(remembered[0], policy):
            text: str = remembered[1]
            return text
        if self.__dict__.get("_parse_tree", True) is None:  # see _plain_mailbox_header
            text = self._plain_fold(policy)
        else:
            text = super().fold(policy=policy)
        self.__dict__["_folded"] = (policy, text)
        return text

    def _plain_fold(self, policy: Policy) -> str:
        """A plain mailbox header built without its parse tree: one line when it fits
        (the library writes such a mailbox as it is), else parsed now and folded."""
        limit = policy.max_line_length
        if not limit or len(self.name) + 2 + len(self) <= limit:
            return f"{self.name}: {self}{policy.linesep}"
        self.__dict__["_parse_tree"] = self.value_parser(str(self))  # type: ignore[attr-defined]
        text: str = super().fold(policy=policy)
        return text

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_folded", None)
        return state


def _same_policy(one: Policy, other: Policy) -> bool:
    """Whether two policies fold alike: the same object, or a clone with equal settings."""
    return one is other or (type(one) is type(other) and one.__dict__ == other.__dict__)


#: Distinct header texts kept by :class:`_HeaderClasses` before it starts over.
_MAX_CACHED_HEADERS = 512


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, minus building a new class on every lookup.

    ``HeaderRegistry.__getitem__`` calls ``type()`` each time a header is set or its
    maximum count checked (about 20 classes per composed mail, a fifth of the CPU of
    composing one); the classes it builds for a name are interchangeable, so one per name
    is kept.  Headers parse and fold exactly as with the stock registry.
    """

    def __init__(self) -> None:
        super().__init__(base_class=_FoldOnce)
        self._classes: dict[str, type[BaseHeader]] = {}
        self._headers: dict[tuple[str, str], BaseHeader] = {}

    def map_to_type(self, name: str, cls: type[BaseHeader]) -> None:
        super().map_to_type(name, cls)
        self._classes.clear()
        self._headers.clear()

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls

    def __call__(self, name: str, value: Any) -> BaseHeader:
        """The header object of ``name: value``; the same object for the same text.

        Most headers of our mail repeat from one mail to the next (MIME-Version, each
        part's Content-Type, Auto-Submitted, X-Loop, …).  A header object is immutable,
        so one can stand in every message that carries that exact name and text; the
        cache is bounded and only ever holds plain ``str`` values.
        """
        if type(value) is not str:
            return super().__call__(name, value)
        key = (name, value)
        header = self._headers.get(key)
        if header is None:
            if len(self._headers) >= _MAX_CACHED_HEADERS:
                self._headers.clear()
            header = self._headers[key] = super().__call__(name, value)
        return header


#: ``email.policy.SMTP`` (CRLF, strict header parsing) with 7-bit-safe body encodings.
_HEADERS = _HeaderClasses()
POLICY = email.policy.SMTP.clone(cte_type="7bit", header_factory=_HEADERS)

# The digits of a boundary, as the standard library's generator writes them.
_BOUNDARY_DIGITS = f"%0{len(repr(sys.maxsize - 1))}d"

#: The References header keeps at most this many ids: the first (thread root) and the latest.
MAX_REFERENCES = 20

#: Longest message id (without brackets) accepted from outside; RFC 5322 lines stop at 998.
_MAX_ID_LENGTH = 250

#: Longest word a verbatim header may hold: it must fit one line of at most 998 octets.
_MAX_WORD_LENGTH = 900

# RFC 5322 field-name: printable US-ASCII except ":".
_FIELD_NAME_RE = re.compile(r"^[!-9;-~]+$")
# Inside the brackets of a message id: printable ASCII, no spaces and no brackets.
_ID_RE = re.compile(r"^[!-;=?-~]+$")
_DOMAIN_LABEL_RE = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_LANGUAGE_TAG_RE = re.compile(r"^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_SPACES_RE = re.compile(r" {2,}")
_BLANK_BEFORE_FOLD_RE = re.compile(r"[ \t]+(\r?\n[ \t])")
# RFC 5322 dot-atom-text: atext runs joined by single dots.
_DOT_ATOM_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
# A mailbox the library writes as it is: atoms for a name, a dot-atom address.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_PLAIN_MAILBOX_RE = re.compile(rf"{_PLAIN_ADDRESS}|{_ATOM}(?: {_ATOM})* <{_PLAIN_ADDRESS}>")
# Printable ASCII, blanks only between words: a text header the library writes unchanged.
_PLAIN_TEXT_RE = re.compile(r"[!-~](?:[ -~]*[!-~])?")

# Headers compose() writes itself; extra_headers may not set them (a second Subject or From is
# exactly what an injection would try), nor any Content-* header (they belong to the MIME
# structure, and making the message multipart would move them into the first part).
_RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "From",
        "Sender",
        "To",
        "Cc",
        "Bcc",
        "Reply-To",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Auto-Submitted",
        "X-Auto-Response-Suppress",
        "MIME-Version",
        "Return-Path",
    )
)


def _one_line(value: str) -> str:
    """Collapse CR, LF and every other control character to one space; strip."""
    return _SPACES_RE.sub(" ", _CONTROL_RE.sub(" ", value)).strip()


class _VerbatimHeader(str):
    """An ASCII header value the email package writes as it is, folded only at spaces.

    The policy hands any value with a ``name`` to its ``fold()`` instead of re-parsing it
    (``EmailPolicy.header_store_parse`` / ``_fold``), the documented way to supply a header
    object; being a ``str`` it reads back like any other header value.
    """

    name: str

    def __new__(cls, name: str, value: str) -> _VerbatimHeader:
        if not value.isascii() or _CONTROL_RE.search(value):
            raise ValueError(f"{name} value must be printable ASCII: {value!r}")
        if any(len(word) > _MAX_WORD_LENGTH for word in value.split(" ")):
            raise ValueError(f"{name} value has a word longer than {_MAX_WORD_LENGTH} characters")
        header = super().__new__(cls, value)
        header.name = name
        return header

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]  # copy and pickle
        return (self.name, str(self))

    def fold(self, *, policy: Policy) -> str:
        limit = policy.max_line_length or 78
        lines = [f"{self.name}:"]
        for word in self.split():
            if len(lines[-1]) + 1 + len(word) > limit and lines[-1] != f"{self.name}:":
                lines.append("")
            lines[-1] += " " + word
        return policy.linesep.join(lines) + policy.linesep


def verbatim_header(name: str, value: str) -> str:
    """A printable-ASCII header value written as it is (folded only at spaces)."""
    return _VerbatimHeader(name, value)


@functools.lru_cache(maxsize=1024)
def _domain(domain: str) -> str:
    """Validate a host name and return it in ASCII (IDNA) lower case (remembered: our own
    domain in every Message-ID, a requester's in every mail to them)."""
    candidate = domain.strip().rstrip(".")
    try:
        ascii_domain = candidate.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise ValueError(f"invalid domain {domain!r}: {exc}") from None
    labels = ascii_domain.split(".")
    if len(ascii_domain) > 253 or not all(_DOMAIN_LABEL_RE.match(label) for label in labels):
        raise ValueError(f"invalid domain {domain!r}")
    return ascii_domain


def make_message_id(domain: str) -> str:
    """A new ``<random@domain>`` Message-ID: 160 random bits, lower-case hex."""
    return f"<{secrets.token_hex(20)}@{_domain(domain)}>"


def normalise_message_id(message_id: str) -> str:
    """``"abc@x"`` or ``" <abc@x> "`` → ``"<abc@x>"``; ``ValueError`` if it cannot be one id."""
    core = message_id.strip()
    if core.startswith("<") and core.endswith(">"):
        core = core[1:-1].strip()
    if not core or len(core) > _MAX_ID_LENGTH or not _ID_RE.match(core):
        raise ValueError(f"invalid message id {message_id!r}")
    return f"<{core}>"


def _outside_id(message_id: str, header: str) -> str | None:
    try:
        return normalise_message_id(message_id)
    except ValueError:
        log.warning("dropping unusable id %r from %s", message_id[:300], header)
        return None


def _references(references: Sequence[str], in_reply_to: str | None) -> list[str]:
    ids: list[str] = []
    for raw in references:
        normalised = _outside_id(raw, "References")
        if normalised is not None and normalised not in ids:
            ids.append(normalised)
    if in_reply_to is not None:
        # The parent goes last (RFC 5322 §3.6.4), even if it also appeared earlier.
        if in_reply_to in ids:
            ids.remove(in_reply_to)
        ids.append(in_reply_to)
    if len(ids) > MAX_REFERENCES:
        ids = [ids[0], *ids[-(MAX_REFERENCES - 1) :]]
    return ids


class _SmtpUtf8Policy(email.policy.EmailPolicy):
    """The policy of mail to or from an internationalised mailbox (RFC 6531/6532).

    Every header is folded exactly as for 7-bit mail (:data:`POLICY`: Subject, display
    names and other text as RFC 2047 encoded-words, which every client decodes) and the
    result written as UTF-8: only :class:`_MailboxHeader` puts raw UTF-8 on the wire, for
    the one thing that has no other spelling, the mailbox itself.  A plain ``utf8=True``
    policy would write every header raw, and many readers show that as mojibake.
    """

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded: str = POLICY.fold(name, value)
        return folded.encode("utf-8")


#: Mail to or from an internationalised mailbox: :data:`POLICY`'s headers, written as UTF-8.
_UTF8_POLICY = _SmtpUtf8Policy(linesep="\r\n", cte_type="7bit", utf8=True,
                               header_factory=POLICY.header_factory)


class _MailboxHeader(str):
    """An address header whose mailbox is non-ASCII: display name encoded, mailbox raw."""

    name: str
    address: Address

    def __new__(cls, name: str, address: Address) -> _MailboxHeader:
        header = super().__new__(cls, str(address))
        header.name, header.address = name, address
        return header

    def __getnewargs__(self) -> tuple[str, Address]:  # type: ignore[override]  # copy, pickle
        return (self.name, self.address)

    def fold(self, *, policy: Policy) -> str:
        # Fold with an ASCII stand-in for the mailbox (so the display name is quoted or
        # encoded exactly as in any other mail), then put the real mailbox in its place.
        stand_in = Address(display_name=self.address.display_name, username="x",
                           domain="stand-in.invalid")
        folded: str = POLICY.header_factory(self.name, str(stand_in)).fold(policy=POLICY)
        return folded.replace("x@stand-in.invalid", self.address.addr_spec)


def _address(display_name: str, addr_spec: str, role: str) -> Address:
    spec = addr_spec.strip()
    if not spec or _CONTROL_RE.search(spec) or " " in spec or spec.count("@") != 1:
        raise ValueError(f"invalid {role} address {addr_spec!r}")
    local, _, domain = spec.rpartition("@")
    if not local.isascii():
        # RFC 6531/6532 internationalised mailbox: the parser refuses it, so build it from
        # parts, keeping the domain as written (validated through IDNA; SMTPUTF8 allows
        # U-labels); compose() serialises it with _SmtpUtf8Policy and _MailboxHeader.
        if _CONTROL_RE.search(local) or any(c in local for c in '"<>()[]\\,;:'):
            raise ValueError(f"invalid {role} address {addr_spec!r}")
        _domain(domain)
        return Address(display_name=_one_line(display_name), username=local,
                       domain=domain.strip().rstrip(".").lower())
    if _DOT_ATOM_RE.fullmatch(local) and "=?" not in local:
        # What the parser would make of it, without parsing: a dot-atom is its own local
        # part ("=?" could start an encoded word, which the parser decodes).
        return Address(display_name=_one_line(display_name), username=local,
                       domain=_domain(domain))
    try:
        return Address(display_name=_one_line(display_name), addr_spec=f"{local}@{_domain(domain)}")
    except ValueError as exc:  # email.errors header defects are ValueErrors too
        raise ValueError(f"invalid {role} address {addr_spec!r}: {exc}") from None


class _TextHeader(str):
    """A text header (Subject) folded by the standard library, minus its stray blank.

    The library folds ``"… mehr haben könnte"`` as ``"… mehr haben \r\n =?utf-8?q?k=C3=B6nnte?="``:
    the blank it leaves before the line break plus the folding blank unfold to two spaces
    ("haben  könnte").  Blanks before a line break are dropped: the continuation line's
    leading blank is the one separator RFC 5322 unfolding keeps.
    """

    name: str

    def __new__(cls, name: str, value: str) -> _TextHeader:
        header = super().__new__(cls, value)
        header.name = name
        return header

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]  # copy and pickle
        return (self.name, str(self))

    def fold(self, *, policy: Policy) -> str:
        """Short printable ASCII on one line is written as it is, which is what the library
        writes for it (it keeps every blank of unstructured text, and has nothing to fold
        or encode); anything else goes through the library (:meth:`library_fold`)."""
        if not isinstance(policy, email.policy.EmailPolicy):
            policy = POLICY
        text = str(self)
        limit = policy.max_line_length
        if (_PLAIN_TEXT_RE.fullmatch(text) and "=?" not in text
                and (not limit or len(self.name) + 2 + len(text) <= limit)):
            return f"{self.name}: {text}{policy.linesep}"
        return self.library_fold(policy)

    def library_fold(self, policy: email.policy.EmailPolicy[Any]) -> str:
        """The standard library's folding (parse, refold), without the stray blank."""
        folded: str = policy.header_factory(self.name, str(self)).fold(policy=policy)
        return _BLANK_BEFORE_FOLD_RE.sub(r"\1", folded)


def unwritable_address(addr_spec: str) -> str | None:
    """Why ``addr_spec`` cannot be a recipient of our mail (None: it can).  Intake keeps
    what senders wrote (``a@exa_mple.com``, ``a@[192.0.2.1]``); composing refuses them."""
    try:
        _address_header("To", "", addr_spec)
    except ValueError as error:
        return str(error)
    return None


@functools.lru_cache(maxsize=256)
def _address_header(name: str, display_name: str, addr_spec: str) -> str:
    """The ``name`` header object of one mailbox, validated (``ValueError``) and built once.

    The same From (our support identity) and To (a requester writing again) recur from
    one mail to the next; a header object is immutable, so it is shared like
    :class:`_HeaderClasses` shares the others.
    """
    address = _address(display_name, addr_spec, name)
    if _PLAIN_MAILBOX_RE.fullmatch(str(address)) and "=?" not in str(address):
        return _plain_mailbox_header(name, address)
    if address.username.isascii():
        header: str = POLICY.header_factory(name, address)
        return header
    return _MailboxHeader(name, address)


def _plain_mailbox_header(name: str, address: Address) -> str:
    """The header object ``POLICY.header_factory(name, address)`` makes, minus the parse.

    The library builds an address header from an ``Address`` by writing it out and
    parsing that text again, only to have a parse tree to fold (two fifths of the CPU
    of composing a mail to a new requester, whose To and Reply-To are new).  A plain
    mailbox (atoms for a name, a dot-atom address, no encoded-word look-alike) that fits
    on one line is written as it is, so its tree is made only if a fold needs it
    (:meth:`_FoldOnce._plain_fold`).  Everything else is what ``__new__`` would set."""
    cls = _HEADERS[name]
    header = str.__new__(cls, str(address))
    header.init(name, parse_tree=None, defects=[],  # type: ignore[call-arg, arg-type]
                groups=[Group(None, [address])])
    return header


def _date_header(date: datetime | None) -> str:
    when = date or datetime.now(UTC)
    if when.tzinfo is None:
        # SQLite hands back naive datetimes for timezone-aware columns; ours are UTC.
        when = when.replace(tzinfo=UTC)
    return email.utils.format_datetime(when)


def _extra_header(name: str, value: str) -> tuple[str, str]:
    if not _FIELD_NAME_RE.match(name):
        raise ValueError(f"invalid header field name {name!r}")
    if name.lower() in _RESERVED_HEADERS or name.lower().startswith("content-"):
        raise ValueError(f"header {name!r} is set by compose() itself, not by extra_headers")
    return name, _one_line(value)


def _set_extra_header(msg: EmailMessage, name: str, value: str) -> None:
    if value.isascii():
        msg[name] = _VerbatimHeader(name, value)
    else:
        msg[name] = _TextHeader(name, value)  # non-ASCII text becomes RFC 2047 words


def _choose_boundaries(msg: Message) -> bool:
    """Give each multipart part its boundary now, as the generator would when writing it.

    Left to the generator, a boundary is drawn at the first ``as_bytes()`` and checked
    against the written parts with a regular expression compiled for that one boundary (a
    fifth of the CPU of writing a notice).  Drawn here the same way and in the same order
    (inner parts first, from the same random source), a boundary that occurs nowhere in
    the part's payloads needs no such check.  At the rare one that does occur, this
    returns False and leaves that part and the rest to the generator's own procedure.
    """
    payload = msg.get_payload()
    if not isinstance(payload, list):
        return True
    for part in payload:
        if isinstance(part, Message) and not _choose_boundaries(part):
            return False
    boundary = "=" * 15 + _BOUNDARY_DIGITS % random.randrange(sys.maxsize) + "=="
    if any("--" + boundary in str(part.get_payload()) for part in msg.walk()
           if not part.is_multipart()):
        return False
    content_type = str(msg["Content-Type"])
    if ";" in content_type:  # parameters to keep: the library's way
        msg.set_boundary(boundary)
    else:  # what set_boundary() writes for a bare multipart/<subtype>, without parsing it
        msg.replace_header("Content-Type", _BoundaryHeader(content_type, boundary))
    return True


#: Stands in for every boundary when folding: as long as one, of the same characters.
_BOUNDARY_STAND_IN = "=" * 15 + "0" * len(_BOUNDARY_DIGITS % 0) + "=="


class _BoundaryHeader(str):
    """``multipart/<subtype>; boundary="…"``, folded without parsing this mail's text.

    Its text differs from one mail to the next only in the boundary, whose length and
    kind of characters never change (``=``, digits): the library folds a parameter by
    its length alone, so the folding of one stand-in boundary (a header shared and
    folded once, :class:`_HeaderClasses`) with the real one put in its place is this
    header's folding.  Its value reads as the usual text (``get_boundary()``,
    ``get_content_type()``)."""

    name: str
    boundary: str

    def __new__(cls, content_type: str, boundary: str) -> _BoundaryHeader:
        if len(boundary) != len(_BOUNDARY_STAND_IN):
            raise ValueError(f"unexpected boundary {boundary!r}")
        header = super().__new__(cls, f'{content_type}; boundary="{boundary}"')
        header.name, header.boundary = "Content-Type", boundary
        return header

    def __getnewargs__(self) -> tuple[str, str]:  # type: ignore[override]  # copy and pickle
        return (str(self).partition(";")[0], self.boundary)

    def fold(self, *, policy: Policy) -> str:
        if not isinstance(policy, email.policy.EmailPolicy):
            policy = POLICY
        stand_in = str(self).replace(self.boundary, _BOUNDARY_STAND_IN)
        folded: str = policy.header_factory(self.name, stand_in).fold(policy=policy)
        return folded.replace(_BOUNDARY_STAND_IN, self.boundary)


@dataclass(frozen=True)
class Envelope:
    """Who writes to whom, and the ids that place the mail in a thread.

    ``message_id`` is ours (with or without angle brackets) and must be valid;
    ``in_reply_to`` and ``references`` usually come from the customer's mail and are used
    as far as they are valid.
    """

    from_name: str
    from_address: str
    to_address: str
    message_id: str
    to_name: str = ""
    reply_to: str | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()


@dataclass(frozen=True)
class Content:
    """What the recipient reads: subject, bodies, their language and any attachments.

    ``attachments`` are ``(filename, content type, bytes)`` carried as they are (an
    agent's reply relayed).  ``language`` becomes ``Content-Language``.
    """

    subject: str
    text: str
    html: str | None
    language: str | None = None
    attachments: Sequence[tuple[str, str, bytes]] = ()


def compose(
    envelope: Envelope,
    content: Content,
    *,
    auto_submitted: str | None = "auto-replied",
    extra_headers: Mapping[str, str] | None = None,
    date: datetime | None = None,
) -> EmailMessage:
    """Build one outgoing message; see the module docstring for what is guaranteed.

    ``auto_submitted=None`` marks a message written by a person.  ``date`` defaults to
    now; a naive datetime is taken as UTC.
    """
    extras = [_extra_header(name, value) for name, value in (extra_headers or {}).items()]
    if content.language is not None and not _LANGUAGE_TAG_RE.match(content.language):
        raise ValueError(f"invalid Content-Language tag {content.language!r}")

    international = not (envelope.from_address.isascii() and envelope.to_address.isascii()
                         and (envelope.reply_to or "").isascii())
    msg = EmailMessage(policy=_UTF8_POLICY if international else POLICY)
    msg["From"] = _address_header("From", envelope.from_name, envelope.from_address)
    msg["To"] = _address_header("To", envelope.to_name, envelope.to_address)
    if envelope.reply_to:
        msg["Reply-To"] = _address_header("Reply-To", "", envelope.reply_to)
    msg["Subject"] = _TextHeader("Subject", _one_line(content.subject))
    msg["Date"] = _date_header(date)
    msg["Message-ID"] = _VerbatimHeader("Message-ID", normalise_message_id(envelope.message_id))

    parent = _outside_id(envelope.in_reply_to, "In-Reply-To") if envelope.in_reply_to else None
    if parent is not None:
        msg["In-Reply-To"] = _VerbatimHeader("In-Reply-To", parent)
    thread = _references(envelope.references, parent)
    if thread:
        msg["References"] = _VerbatimHeader("References", " ".join(thread))

    if auto_submitted:
        msg["Auto-Submitted"] = _one_line(auto_submitted)
        if _one_line(auto_submitted).lower() != "no":
            # Exchange/Outlook: do not answer this with out-of-office or other auto-replies.
            msg["X-Auto-Response-Suppress"] = "All"
    for name, value in extras:
        _set_extra_header(msg, name, value)

    msg.set_content(content.text, subtype="plain", charset="utf-8")
    if content.html is not None:
        msg.add_alternative(content.html, subtype="html", charset="utf-8")
    for filename, content_type, data in content.attachments:
        maintype, subtype, filename = _attachment_type(content_type, filename)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    _choose_boundaries(msg)
    _mime_version_on_top_only(msg)
    if content.language is not None:
        # Only after the body exists: turning the message multipart moves every Content-*
        # header into the first part, and the language belongs to the whole message.
        msg["Content-Language"] = content.language
    return msg


def _mime_version_on_top_only(msg: EmailMessage) -> None:
    """``add_alternative`` leaves a MIME-Version header in the part it adds; RFC 2045 §4
    puts it on the message alone."""
    for part in msg.walk():
        if part is not msg:
            del part["MIME-Version"]


def _attachment_type(content_type: str, filename: str) -> tuple[str, str, str]:
    """(maintype, subtype, file name) to attach a file as.  ``multipart/*`` and
    ``message/*`` (a sender's, as received) become ``application/octet-stream``: the
    standard library cannot write raw bytes as ``message/delivery-status`` at all (the
    whole mail failed to compose), and would send ``message/rfc822`` in base64, which
    RFC 2046 §5.2.1 forbids; a mail keeps its ``.eml`` name, so clients still open it."""
    name = _one_line(filename) or "attachment"
    maintype, _, subtype = content_type.partition("/")
    if maintype.lower() == "message":
        if subtype.lower() in {"rfc822", "global"} and "." not in name:
            name += ".eml"
        return "application", "octet-stream", name
    if not maintype or not subtype or maintype.lower() == "multipart":
        return "application", "octet-stream", name
    return maintype, subtype, name


#: The generator's own pattern of a line break (``\r\n``, ``\r`` or ``\n``).
_LINE_BREAK: re.Pattern[str] = email.generator.NLCRE  # type: ignore[attr-defined]


class _BodyInOneWrite(BytesGenerator):
    """The standard library's ``BytesGenerator``, writing a body's lines in one piece.

    The generator splits every text body at its line breaks and writes each line and
    each line end on its own (two encodes and two writes a line: a third of the CPU of
    writing a notice, whose quoted-printable parts have a line every 76 characters).
    Replacing every line break by the policy's line end at once writes the same bytes:
    ``NLCRE.split`` then joining with ``_NL`` is ``NLCRE.sub``."""

    def _write_lines(self, lines: str) -> None:
        if lines:
            self.write(_LINE_BREAK.sub(self._NL, lines))  # type: ignore[attr-defined]


def message_bytes(message: Message) -> bytes:
    """``message.as_bytes()``, the same bytes (``_BodyInOneWrite``), for less CPU."""
    buffer = BytesIO()
    _BodyInOneWrite(buffer, mangle_from_=False, policy=message.policy).flatten(message)
    return buffer.getvalue()
