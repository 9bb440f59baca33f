"""Render one kind of mail (subject, plain text, HTML) from the per-language templates.

Why a module of its own: every mail the gateway sends is worded in `templates/<lang>/<kind>/`,
and the rules for turning those files into text must hold for all of them alike (STYLE
convention 11):

- one Jinja2 ``Environment`` per :class:`Renderer`, with ``StrictUndefined`` so that a
  missing or misspelt context key fails loudly instead of printing nothing;
- autoescaping only for ``*.html.j2``; text templates print user text as it is;
- templates receive a plain ``dict`` (view data), never ORM objects;
- the subject is always one line, whatever the customer's subject contained;
- a kind not translated into the requested language (or an unknown language) is rendered
  in ``en`` and a warning is logged; an unknown kind is an error.

A kind is translated only if all three of ``subject.txt.j2``, ``body.txt.j2`` and
``body.html.j2`` exist for the language; otherwise the whole mail falls back to ``en``, so a
recipient never gets a subject in one language and a body in another.
:attr:`RenderedMail.language` says which language was used (for ``Content-Language``).

Header text (display names, subjects, titles) never brings its line breaks into a body:
every context value whose key ends in ``name``, ``subject`` or ``title`` (at any depth of
dicts and lists) is made one line before rendering, and every value printed loses the
control characters that are not line breaks or tabs (an escape sequence, a CR, a NUL).

Filters available to templates besides Jinja's own: ``quote`` prefixes every line with
``"> "`` (text bodies), ``nl2br`` escapes a value and turns its line breaks into ``<br>``
(HTML bodies), ``one_line`` collapses line breaks to spaces and strips (as for subjects).

The context each kind needs is documented at the top of its ``en/<kind>/body.txt.j2``.
Besides it, the footers (``<lang>/_base/``) print a link to the support hub when the
context has a non-empty ``hub_url`` (``queue_mail`` sets it for directory people only).
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "TEMPLATE_PARTS",
    "RenderedMail",
    "Renderer",
    "UnknownKindError",
    "default_templates_dir",
    "renderer_for",
]

log = logging.getLogger(__name__)

LANGUAGES = ("en", "ja", "de", "it", "nl")
DEFAULT_LANGUAGE = "en"

#: The three files every kind has, in every language it is translated into.
TEMPLATE_PARTS = ("subject.txt.j2", "body.txt.j2", "body.html.j2")

_KIND_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# Everything str.splitlines() treats as a line boundary, plus the other C0 controls and DEL.
_LINE_BREAKS_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_SPACES_RE = re.compile(r" {2,}")


def default_templates_dir() -> Path:
    """Where the templates are when ``GATEWAY_TEMPLATES_DIR`` does not say.

    An installed wheel carries them as ``outbound/templates`` (the build copies them in,
    see ``setup.py``); a checkout or an editable install reads the top-level
    ``templates/`` folder itself, the one source of truth (DESIGN 2).
    """
    here = Path(__file__).resolve().parent
    packaged = here / "templates"
    return packaged if packaged.is_dir() else here.parent / "templates"


class UnknownKindError(LookupError):
    """No templates exist for this kind of mail, not even in the default language."""


@dataclass(frozen=True)
class RenderedMail:
    """A rendered mail, ready for :func:`outbound.compose.compose`."""

    subject: str  # one line: line breaks and control characters collapsed, stripped
    text: str
    html: str
    language: str = DEFAULT_LANGUAGE  # the language actually rendered (after any fallback)


def _autoescape(template_name: str | None) -> bool:
    return template_name is not None and template_name.endswith(".html.j2")


def _quote(value: str) -> str:
    """Prefix every line with ``"> "`` (``">"`` for empty lines), as mail clients quote."""
    return "\n".join(f"> {line}" if line else ">" for line in str(value).splitlines())


def _nl2br(value: str) -> Markup:
    """Escape ``value`` and join its lines with ``<br>`` (for HTML bodies)."""
    return Markup("<br>\n").join(escape(line) for line in str(value).splitlines())


def _one_line(value: str) -> str:
    """Collapse line breaks and control characters to single spaces and strip the result."""
    return _SPACES_RE.sub(" ", _LINE_BREAKS_RE.sub(" ", value)).strip()


_HEADER_KEY_RE = re.compile(r"(?:^|_)(?:name|subject|title)$")
_CONTROLS_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x85]")


def _header_text_one_line(value: Any, key: str = "") -> Any:
    """The view data with header text (keys ``…name``, ``…subject``, ``…title``) on one line."""
    if isinstance(value, str):
        return _one_line(value) if _HEADER_KEY_RE.search(key) else value
    if isinstance(value, Mapping):
        return {k: _header_text_one_line(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_header_text_one_line(v, key) for v in value]
    return value


def _finalize(value: Any) -> Any:
    """Every printed value: no control characters other than line breaks and tabs."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return _CONTROLS_RE.sub("", value)
    return value


