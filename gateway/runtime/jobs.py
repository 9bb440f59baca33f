"""Every periodic job in one table: its name, its cadence and the function that does it.

The scheduler of ``gateway serve`` (:mod:`gateway.runtime.scheduler`) runs each row on
the node holding the scheduler lease; ``gateway jobs run NAME [--at ISO8601]`` runs one
by hand (DESIGN §12).  A job function takes what it uses, never the ``Gateway``::

    def my_job(database, services, deliver, now) -> None

``deliver`` hands the outbox rows the job queued (committed) to delivery; ``now`` is the
clock the job runs as, so an operator can run it as of a time after an outage.  Jobs must
be idempotent (unique keys, claimed rows): a takeover can overlap two runs, and an
operator may run one by hand while the leader runs it too.

Adding a job is one row in :data:`JOBS` (plus its function, in its feature module).
Every run, by the scheduler or by hand, is recorded in ``job_runs`` for ``jobs list``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.bulk.jobs import quarterly_feature_mail, resume_announcements
from gateway.config import Settings
from gateway.db import Database
from gateway.errors import GatewayError
from gateway.escalation import escalation_job
from gateway.grants.expiry import notify_expiring_job
from gateway.models import JobRun, utcnow
from gateway.pending import auto_close_job, pending_reminders_job
from gateway.services import Services

__all__ = ["JOBS", "Cron", "Every", "Job", "JobFunction", "UnknownJob", "find_job", "job_views",
           "run_job"]

log = logging.getLogger(__name__)

Deliver = Callable[[list[int]], None]
JobFunction = Callable[[Database, Services, Deliver, datetime], None]


@dataclass(frozen=True)
class Every:
    """Every ``seconds``: a number, or the name of the setting that holds it."""

    seconds: float | str

    def interval(self, settings: Settings) -> float:
        if isinstance(self.seconds, str):
            return float(getattr(settings, self.seconds))
        return self.seconds

    def trigger(self, settings: Settings) -> BaseTrigger:
        return IntervalTrigger(seconds=self.interval(settings), timezone=UTC)

    def describe(self, settings: Settings) -> str:
        text = f"every {self.interval(settings):g} s"
        return f"{text} ({self.seconds})" if isinstance(self.seconds, str) else text


@dataclass(frozen=True)
class Cron:
    """On a cron schedule in UTC (the keyword arguments of APScheduler's ``CronTrigger``)."""

    fields: Mapping[str, str | int]

    def trigger(self, settings: Settings) -> BaseTrigger:
        return CronTrigger(timezone=UTC, **dict(self.fields))

    def describe(self, settings: Settings) -> str:
        return "cron " + " ".join(f"{k}={v}" for k, v in self.fields.items()) + " (UTC)"


@dataclass(frozen=True)
class Job:
    name: str
    """The name of DESIGN §12: ``jobs run NAME``, ``jobs list``, the ``job_runs`` row."""
    cadence: Every | Cron
    function: JobFunction
    scheduler_id: str = ""
    """The scheduler's name for the job (its logs), where it predates §12; else ``name``.
    ``jobs run`` accepts it too."""

    @property
    def id(self) -> str:
        return self.scheduler_id or self.name

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.scheduler_id,) if self.scheduler_id else ()


JOBS: tuple[Job, ...] = (
    Job("escalation", Every("sweep_interval"), escalation_job),
    Job("quarterly", Cron({"month": "1,4,7,10", "day": "1-7", "hour": 7}),
        quarterly_feature_mail, scheduler_id="quarterly-feature-mail"),
    Job("announcements", Every(30), resume_announcements, scheduler_id="announcements-resume"),
    Job("expiring-grants", Every("sweep_interval"), notify_expiring_job),
    Job("pending-reminders", Every("sweep_interval"), pending_reminders_job),
    Job("auto-close", Every("sweep_interval"), auto_close_job),
)


class UnknownJob(GatewayError):
    """``jobs run`` was given a name that is in no row of the table."""


def find_job(name: str, jobs: Iterable[Job] = JOBS) -> Job:
    jobs = tuple(jobs)
    for job in jobs:
        if name == job.name or name in job.aliases:
            return job
    raise UnknownJob(f"there is no scheduled job {name!r}; the jobs are "
                     f"{', '.join(job.name for job in jobs)}")


def run_job(job: Job, database: Database, services: Services, deliver: Deliver, *,
            now: datetime, node: str) -> None:
    """Run ``job`` as of ``now`` and record the run (also when it fails, then re-raise)."""
    started = utcnow()
    outcome = "failed"
    try:
        job.function(database, services, deliver, now)
        outcome = "ok"
    finally:
        _record(database, JobRun(name=job.name, as_of=now, started_at=started,
                                 finished_at=utcnow(), node=node, outcome=outcome))


def _record(database: Database, run: JobRun) -> None:
    """Keep the run as the job's last one; failing to is logged, never fatal (the work
    is done and committed by then)."""
    try:
        with database.transaction() as session:
            last = session.get(JobRun, run.name, with_for_update=True)
            if last is None:
                session.add(run)
                return
            for column in ("as_of", "started_at", "finished_at", "node", "outcome"):
                setattr(last, column, getattr(run, column))
    except IntegrityError:  # another node recorded its first run at the same moment
        log.info("job %s: another node recorded its run first", run.name)
    except SQLAlchemyError:
        log.warning("job %s: could not record its run", run.name, exc_info=True)


def job_views(database: Database, settings: Settings, leader: str | None,
              jobs: Iterable[Job] = JOBS) -> list[dict[str, Any]]:
    """``jobs list``: name, cadence, last run (and as of when, by whom, how), leader."""
    with database.reading() as session:
        runs = {run.name: run for run in session.scalars(select(JobRun))}
    views = []
    for job in jobs:
        run = runs.get(job.name)
        views.append({
            "name": job.name,
            "aliases": list(job.aliases),
            "cadence": job.cadence.describe(settings),
            "last_run": run.started_at.isoformat() if run else None,
            "last_run_as_of": run.as_of.isoformat() if run else None,
            "last_outcome": run.outcome if run else None,
            "last_node": run.node if run else None,
            "leader": leader,
        })
    return views
