"""Periodic jobs inside ``gateway serve``, run by one node at a time (APScheduler 3).

Every ``serve`` process runs a ``BackgroundScheduler``, but a job body runs only while
this process holds the database lease ``"scheduler"`` (:mod:`gateway.leases`), renewed
every third of its time to live.  A node that dies lets the lease lapse and another node
takes over within ``scheduler_lease_ttl`` seconds.  Jobs must still be idempotent (they
are: unique keys and leases of their own), because a takeover can overlap a job that
was already running.

Adding a periodic job is one call, made when a module is imported::

    from gateway.runtime.scheduler import register
    register("escalation", escalation_job, seconds=lambda settings: settings.sweep_interval)
    register("quarterly-feature-mail", run, cron={"month": "1,4,7,10", "day": 1, "hour": 7})

and one line naming that module in :data:`JOB_MODULES` (imported when the scheduler
starts, so that importing :mod:`gateway.runtime.scheduler` itself stays free of cycles).
The job function receives the running :class:`gateway.runtime.app.Gateway`.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from gateway import leases

if TYPE_CHECKING:
    from gateway.config import Settings
    from gateway.runtime.app import Gateway

__all__ = ["JOB_MODULES", "LEASE_NAME", "GatewayScheduler", "PeriodicJob", "register",
           "registered_jobs", "unregister"]

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"

#: Modules that register jobs when imported; add yours here (one line).
JOB_MODULES: tuple[str, ...] = ("gateway.bulk.jobs", "gateway.escalation",
                                 "gateway.grants.expiry")

JobFunction = Callable[["Gateway"], None]
Interval = Callable[["Settings"], float]


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    function: JobFunction
    trigger: BaseTrigger | Interval
    """A trigger, or the interval in seconds read from the settings when the scheduler starts."""

    def trigger_for(self, settings: Settings) -> BaseTrigger:
        if isinstance(self.trigger, BaseTrigger):
            return self.trigger
        return IntervalTrigger(seconds=self.trigger(settings), timezone=UTC)


_REGISTRY: dict[str, PeriodicJob] = {}
_REGISTRY_LOCK = threading.Lock()


def register(name: str, function: JobFunction, *, seconds: float | Interval | None = None,
             cron: Mapping[str, Any] | None = None) -> None:
    """Run ``function(gateway)`` every ``seconds`` (a number, or a function of the settings
    for a cadence that is configured), or on a cron schedule (UTC; the keyword arguments of
    APScheduler's ``CronTrigger``).  Registering a name again replaces it."""
    if (seconds is None) == (cron is None):
        raise ValueError("give exactly one of seconds= or cron=")
    trigger: BaseTrigger | Interval
    if callable(seconds):
        trigger = seconds
    elif seconds is not None:
        trigger = IntervalTrigger(seconds=seconds, timezone=UTC)
    else:
        trigger = CronTrigger(timezone=UTC, **dict(cron or {}))
    with _REGISTRY_LOCK:
        _REGISTRY[name] = PeriodicJob(name, function, trigger)


def unregister(name: str) -> None:
    """Forget a registered job (tests; a feature switched off)."""
    with _REGISTRY_LOCK:
        _REGISTRY.pop(name, None)


def registered_jobs() -> list[PeriodicJob]:
    for module in JOB_MODULES:
        importlib.import_module(module)
    with _REGISTRY_LOCK:
        return list(_REGISTRY.values())


class GatewayScheduler:
    """The scheduler of one ``serve`` process; jobs run only while it is the leader."""

    def __init__(self, gateway: Gateway, *, jobs: list[PeriodicJob] | None = None,
                 ttl: float | None = None) -> None:
        self.gateway = gateway
        self.ttl = ttl or gateway.settings.scheduler_lease_ttl
        self.holder = leases.holder_name()
        self._jobs = jobs
        self._leader_until = 0.0
        self._lock = threading.Lock()
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})

    @property
    def is_leader(self) -> bool:
        """True while our last renewal is fresh (with a margin, so two never overlap)."""
        return time.monotonic() < self._leader_until

    def start(self) -> None:
        jobs = self._jobs if self._jobs is not None else registered_jobs()
        self._renew()
        self._scheduler.add_job(self._renew, IntervalTrigger(seconds=self.ttl / 3, timezone=UTC),
                                id="lease-renewal", name="lease-renewal")
        for job in jobs:
            self._scheduler.add_job(self._run, job.trigger_for(self.gateway.settings),
                                    args=[job], id=job.name,
                                    name=job.name)
        self._scheduler.start()
        log.info("scheduler started with %s jobs (%s)", len(jobs),
                 "leader" if self.is_leader else "standby")

    def _renew(self) -> None:
        started = time.monotonic()
        try:
            held = leases.try_acquire(self.gateway.db, LEASE_NAME, self.holder, self.ttl)
        except Exception:  # noqa: BLE001 - database outage: stop leading, try again later
            log.exception("could not renew the scheduler lease")
            held = False
        with self._lock:
            was = self.is_leader
            # Count from before the call and keep a margin of a third of the ttl.
            self._leader_until = started + self.ttl * 2 / 3 if held else 0.0
            if held != was:
                log.info("scheduler: %s", "this node is now the leader" if held
                         else "this node is no longer the leader")

    def _run(self, job: PeriodicJob) -> None:
        if not self.is_leader:
            return
        log.info("scheduler: running %s", job.name)
        try:
            job.function(self.gateway)
        except Exception:  # noqa: BLE001 - one failed run must not stop the schedule
            log.exception("scheduled job %s failed", job.name)

    def stop(self) -> None:
        """Stop scheduling, wait for running jobs, hand the lease over at once (idempotent)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        if self.is_leader:
            try:
                leases.release(self.gateway.db, LEASE_NAME, self.holder)
            except Exception:  # noqa: BLE001 - it lapses by itself
                log.exception("could not release the scheduler lease")
        self._leader_until = 0.0
