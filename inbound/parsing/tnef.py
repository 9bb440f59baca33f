"""Unpack Outlook ``winmail.dat`` (TNEF) attachments into their real files.

Outlook wraps the attachments (and sometimes the only copy of the body) of a
"rich text" mail into one ``application/ms-tnef`` part that no other client
can open. Agents need the real files, so the parser unpacks it with
``tnefparse``.

``tnefparse`` trusts the counts written in the blob: a crafted count of
2**32 MAPI properties, multi-values or recipient rows makes it loop for hours
(its loops skip, rather than stop, at the end of the data). Before handing a
blob over, :func:`_check_stream` walks the same structure the same way and
refuses any count that the remaining bytes cannot hold, and more objects than
``max_objects`` (a winmail.dat of 20,000 tiny files). A refused or broken
blob raises :class:`TnefError`; the caller then keeps the raw ``winmail.dat``.

``tnefparse``'s own object loop copies the rest of the blob for every object
(``data[offset:]``): quadratic, 13 s for 60,000 objects. :func:`_decode` is the
same loop over bounded slices, built from tnefparse's own pieces (object,
attachment, MAPI decoding).  Embedded Outlook items are still decoded by
tnefparse's ``TNEF``, so their size times their object count is bounded too.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass

from tnefparse import properties
from tnefparse.codepage import Codepage
from tnefparse.mapi import decode_mapi
from tnefparse.tnef import TNEF, TNEFAttachment, TNEFObject

__all__ = ["TnefContent", "TnefError", "TnefFile", "unpack_tnef"]

log = logging.getLogger(__name__)

_SIGNATURE = 0x223E9F78
_IMESSAGE_SIG = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_ATT_MAPI_PROPS = 0x9003
_ATT_RECIP_TABLE = 0x9004
_ATT_ATTACHMENT = 0x9005
_MAPI_ATTACH_DATA_OBJ = 0x3701
_MV_FLAG = 0x1000
_GUID_FLAG = 0x8000
_FIXED_SIZES = {0x0002: 2, 0x000B: 2, 0x0003: 4, 0x0004: 4, 0x000A: 4, 0x0005: 8, 0x0007: 8}
_FIXED_SIZES.update({0x0006: 8, 0x0014: 8, 0x0040: 8, 0x0048: 16})
_VARIABLE_TYPES = frozenset({0x001E, 0x001F, 0x000D, 0x0102, 0x0000})
_MAX_EMBEDDING = 3
#: Bytes copied by tnefparse's quadratic loop for an embedded item (size x objects).
_MAX_EMBEDDED_WORK = 256 * 1024 * 1024
DEFAULT_MAX_OBJECTS = 5000


class TnefError(ValueError):
    """The blob is not TNEF, is damaged, or is too suspicious to unpack.

    ``limit`` is True when only a configured limit (``max_tnef_objects``) refused it."""

    def __init__(self, message: str, *, limit: bool = False) -> None:
        super().__init__(message)
        self.limit = limit


@dataclass(frozen=True)
class TnefFile:
    filename: str  # may be "" when the blob names no file
    data: bytes


@dataclass(frozen=True)
class TnefContent:
    files: tuple[TnefFile, ...]
    body: str | None  # plain-text body carried inside the blob
    html: str | None  # HTML body carried inside the blob


def unpack_tnef(blob: bytes, max_objects: int = DEFAULT_MAX_OBJECTS) -> TnefContent:
    """Return the files and body inside a TNEF blob; raise TnefError otherwise."""
    counter = _Counter(max_objects)
    _check_stream(blob, depth=0, counter=counter)
    try:
        attachments, body_value, html_value = _decode(blob)
        files = tuple(
            TnefFile(filename=_attachment_name(item), data=bytes(item.data or b""))
            for item in attachments
        )
        body = _as_text(body_value)
        html = _as_text(html_value)
    except TnefError:
        raise
    except Exception as exc:  # tnefparse raises anything from struct.error to KeyError
        raise TnefError(f"TNEF could not be decoded ({type(exc).__name__}: {exc})") from exc
    return TnefContent(files=files, body=body, html=html)


def _decode(blob: bytes) -> tuple[list[TNEFAttachment], object, object]:
    """``TNEF.__init__``'s walk (attachments, body, HTML body) in linear time."""
    codepage: str | None = None
    attachments: list[TNEFAttachment] = []
    body: object = None
    html: object = None
    offset = 6
    size = len(blob)
    while offset + TNEF.MIN_OBJ_SIZE < size:
        length = min(size - offset, _u32(blob, offset + 5) + 11)
        obj = TNEFObject(blob[offset:offset + length], False)
        offset += obj.length
        if obj.name == TNEF.ATTATTACHRENDDATA:
            attachments.append(TNEFAttachment(codepage))
        if obj.level == TNEF.LVL_ATTACHMENT:
            if not attachments:
                raise TnefError("TNEF attachment data before any attachment")
            attachments[-1].add_attr(obj)
        elif obj.name == TNEF.ATTMAPIPROPS:
            body, html = _message_props(obj.data, codepage, body, html)
        elif obj.name == TNEF.ATTBODY:
            body = obj.data
        elif obj.name == TNEF.ATTOEMCODEPAGE:
            codepage = Codepage(_u32(obj.data, 0)).codepage()
    return attachments, body, html


def _message_props(data: bytes, codepage: str | None, body: object,
                   html: object) -> tuple[object, object]:
    """The message's MAPI properties: its plain and HTML bodies, as tnefparse reads them."""
    internet_codepage = None
    for prop in decode_mapi(data, codepage):
        if prop.name == properties.MAPI_INTERNET_CODEPAGE:
            internet_codepage = Codepage(prop.data)
        if prop.name in (properties.MAPI_BODY, properties.MAPI_UNCOMPRESSED_BODY):
            body = prop.data
        elif prop.name == properties.MAPI_BODY_HTML:
            html = prop.data
    if html and internet_codepage and isinstance(html, bytes):
        html = internet_codepage.decode(html)
    if body and internet_codepage and isinstance(body, bytes):
        body = internet_codepage.decode(body)
    return body, html


