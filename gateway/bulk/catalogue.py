"""Which catalogue entries lack a translation for a language somebody reads.

Feature names and descriptions (quarterly mail) and article titles (recommendations)
are given per language with English required; a missing language falls back to English
silently in the mail.  The languages that matter are those of the directory's people
and teams; :func:`missing_translations` names, per such language, every entry that
would fall back, for ``gateway catalogue check`` and the ``directory load`` summary.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Article, Feature, Person, Team

__all__ = ["languages_in_use", "missing_translations"]

BASE_LANGUAGE = "en"


def languages_in_use(session: Session) -> list[str]:
    """The languages of the directory's people and teams, other than English, sorted."""
    used = set(session.scalars(select(Person.language).distinct()))
    used |= set(session.scalars(select(Team.language).distinct()))
    return sorted(language for language in used if language and language != BASE_LANGUAGE)


def _texts(session: Session) -> list[tuple[str, dict[str, Any]]]:
    """Every translatable entry as (its name, its per-language texts)."""
    entries: list[tuple[str, dict[str, Any]]] = []
    for feature in session.scalars(select(Feature).order_by(Feature.position, Feature.id)):
        entries.append((f"features.{feature.id}.name", feature.name or {}))
        entries.append((f"features.{feature.id}.description", feature.description or {}))
    for article in session.scalars(select(Article).order_by(Article.id)):
        entries.append((f"articles.{article.id}.title", article.title or {}))
    return entries


def missing_translations(session: Session) -> dict[str, list[str]]:
    """Per language in use, the entries with English text but none in that language."""
    entries = [(name, texts) for name, texts in _texts(session)
               if str(texts.get(BASE_LANGUAGE) or "").strip()]
    return {language: [name for name, texts in entries
                       if not str(texts.get(language) or "").strip()]
            for language in languages_in_use(session)}