def _normalise_language(language: str | None) -> str | None:
    """``"ja-JP"`` / ``"DE_de"`` / ``" nl "`` → primary subtag in lower case, if we have it."""
    if not language:
        return None
    primary = language.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if primary in LANGUAGES else None


class Renderer:
    """Renders mail kinds from a templates directory laid out as ``<lang>/<kind>/<part>``."""

    def __init__(self, templates_dir: Path | None = None, *, hub_url: str = "") -> None:
        self.templates_dir = Path(templates_dir or default_templates_dir())
        self._root = str(self.templates_dir)
        self.hub_url = hub_url
        """The support hub's address (``<public_url>/hub/``): :func:`outbound.mail.queue_mail`
        gives it as ``hub_url`` to mail for directory people, whose footers link to it."""
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.templates_dir, encoding="utf-8"),
            undefined=jinja2.StrictUndefined,
            autoescape=_autoescape,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            finalize=_finalize,
        )
        self._env.filters["quote"] = _quote
        self._env.filters["nl2br"] = _nl2br
        self._env.filters["one_line"] = _one_line

    def _has_kind(self, language: str, kind: str) -> bool:
        # Asked at every render (a translation added while running is used at once), so
        # with plain strings: building Path objects cost more than the stat calls.
        folder = os.path.join(self._root, language, kind)
        return all(os.path.isfile(os.path.join(folder, part)) for part in TEMPLATE_PARTS)

    def _choose_language(self, kind: str, language: str) -> str:
        if not _KIND_RE.match(kind):
            raise UnknownKindError(
                f"invalid mail kind {kind!r}: expected a lower-case name like 'acknowledgement'"
            )
        if not self._has_kind(DEFAULT_LANGUAGE, kind):
            raise UnknownKindError(
                f"unknown mail kind {kind!r}: no {'/'.join(TEMPLATE_PARTS)} "
                f"in {self.templates_dir / DEFAULT_LANGUAGE / kind}"
            )
        chosen = _normalise_language(language)
        if chosen is None:
            log.warning(
                "unknown language %r for mail kind %r; rendering in %r",
                language,
                kind,
                DEFAULT_LANGUAGE,
            )
            return DEFAULT_LANGUAGE
        if not self._has_kind(chosen, kind):
            log.warning(
                "mail kind %r has no %r templates; rendering in %r",
                kind,
                chosen,
                DEFAULT_LANGUAGE,
            )
            return DEFAULT_LANGUAGE
        return chosen

    def render(self, kind: str, language: str, context: Mapping[str, Any]) -> RenderedMail:
        """Render ``kind`` in ``language`` (or ``en``) with a plain-dict copy of ``context``.

        Raises :class:`UnknownKindError` for a kind without templates and
        ``jinja2.UndefinedError`` when the context lacks a variable a template uses.
        """
        chosen = self._choose_language(kind, language)
        data = {key: _header_text_one_line(value, key) for key, value in context.items()}
        prefix = f"{chosen}/{kind}/"
        subject = self._env.get_template(prefix + "subject.txt.j2").render(data)
        text = self._env.get_template(prefix + "body.txt.j2").render(data)
        html = self._env.get_template(prefix + "body.html.j2").render(data)
        return RenderedMail(subject=_one_line(subject), text=text, html=html, language=chosen)

    def render_subject(self, kind: str, language: str, context: Mapping[str, Any]) -> str:
        """Only the subject of :meth:`render`, for a mail whose bodies are rendered later
        (``outbound/recipe.py``): the bodies' templates are loaded, so a syntax error in
        one raises here, now, as :meth:`render` would (compiled once, then cached)."""
        chosen = self._choose_language(kind, language)
        data = {key: _header_text_one_line(value, key) for key, value in context.items()}
        prefix = f"{chosen}/{kind}/"
        self._env.get_template(prefix + "body.txt.j2")
        self._env.get_template(prefix + "body.html.j2")
        return _one_line(self._env.get_template(prefix + "subject.txt.j2").render(data))


@functools.lru_cache(maxsize=8)
def renderer_for(templates_dir: Path | None) -> Renderer:
    """One renderer per templates folder in a process (its compiled templates are cached):
    what composes a queued recipe at delivery, which has the settings but no services."""
    return Renderer(templates_dir)
