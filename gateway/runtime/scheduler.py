"""Periodic jobs inside ``gateway serve``, run by one node at a time (APScheduler 3).

Every ``serve`` process runs a ``BackgroundScheduler``, but a job body runs only while
this process holds the database lease ``"scheduler"`` (:mod:`gateway.leases`), renewed
every third of its time to live.  A node that dies lets the lease lapse and another node
takes over within ``scheduler_lease_ttl`` seconds.  Jobs must still be idempotent (they
are: unique keys and leases of their own), because a takeover can overlap a job that
was already running.

The jobs are the rows of :data:`gateway.runtime.jobs.JOBS`; nothing registers itself
on import.  Each run gets the database, the services, the clock and a ``deliver`` that
enqueues what the job queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from gateway import leases
from gateway.models import utcnow
from gateway.runtime.app import Gateway
from gateway.runtime.jobs import JOBS, Job, run_job

__all__ = ["LEASE_NAME", "GatewayScheduler"]

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"


class GatewayScheduler:
    """The scheduler of one ``serve`` process; jobs run only while it is the leader."""

    def __init__(self, gateway: Gateway, *, jobs: Sequence[Job] = JOBS,
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
        jobs = self._jobs
        self._renew()
        self._scheduler.add_job(self._renew, IntervalTrigger(seconds=self.ttl / 3, timezone=UTC),
                                id="lease-renewal", name="lease-renewal")
        for job in jobs:
            self._scheduler.add_job(self._run, job.cadence.trigger(self.gateway.settings),
                                    args=[job], id=job.id, name=job.id)
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

    def _run(self, job: Job) -> None:
        if not self.is_leader:
            return
        log.info("scheduler: running %s", job.id)
        gateway = self.gateway
        try:
            run_job(job, gateway.db, gateway.services, gateway.deliverer(inline=False),
                    now=utcnow(), node=self.holder)
        except Exception:  # noqa: BLE001 - one failed run must not stop the schedule
            log.exception("scheduled job %s failed", job.id)

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
