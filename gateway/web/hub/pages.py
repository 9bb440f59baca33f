"""The hub's page renderer: the grant pages' renderer (autoescape, StrictUndefined, one
word catalog per language with English fallback) over ``templates/pages/hub/``, whose
catalog is ``templates/<lang>/pages/hub.toml`` plus every ``hub_*.toml`` beside it, so
each group of hub pages keeps its words in its own file."""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path

from gateway.grants.pages import PageRenderer
from outbound.render import DEFAULT_LANGUAGE

__all__ = ["HubPages"]


class HubPages(PageRenderer):
    def __init__(self, templates_dir: Path | None = None) -> None:
        super().__init__(templates_dir, section="hub")

    @cache  # noqa: B019 - one renderer per process; catalogs never change at run time
    def catalog(self, language: str) -> dict[str, str]:
        words: dict[str, str] = {}
        for lang in dict.fromkeys((DEFAULT_LANGUAGE, language)):
            folder = self.templates_dir / lang / "pages"
            files = [folder / "hub.toml", *sorted(folder.glob("hub_*.toml"))]
            for path in files:
                if path.is_file():
                    with open(path, "rb") as handle:
                        words.update({str(k): str(v) for k, v in tomllib.load(handle).items()})
        return words
