"""Render a plain-text reply as the HTML a web mailer sends (for the HTML reply tests).

Each line becomes a ``<div>`` (an empty one a ``<div><br></div>``), runs of spaces stay
visible as ``&nbsp;``, and ``>``-quoted lines become a ``<blockquote type="cite">``
(Thunderbird, Apple Mail, Gmail and Outlook.com mark quoted history so).  The quote
header above a quote stays a line of text, as clients write it.
"""

from __future__ import annotations

import html
import re

__all__ = ["as_html"]

_QUOTED = re.compile(r"^[ \t]*>")
_UNQUOTE = re.compile(r"^[ \t]*> ?")


def _line(text: str) -> str:
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"(?<= ) ", "&nbsp;", escaped)  # a run of spaces stays a run
    escaped = re.sub(r"^ ", "&nbsp;", escaped)
    return f"<div>{escaped or '<br>'}</div>"


def _body(lines: list[str]) -> str:
    out: list[str] = []
    index = 0
    while index < len(lines):
        if _QUOTED.match(lines[index]):
            block = []
            while index < len(lines) and _QUOTED.match(lines[index]):
                block.append(_UNQUOTE.sub("", lines[index], count=1))
                index += 1
            out.append(f'<blockquote type="cite">{_body(block)}</blockquote>')
            continue
        out.append(_line(lines[index]))
        index += 1
    return "".join(out)


def as_html(text: str) -> str:
    """The HTML document a web mailer would send for ``text``."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return f'<html><body><div dir="ltr">{_body(lines)}</div></body></html>'
