"""The new text of an HTML reply: quoted history cut in the markup, then our text rules.

Why: HTML-only replies (Outlook, Hotmail, phones, web mailers) mark their history
in the markup (Gmail's ``gmail_quote``, Thunderbird's ``moz-cite-prefix``, Outlook's
header block under a border), which is lost once the HTML is flattened to text.

How: ``quotequail`` (a maintained library that finds quote headers and quoted
blocks in HTML) cuts the markup where the history starts; the part above is rendered
as text by :mod:`inbound.parsing.html_text` and then split by :func:`inbound.parsing.reply_text.
split_reply`, which knows the multilingual quote headers, Outlook header blocks and
signatures that the library does not.  If the library finds nothing or fails, the
whole rendered text goes through ``split_reply`` as before: never fewer words.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import quotequail

from inbound.parsing.html_text import html_to_text
from inbound.parsing.message import ParsedMail
from inbound.parsing.reply_text import DEFAULT_LANGUAGES, ReplyParts, split_reply

__all__ = ["reply_parts", "split_html_reply"]

log = logging.getLogger(__name__)

#: Larger documents skip the library (lxml tree slicing) and are split as text.
MAX_QUOTEQUAIL_CHARS = 300_000

# Outlook writes every line as <p class=MsoNormal> with zero margins in its style
# sheet; rendered as paragraphs they would gain a blank line each.
_P_TAG = re.compile(r"<p\b[^<>]*>|</p\s*>", re.IGNORECASE)
_MSO_NORMAL = re.compile(r"""\bclass\s*=\s*["']?[^"'<>]*\bMsoNormal\b""", re.IGNORECASE)


def reply_parts(parsed: ParsedMail, languages: Sequence[str] = DEFAULT_LANGUAGES) -> ReplyParts:
    """The reply parts of a parsed message: from its HTML when its text was rendered from
    that HTML (no text/plain body), else from its text.

    The parser says where the text came from: a text/plain part's text is split as text
    without rendering the HTML beside it (that rendering cost as much as the rest of the
    splitting); only when it is not known is the HTML rendered to compare."""
    html = parsed.html
    if (not html or len(html) > MAX_QUOTEQUAIL_CHARS or not parsed.text.strip()
            or parsed.text_is_rendered_html is False):
        return split_reply(parsed.text, languages)
    rendered = parsed.text if parsed.text_is_rendered_html else html_to_text(html)
    if rendered.strip() == parsed.text.strip():
        return split_html_reply(html, languages, rendered=rendered)
    return split_reply(parsed.text, languages)


def split_html_reply(html: str, languages: Sequence[str] = DEFAULT_LANGUAGES, *,
                     rendered: str | None = None) -> ReplyParts:
    """Return the new text, quoted history and signature of an HTML reply body.

    ``rendered`` is ``html_to_text(html)`` when the caller has it: the HTML is then not
    rendered again when the text rules alone decide."""
    if not html or not html.strip():
        return ReplyParts("", "", "")
    source = _outlook_lines(html)

    def whole() -> ReplyParts:  # the text rules alone, on the whole rendered text
        if rendered is not None and source is html:
            return split_reply(rendered, languages)
        return split_reply(html_to_text(source), languages)

    if len(source) > MAX_QUOTEQUAIL_CHARS:
        return whole()
    try:
        pieces = quotequail.quote_html(source)
    except Exception:  # noqa: BLE001 - broken markup: the text rules alone decide
        log.info("quotequail failed on an HTML body; splitting its text", exc_info=True)
        return whole()
    top = [markup for expanded, markup in _leading(pieces)]
    if len(top) == len(pieces):
        return whole()
    rest = [markup for _expanded, markup in pieces[len(top):]]
    reply = split_reply(html_to_text("".join(top)), languages)
    if not reply.visible.strip():
        return whole()
    history = html_to_text("".join(rest))
    quoted = "\n\n".join(part for part in (reply.quoted, history) if part.strip())
    return ReplyParts(reply.visible, quoted, reply.signature)


def _leading(pieces: list[tuple[bool, str]]) -> list[tuple[bool, str]]:
    """The pieces before the first quoted one."""
    out: list[tuple[bool, str]] = []
    for expanded, markup in pieces:
        if not expanded:
            break
        out.append((expanded, markup))
    return out


def _outlook_lines(html: str) -> str:
    """``<p class=MsoNormal>`` → ``<div>``: Outlook's lines without paragraph gaps."""
    if "msonormal" not in html[:MAX_QUOTEQUAIL_CHARS].lower():
        return html
    inside = False

    def swap(match: re.Match[str]) -> str:
        nonlocal inside
        tag = match.group(0)
        if tag.startswith("</"):
            if inside:
                inside = False
                return "<br></div>"  # an empty line stays one blank line
            return tag
        inside = bool(_MSO_NORMAL.search(tag))
        return "<div>" if inside else tag

    return _P_TAG.sub(swap, html)
