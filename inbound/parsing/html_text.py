"""Turn an HTML mail body into readable plain text.

Agents and the reply splitter work on text. Many clients (Outlook, phones,
web mailers) send HTML only, so the text must keep what a reader relies on:
paragraphs, line breaks, list items and link targets, while scripts, styles and
markup go. ``inscriptis`` does the rendering (it understands block layout and
tables); this module only configures it, tidies its output and makes sure a
broken document never raises.
"""

from __future__ import annotations

import html as html_module
import logging
import re

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

__all__ = ["MAX_HTML_CHARS", "html_to_text"]

log = logging.getLogger(__name__)

#: HTML beyond this size is cut before conversion; bounds time and memory.
MAX_HTML_CHARS = 4_000_000
#: Larger documents, or ones with more table cells, get the fast linear tag
#: stripper instead of the layout engine (which needs seconds per megabyte and
#: grows faster than linearly with table size).
_RENDER_MAX_CHARS = 500_000
_RENDER_MAX_CELLS = 5_000

# The "strict" profile does not indent blocks after a <blockquote>, which the
# "relaxed" one gets wrong for mail markup; link targets are kept.
_CONFIG = ParserConfig(css=CSS_PROFILES["strict"].copy(), display_links=True)

# inscriptis renders links as [text](target); when the text is the target
# itself that only doubles the URL.
_SELF_LINK = re.compile(r"\[([^\[\]\n]{1,2000})\]\(\1\)")
_MAILTO_SELF_LINK = re.compile(r"\[([^\[\]\n@]{1,500}@[^\[\]\n]{1,500})\]\(mailto:\1\)")
_TAG = re.compile(r"<[^<>]*>")
_BREAK_TAG = re.compile(r"(?i)<\s*(?:br|/p|/div|/li|/tr|/h[1-6])\b[^<>]*>")
_CELL_END = re.compile(r"(?i)</t[dh]\s*>")
_INVISIBLE = ("script", "style", "head", "title")
_BLANK_RUN = re.compile(r"\n{3,}")


def html_to_text(html: str) -> str:
    """Render ``html`` as text with "\\n" line endings; never raises.

    Falls back to crude tag stripping if the renderer fails, so that the
    customer's words are kept even from markup ``lxml`` cannot read.
    """
    if not html or not html.strip():
        return ""
    source = html[:MAX_HTML_CHARS].replace("\x00", "")
    lower = source.lower()
    if (
        len(source) > _RENDER_MAX_CHARS
        or lower.count("<td") + lower.count("<th") > _RENDER_MAX_CELLS
    ):
        log.info("HTML body too large to render (%d chars); stripping tags", len(source))
        return _tidy(_strip_tags(source))
    try:
        text = _tidy(get_text(source, _CONFIG))
    except Exception:  # noqa: BLE001 - any renderer failure falls back to stripping
        log.warning("HTML rendering failed; falling back to tag stripping", exc_info=True)
        return _tidy(_strip_tags(source))
    if not text.strip():
        # lxml gives up on absurd nesting and returns nothing; words must not vanish.
        return _tidy(_strip_tags(source))
    return text


def _strip_tags(html: str) -> str:
    with_breaks = _CELL_END.sub(" ", _BREAK_TAG.sub("\n", _drop_invisible(html)))
    return html_module.unescape(_TAG.sub("", with_breaks))


def _drop_invisible(html: str) -> str:
    """Remove <script>/<style>/<head>/<title> elements in one linear pass."""
    lower = html.lower()
    pieces: list[str] = []
    position = 0
    next_start = {name: lower.find("<" + name) for name in _INVISIBLE}
    while True:
        for name, index in next_start.items():
            if 0 <= index < position:
                next_start[name] = lower.find("<" + name, position)
        found = [(index, name) for name, index in next_start.items() if index >= 0]
        if not found:
            pieces.append(html[position:])
            return "".join(pieces)
        index, name = min(found)
        pieces.append(html[position:index])
        end = lower.find("</" + name, index)
        if end < 0:
            return "".join(pieces)
        close = lower.find(">", end)
        position = len(html) if close < 0 else close + 1


def _tidy(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\xa0", " ")
    text = _SELF_LINK.sub(r"\1", text)
    text = _MAILTO_SELF_LINK.sub(r"\1", text)
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip("\n")
