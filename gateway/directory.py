"""The directory: who we are, our products, teams, people and agents.

Loaded from TOML files (DESIGN section 6) with an idempotent upsert: loading the
same file twice changes nothing, and tables may be split over several files.  A
file with an unknown key or a bad value is refused whole, naming file, table and
key, so a typo never half-loads.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.errors import DirectoryError
from gateway.models import (
    Agent,
    Article,
    Feature,
    FeatureUsage,
    Person,
    Product,
    SupportSettings,
    Team,
    TeamAddon,
)
from gateway.prepared import Prepared

__all__ = ["LoadReport", "SupportIdentity", "domain_key", "load_directory_file",
           "support_identity"]

log = logging.getLogger(__name__)

Language = Literal["en", "ja", "de", "it", "nl"]


def domain_key(domain: str) -> str:
    """A domain as it is compared: its IDNA (``xn--``) form, lower case, no final dot.

    ``bücher.example``, ``BÜCHER.example`` and ``xn--bcher-kva.example`` are one domain:
    an SMTPUTF8 client writes the Unicode form, others the ASCII one, and the directory
    may name either.  The standard library's IDNA codec (IDNA 2003, whose nameprep also
    folds case); a name it cannot encode is compared lower-cased as it is.
    """
    domain = domain.strip().rstrip(".")
    if domain.isascii():
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return domain.lower()


def _email(value: str) -> str:
    value = value.strip().lower()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or " " in value or "." not in domain:
        raise ValueError(f"{value!r} is not an email address")
    return value


Email = Annotated[str, AfterValidator(_email)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SupportEntry(_Strict):
    name: str = Field(min_length=1)
    address: Email
    domains: list[str] = Field(min_length=1)

    @field_validator("domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [d.strip().lower() for d in value]


class ProductEntry(_Strict):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)


class AddonEntry(_Strict):
    product: str = Field(min_length=1)
    tier: Literal["essentials", "enhanced"]
    starts: date | None = None
    ends: date | None = None


class TeamEntry(_Strict):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    licenses: int = Field(default=0, ge=0)
    language: Language = "en"
    addons: list[AddonEntry] = Field(default_factory=list)


class PersonEntry(_Strict):
    email: Email
    name: str = ""
    team: str | None = None
    role: Literal["admin", "member"] = "member"
    language: Language | None = None
    """None: the team's language (resolved at load), else English."""
    champion: Literal["none", "grand", "epic"] = "none"
    can_grant_access: bool = False
    copy_on_team_tickets: bool = False


class AgentEntry(_Strict):
    email: Email
    name: str = ""
    departments: list[str] = Field(default_factory=list)
    languages: list[Language] = Field(default_factory=lambda: list[Language](["en"]))


class FeatureEntry(_Strict):
    id: str = Field(min_length=1)
    name: dict[Language, str]
    description: dict[Language, str] = Field(default_factory=dict)
    url: str = ""

    @field_validator("name")
    @classmethod
    def _english_required(cls, value: dict[str, str]) -> dict[str, str]:
        if "en" not in value:
            raise ValueError("an English name (en) is required")
        return value


class UsageEntry(_Strict):
    team: str = Field(min_length=1)
    feature: str = Field(min_length=1)
    count: int = Field(ge=0)
    period: str = Field(pattern=r"^\d{4}Q[1-4]$")


class ArticleEntry(_Strict):
    id: str = Field(min_length=1)
    title: dict[Language, str]
    url: str = ""
    issue_types: list[str] = Field(default_factory=list)
    popularity: int = 0


class DirectoryFile(_Strict):
    support: SupportEntry | None = None
    products: list[ProductEntry] = Field(default_factory=list)
    teams: list[TeamEntry] = Field(default_factory=list)
    people: list[PersonEntry] = Field(default_factory=list)
    agents: list[AgentEntry] = Field(default_factory=list)
    features: list[FeatureEntry] = Field(default_factory=list)
    usage: list[UsageEntry] = Field(default_factory=list)
    articles: list[ArticleEntry] = Field(default_factory=list)


@dataclass(frozen=True)
class LoadReport:
    """How many rows of each table a load created or updated."""

    counts: dict[str, int]

    def __str__(self) -> str:
        return ", ".join(f"{n} {table}" for table, n in self.counts.items() if n) or "nothing"


