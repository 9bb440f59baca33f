"""Quarterly feature mail: every admin of a team with a live premium add-on hears about the
three features the team used least last quarter.

Exactly once per (admin, team, quarter): each mail is queued in one transaction together
with a ``quarterly_sends`` row whose unique key is that triple.  A second run, a run that
was killed half-way, or a run on a second node therefore skips (or fails to insert) what
was already queued and sends only the rest.

Choice of features: usage of the quarter before the one being mailed (the newest full
quarter); a feature without a usage row counts as never used (0); least used first, ties
in catalogue order (``Feature.position``, the order the directory listed them).
The mail goes to admins only, and never to a champion (MISSION §1: "Champions do not
receive the quarterly feature emails"), not even one who is also an admin.  Recipients who
left the "quarterly" list are skipped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gateway.bulk.sending import Pacer, queue_bulk_mail
from gateway.bulk.unsubscribe import unsubscribed
from gateway.db import Database
from gateway.job_items import JobItems
from gateway.models import Feature, FeatureUsage, Person, QuarterlySend, Team, TeamAddon, utcnow
from gateway.services import Services

__all__ = ["Planned", "QuarterlyReport", "current_quarter", "parse_quarter", "plan",
           "previous_quarter", "run_quarterly"]

log = logging.getLogger(__name__)

FEATURES_PER_MAIL = 3
LIST_NAME = "quarterly"
_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")


def parse_quarter(quarter: str) -> tuple[date, date]:
    """``"2026Q4"`` → (2026-10-01, 2027-01-01): first day and first day after."""
    match = _QUARTER.match(quarter.strip().upper())
    if not match:
        raise ValueError(f"{quarter!r} is not a quarter like 2026Q4")
    year, number = int(match[1]), int(match[2])
    start = date(year, 3 * number - 2, 1)
    end = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
    return start, end


def current_quarter(today: date) -> str:
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


def previous_quarter(quarter: str) -> str:
    start, _ = parse_quarter(quarter)
    return f"{start.year - 1}Q4" if start.month == 1 else f"{start.year}Q{start.month // 3}"


@dataclass(frozen=True)
class Planned:
    """One mail to send: who, for which team, and which three features (ids)."""

    email: str
    name: str
    language: str
    team_id: str
    features: tuple[str, ...]


@dataclass
class QuarterlyReport:
    quarter: str
    sent: list[Planned] = field(default_factory=list)
    already_sent: int = 0
    unsubscribed: int = 0
    items: JobItems = field(default_factory=lambda: JobItems("quarterly"))
    """The admins whose mail failed (left for the next run; the others were sent)."""


def _live(addon: TeamAddon, day: date) -> bool:
    return ((addon.starts is None or addon.starts <= day)
            and (addon.ends is None or day < addon.ends))


def _reference_day(quarter: str, today: date) -> date:
    """The day add-ons must be live on: today within the quarter, else its first day."""
    start, end = parse_quarter(quarter)
    return today if start <= today < end else start


def least_used(features: list[Feature], usage: dict[str, int]) -> tuple[str, ...]:
    ranked = sorted(features, key=lambda f: (usage.get(f.id, 0), f.position, f.id))
    return tuple(f.id for f in ranked[:FEATURES_PER_MAIL])


def plan(session: Session, quarter: str, today: date) -> list[Planned]:
    """Everyone who should get the quarter's mail, whether or not it was sent already."""
    day = _reference_day(quarter, today)
    features = list(session.scalars(select(Feature).order_by(Feature.position, Feature.id)))
    if not features:
        return []
    period = previous_quarter(quarter)
    planned: list[Planned] = []
    for team in session.scalars(select(Team).order_by(Team.id)):
        if not any(_live(addon, day) for addon in team.addons):
            continue
        usage = {row.feature_id: row.count for row in session.scalars(select(FeatureUsage).where(
            FeatureUsage.team_id == team.id, FeatureUsage.period == period))}
        chosen = least_used(features, usage)
        admins = session.scalars(select(Person).where(
            Person.team_id == team.id, Person.role == "admin", Person.champion == "none")
            .order_by(Person.email))
        planned.extend(Planned(p.email, p.name, p.language, team.id, chosen) for p in admins)
    return planned