class _Counter:
    """TNEF objects seen so far, across embedded items, against the limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seen = 0

    def add(self) -> None:
        self.seen += 1
        if self.seen > self.limit:
            raise TnefError(f"it holds more than max_tnef_objects ({self.limit:,}) TNEF "
                            "objects", limit=True)


def _attachment_name(item: object) -> str:
    for getter in ("long_filename", "name"):
        try:
            value = getattr(item, getter)
            value = value() if callable(value) else value
        except Exception:  # noqa: BLE001 - a bad name must not lose the file
            continue
        text = _as_text(value)
        if text:
            return text.strip("\x00").strip()
    return ""


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.replace("\x00", "") or None
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value).rstrip(b"\x00")
        for codec in ("utf-8", "cp1252"):
            try:
                return raw.decode(codec).replace("\x00", "") or None
            except UnicodeDecodeError:
                continue
        return raw.decode("latin-1").replace("\x00", "") or None
    return None


# --- structural check, mirroring tnefparse's own walk --------------------------------


def _u16(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<H", data, offset)[0])


def _u32(data: bytes, offset: int) -> int:
    return int(struct.unpack_from("<I", data, offset)[0])


def _check_stream(data: bytes, depth: int, counter: _Counter) -> None:
    """Walk TNEF objects as ``TNEF.__init__`` does, checking every count."""
    if depth > _MAX_EMBEDDING:
        raise TnefError("TNEF messages embedded too deeply")
    if len(data) < 6 or _u32(data, 0) != _SIGNATURE:
        raise TnefError("not a TNEF blob (wrong signature)")
    offset = 6
    objects = 0
    while offset + 12 < len(data):
        counter.add()
        objects += 1
        if depth and objects * len(data) > _MAX_EMBEDDED_WORK:
            raise TnefError("an embedded Outlook item is too large and complex to unpack")
        length = min(len(data) - offset, _u32(data, offset + 5) + 11)
        name = _u16(data, offset + 1)
        body = data[offset + 9 : offset + length - 2]
        offset += length
        if name in (_ATT_MAPI_PROPS, _ATT_ATTACHMENT):
            _check_mapi(body, 0, depth, counter)
        elif name == _ATT_RECIP_TABLE:
            rows = _u32(body, 0) if len(body) >= 4 else 0
            if rows > len(body) // 4:
                raise TnefError("TNEF recipient table claims more rows than it holds")
            row_offset = 4
            for _ in range(rows):
                row_offset = _check_mapi(body, row_offset, depth, counter, strict=True)


def _check_mapi(data: bytes, offset: int, depth: int, counter: _Counter, *,
                strict: bool = False) -> int:
    """Mirror ``tnefparse.mapi.decode_mapi``; return the offset it would end at.

    tnefparse stops a property list at the first decoding error, so running out
    of data ends the walk quietly, unless ``strict`` (recipient rows, where
    tnefparse would retry the same broken row again and again).
    """
    size = len(data)
    try:
        count = _u32(data, offset)
        offset += 4
        if count > (size - offset) // 4 + 1:
            raise TnefError("TNEF property list claims more properties than it holds")
        for _ in range(count):
            if offset >= size:
                return offset
            attr_type = _u16(data, offset)
            attr_name = _u16(data, offset + 2)
            offset += 4
            if attr_name >= _GUID_FLAG:
                offset += 16
                kind = _u32(data, offset)
                offset += 4
                if kind == 0:
                    offset += 4
                else:
                    name_length = _u32(data, offset)
                    offset += 4 + name_length + (-name_length % 4)
            values = 1
            multi = bool(attr_type & _MV_FLAG)
            if multi:
                attr_type ^= _MV_FLAG
                values = _u32(data, offset)
                offset += 4
                if values > (size - offset) // 2 + 1:
                    raise TnefError("TNEF multi-value property claims more values than it holds")
            for _ in range(values):
                offset = _check_value(data, offset, attr_type, attr_name, multi, depth,
                                      counter)
            if values % 2 and attr_type in (0x0002, 0x000B):
                offset += 2
    except (struct.error, _StopWalk):
        if strict:
            raise TnefError("TNEF recipient row is truncated") from None
    return offset


class _StopWalk(Exception):
    """tnefparse would stop decoding this property list here."""


def _check_value(
    data: bytes, offset: int, attr_type: int, name: int, multi: bool, depth: int,
    counter: _Counter,
) -> int:
    if attr_type in _FIXED_SIZES:
        return offset + _FIXED_SIZES[attr_type]
    if attr_type not in _VARIABLE_TYPES:
        raise _StopWalk
    items = 1
    if not multi:
        items = _u32(data, offset)
        offset += 4
        if items > (len(data) - offset) // 4 + 1:
            raise TnefError("TNEF property claims more values than it holds")
    chunks: list[bytes] = []
    for _ in range(items):
        length = _u32(data, offset)
        offset += 4
        length += -length % 4  # tnefparse keeps the padding, then strips NULs
        chunks.append(data[offset : offset + length])
        offset += length
    if name == _MAPI_ATTACH_DATA_OBJ and attr_type in (0x000D, 0x0102, 0x0000):
        joined = b"".join(chunk.rstrip(b"\x00") for chunk in chunks)
        if joined.startswith(_IMESSAGE_SIG):
            _check_stream(joined[len(_IMESSAGE_SIG) :], depth + 1, counter)
    return offset