def _explain(path: Path, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        loc = list(item["loc"])
        table = str(loc.pop(0)) if loc else "(top level)"
        entry = f" entry {int(loc.pop(0)) + 1}" if loc and isinstance(loc[0], int) else ""
        key = ".".join(str(p) for p in loc)
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        if item["type"] == "extra_forbidden" and not key:
            key, table = table, "(top level)"
        where = f"table [{table}]{entry}" + (f", key {key!r}" if key else "")
        problems.append(f"{path}: {where}: {message}")
    return "; ".join(problems)


def _parse(path: Path) -> DirectoryFile:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise DirectoryError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as error:
        raise DirectoryError(f"{path}: not valid TOML: {error}") from None
    try:
        return DirectoryFile.model_validate(data)
    except ValidationError as error:
        raise DirectoryError(_explain(path, error)) from None


def _check_references(path: Path, parsed: DirectoryFile, session: Session) -> None:
    teams = {t.id for t in parsed.teams} | set(session.scalars(select(Team.id)))
    products = {p.id for p in parsed.products} | set(session.scalars(select(Product.id)))
    for number, person in enumerate(parsed.people, 1):
        if person.team is not None and person.team not in teams:
            raise DirectoryError(
                f"{path}: table [people] entry {number}, key 'team': unknown team {person.team!r}"
            )
    features = {f.id for f in parsed.features} | set(session.scalars(select(Feature.id)))
    for number, usage in enumerate(parsed.usage, 1):
        if usage.team not in teams:
            raise DirectoryError(
                f"{path}: table [usage] entry {number}, key 'team': unknown team {usage.team!r}")
        if usage.feature not in features:
            raise DirectoryError(f"{path}: table [usage] entry {number}, key 'feature': "
                                 f"unknown feature {usage.feature!r}")
    for number, team in enumerate(parsed.teams, 1):
        for addon in team.addons:
            if addon.product not in products:
                raise DirectoryError(
                    f"{path}: table [teams] entry {number}, key 'addons.product': "
                    f"unknown product {addon.product!r}"
                )
            if addon.starts and addon.ends and addon.ends < addon.starts:
                raise DirectoryError(
                    f"{path}: table [teams] entry {number}, key 'addons.ends': "
                    "ends before it starts"
                )


def load_directory_file(session: Session, path: Path) -> LoadReport:
    """Validate one file completely, then upsert it in the caller's transaction."""
    parsed = _parse(path)
    _check_references(path, parsed, session)
    counts: dict[str, int] = {}
    if parsed.support is not None:
        row = session.get(SupportSettings, 1) or SupportSettings(id=1)
        row.name, row.address, row.domains = (
            parsed.support.name, parsed.support.address, parsed.support.domains)
        session.add(row)
        session.info.pop(_SUPPORT_KEY, None)
        counts["support"] = 1
    for product in parsed.products:
        session.merge(Product(id=product.id, name=product.name))
    counts["products"] = len(parsed.products)
    for entry in parsed.teams:
        team = session.get(Team, entry.id) or Team(id=entry.id)
        team.name, team.licenses, team.language = entry.name, entry.licenses, entry.language
        team.addons = [TeamAddon(product=a.product, tier=a.tier, starts=a.starts, ends=a.ends)
                       for a in entry.addons]
        session.add(team)
    counts["teams"] = len(parsed.teams)
    session.flush()
    for person in parsed.people:
        home = session.get(Team, person.team) if person.team else None
        language = person.language or (home.language if home is not None else "en")
        session.merge(Person(
            email=person.email, name=person.name, team_id=person.team, role=person.role,
            language=language, champion=person.champion,
            can_grant_access=person.can_grant_access,
            extra={"copy_on_team_tickets": person.copy_on_team_tickets},
        ))
    counts["people"] = len(parsed.people)
    for agent in parsed.agents:
        session.merge(Agent(email=agent.email, name=agent.name, departments=agent.departments,
                            languages=list(agent.languages)))
    counts["agents"] = len(parsed.agents)
    _load_catalogue(session, parsed, counts)
    log.info("directory %s loaded: %s", path, LoadReport(counts))
    return LoadReport(counts)


def _load_catalogue(session: Session, parsed: DirectoryFile, counts: dict[str, int]) -> None:
    known = session.scalars(select(Feature.id)).all()
    next_position = len(known)
    for feature in parsed.features:
        row = session.get(Feature, feature.id)
        if row is None:
            row = Feature(id=feature.id, position=next_position)
            next_position += 1
        row.name = {str(k): v for k, v in feature.name.items()}
        row.description = {str(k): v for k, v in feature.description.items()}
        row.url = feature.url
        session.add(row)
    counts["features"] = len(parsed.features)
    for usage in parsed.usage:
        row_u = session.scalars(select(FeatureUsage).where(
            FeatureUsage.team_id == usage.team, FeatureUsage.feature_id == usage.feature,
            FeatureUsage.period == usage.period)).one_or_none()
        if row_u is None:
            row_u = FeatureUsage(team_id=usage.team, feature_id=usage.feature,
                                 period=usage.period)
        row_u.count = usage.count
        session.add(row_u)
    counts["usage"] = len(parsed.usage)
    for article in parsed.articles:
        session.merge(Article(id=article.id, title={str(k): v for k, v in article.title.items()},
                              url=article.url,
                              issue_types=article.issue_types, popularity=article.popularity))
    counts["articles"] = len(parsed.articles)


@dataclass(frozen=True)
class SupportIdentity:
    """Who the gateway speaks as, and which domains it receives mail for."""

    name: str
    address: str
    domains: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    """Further local parts accepted on our domains (product, category, emergency addresses)."""

    def __post_init__(self) -> None:
        # Compared with inbound.addresses.split_address's domains: both in domain_key form.
        object.__setattr__(self, "domains", tuple(domain_key(d) for d in self.domains))

    @property
    def local_part(self) -> str:
        return self.address.rpartition("@")[0]

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2]


DEFAULT_SUPPORT = SupportIdentity("Support", "support@support.example", ("support.example",))


_SUPPORT_KEY = "gateway.support_identity"
_SUPPORT_COLUMNS = SupportSettings.__table__.c
_SUPPORT_ROW = Prepared(
    select(_SUPPORT_COLUMNS.name, _SUPPORT_COLUMNS.address, _SUPPORT_COLUMNS.domains)
    .where(_SUPPORT_COLUMNS.id == 1))


def support_identity(session: Session) -> SupportIdentity:
    """The loaded ``[support]`` table, or a default until a directory is loaded.

    Read once per session (``session.info``): a pipeline run asks about five times,
    and the identity map holds the row only weakly, so each ask was a SELECT.  The one
    read is a plain Core statement (no ORM object to build, no autoflush): the row
    changes only in :func:`load_directory_file`, which flushes it and drops the cache.
    """
    cached = session.info.get(_SUPPORT_KEY)
    if isinstance(cached, SupportIdentity):
        return cached
    row = _SUPPORT_ROW.first(session)
    identity = (DEFAULT_SUPPORT if row is None
                else SupportIdentity(row[0], row[1], tuple(row[2])))
    session.info[_SUPPORT_KEY] = identity
    return identity