def feature_views(session: Session, ids: tuple[str, ...], language: str) -> list[dict[str, str]]:
    """Name, description and link of each feature in ``language`` (English if missing)."""
    views = []
    for feature_id in ids:
        feature = session.get(Feature, feature_id)
        assert feature is not None
        views.append({
            "id": feature.id,
            "name": str(feature.name.get(language) or feature.name.get("en") or feature.id),
            "description": str(feature.description.get(language)
                               or feature.description.get("en") or ""),
            "url": feature.url,
        })
    return views


def _queue_one(session: Session, services: Services, quarter: str, item: Planned) -> int | None:
    """Queue one mail with its sends row; None if it was queued before."""
    if session.scalar(select(QuarterlySend.id).where(
            QuarterlySend.person_email == item.email, QuarterlySend.team_id == item.team_id,
            QuarterlySend.quarter == quarter)) is not None:
        return None
    team = session.get(Team, item.team_id)
    assert team is not None
    send = QuarterlySend(person_email=item.email, team_id=item.team_id, quarter=quarter,
                         features=list(item.features), created_at=utcnow())
    session.add(send)
    session.flush()  # the unique key is checked here, before anything is composed
    outbox = queue_bulk_mail(
        session, services, kind="quarterly", list_name=LIST_NAME, to_address=item.email,
        to_name=item.name, language=item.language,
        context={"team_name": team.name, "quarter": quarter,
                 "features": feature_views(session, item.features, item.language)})
    send.outbox_id = outbox.id
    return outbox.id


def run_quarterly(database: Database, services: Services, deliver: Callable[[list[int]], None],
                  quarter: str, *, today: date | None = None,
                  progress: Callable[[str], None] | None = None) -> QuarterlyReport:
    """Queue every mail of ``quarter`` not queued before, handing each batch to ``deliver``
    (given by the caller: delivery now, or the workers)."""
    parse_quarter(quarter)
    day = today or utcnow().date()
    with database.reading() as session:
        planned = plan(session, quarter, day)
        left = unsubscribed(session, LIST_NAME)
    report = QuarterlyReport(quarter)
    pacer = Pacer(services.settings.bulk_batch_interval)
    size = services.settings.bulk_batch_size
    for start in range(0, len(planned), size):
        pacer.wait()
        queued: list[int] = []
        for item in planned[start:start + size]:
            if item.email in left:
                report.unsubscribed += 1
                continue
            failures = len(report.items.failures)
            outbox_id: int | None = None
            with report.items.item(f"{item.email} of team {item.team_id}"):
                try:
                    with database.transaction() as session:
                        outbox_id = _queue_one(session, services, quarter, item)
                except IntegrityError:
                    outbox_id = None  # another node queued it a moment ago
            if len(report.items.failures) > failures:  # named in report.items
                continue
            if outbox_id is None:
                report.already_sent += 1
                continue
            queued.append(outbox_id)
            report.sent.append(item)
        deliver(queued)
        if progress is not None:
            progress(f"quarterly {quarter}: {len(report.sent)} sent, "
                     f"{report.already_sent} already sent, {min(start + size, len(planned))}"
                     f"/{len(planned)} done")
    log.info("quarterly %s: %s sent, %s already sent, %s unsubscribed, %s failed", quarter,
             len(report.sent), report.already_sent, report.unsubscribed,
             len(report.items.failures))
    return report


def describe(planned: list[Planned]) -> list[dict[str, Any]]:
    """Dry-run view: who would get which features."""
    return [{"email": p.email, "team": p.team_id, "language": p.language,
             "features": list(p.features)} for p in planned]
