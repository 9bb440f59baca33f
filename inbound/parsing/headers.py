"""Header values as one line of readable text, whatever their encoding.

Shared by the classifiers, which read headers with the lenient ``compat32``
policy and must never raise on malformed RFC 2047 words or raw 8-bit bytes.
"""

from __future__ import annotations

from email.header import decode_header

from inbound.parsing.message import decode_encoded_words, unfold

__all__ = ["header_text"]


def header_text(value: object) -> str:
    """A header value as one line of text: RFC 2047 words and raw 8-bit bytes decoded."""
    if value is None:
        return ""
    if isinstance(value, str) and "=?" in value:
        # The stdlib's decode_header pops words off the front of a list: quadratic on a
        # Subject of 20,000 encoded words.  Ours is one pass and as lenient.
        text, _notes = decode_encoded_words(unfold(value))
        return " ".join(text.split())
    try:
        chunks = decode_header(value)  # type: ignore[arg-type]
    except Exception:  # malformed encoded words: keep the text as it is
        chunks = [(str(value), None)]
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
            continue
        for candidate in (charset, "utf-8", "latin-1"):
            if not candidate or candidate == "unknown-8bit":
                continue
            try:
                out.append(chunk.decode(candidate))
                break
            except (LookupError, UnicodeDecodeError):
                continue
    return " ".join("".join(out).split())
