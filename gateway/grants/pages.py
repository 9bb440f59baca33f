"""Render web pages in the reader's language (the grant pages, and the unsubscribe pages).

One jinja2 ``Environment`` with autoescaping on (every value a page prints is
escaped), the page structure in ``templates/pages/<section>/*.html.j2`` and the words
in one catalog per language, ``templates/<lang>/pages/<section>.toml``.  A key missing
in a language falls back to English, so a page is never half blank.
"""

from __future__ import annotations

import logging
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from outbound.render import DEFAULT_LANGUAGE, LANGUAGES, default_templates_dir

__all__ = ["PageRenderer", "pick_language"]

log = logging.getLogger(__name__)


def pick_language(accept_language: str) -> str:
    """The first of our languages named in an ``Accept-Language`` header, else English."""
    for part in accept_language.split(","):
        primary = part.split(";")[0].strip().lower().split("-")[0]
        if primary in LANGUAGES:
            return primary
    return DEFAULT_LANGUAGE


class PageRenderer:
    def __init__(self, templates_dir: Path | None = None, section: str = "grants") -> None:
        self.templates_dir = Path(templates_dir or default_templates_dir())
        self.section = section
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(self.templates_dir, encoding="utf-8"),
            undefined=jinja2.StrictUndefined, autoescape=True,
            trim_blocks=True, lstrip_blocks=True)

    @cache  # noqa: B019 - one renderer per process; catalogs never change at run time
    def catalog(self, language: str) -> dict[str, str]:
        words: dict[str, str] = {}
        for lang in dict.fromkeys((DEFAULT_LANGUAGE, language)):
            path = self.templates_dir / lang / "pages" / f"{self.section}.toml"
            if path.is_file():
                with open(path, "rb") as handle:
                    words.update({str(k): str(v) for k, v in tomllib.load(handle).items()})
            else:
                log.warning("no %s page words for %r; using %r", self.section, lang,
                            DEFAULT_LANGUAGE)
        return words

    def render(self, page: str, language: str, context: dict[str, Any]) -> str:
        language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        words = self.catalog(language)

        def t(key: str, **values: Any) -> str:
            return words[key].format(**values)

        template = self._env.get_template(f"pages/{self.section}/{page}.html.j2")
        return template.render({**context, "t": t, "lang": language})
