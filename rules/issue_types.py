"""Issue types from an editable keyword file (``rules/policy/issue_types.toml``).

Stored on each new ticket so that insights ("most frequent issue types", "tickets per
product per issue type") are a query, and so that a changed file only affects new tickets.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rules.keywords import KeywordMatcher
from rules.policy import PolicyError

__all__ = ["DEFAULT_ISSUE_TYPES", "IssueTypes", "load_issue_types"]

DEFAULT_ISSUE_TYPES = Path(__file__).parent / "policy" / "issue_types.toml"


class _TypeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    keywords: list[str] = Field(min_length=1)


class _FileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    default: str = Field(default="other", min_length=1, max_length=64)
    types: list[_TypeSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> _FileSpec:
        ids = [t.id for t in self.types]
        if len(ids) != len(set(ids)):
            raise ValueError("an issue type id is listed twice")
        return self


@dataclass(frozen=True)
class IssueTypes:
    default: str
    patterns: tuple[tuple[str, KeywordMatcher], ...]

    def classify(self, subject: str, text: str) -> tuple[str, str]:
        """(issue type id, why) for a request's subject and text."""
        words = f"{subject}\n{text[:5000]}".lower()
        for type_id, keywords in self.patterns:
            keyword = keywords.first(words)
            if keyword is not None:
                return type_id, f"issue type {type_id}: mentions {keyword!r}"
        return self.default, f"issue type {self.default}: no keyword matched"


def _entry(keyword: str) -> tuple[str, str, bool]:
    # Whole words for Latin script; CJK has no spaces, so a plain substring there.
    return keyword, keyword.lower(), not re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", keyword)


@lru_cache(maxsize=8)
def load_issue_types(path: Path | None = None) -> IssueTypes:
    """Read and validate the issue-type file; PolicyError names the file and key."""
    path = path or DEFAULT_ISSUE_TYPES
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"issue type file {path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"issue type file {path} is not valid TOML: {error}") from None
    try:
        spec = _FileSpec.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise PolicyError(f"issue type file {path}: key {key!r}: "
                          f"{message.removeprefix('Value error, ')}") from None
    return IssueTypes(spec.default, tuple(
        (t.id, KeywordMatcher([_entry(k) for k in t.keywords])) for t in spec.types))
