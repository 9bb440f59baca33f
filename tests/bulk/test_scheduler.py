"""The scheduler: the jobs of one table run on one node only (the holder of the
database lease "scheduler"); when that node stops, another takes over."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from gateway.config import Settings
from gateway.db import Database
from gateway.leases import current_holder
from gateway.models import JobRun
from gateway.runtime.app import Gateway
from gateway.runtime.jobs import JOBS, Every, Job
from gateway.runtime.scheduler import GatewayScheduler
from gateway.runtime.server import GatewayServer
from gateway.services import Services
from tests.conftest import wait_for


class Recorder:
    def __init__(self) -> None:
        self.runs: list[str] = []
        self.lock = threading.Lock()

    def job(self, node: str) -> Job:
        def run(_database: Database, _services: Services, _deliver: Callable[[list[int]], None],
                _now: datetime) -> None:
            with self.lock:
                self.runs.append(node)
        return Job(f"test-tick-{node}", Every(0.2), run)  # a row like those of JOBS


@pytest.fixture
def two_nodes(settings: Settings) -> Iterator[tuple[Gateway, Gateway]]:
    nodes = (Gateway(settings), Gateway(settings))
    yield nodes
    for node in nodes:
        node.close()


def test_only_the_lease_holder_runs_jobs_and_another_takes_over(
        gateway: Gateway, two_nodes: tuple[Gateway, Gateway]) -> None:
    recorder = Recorder()
    first = GatewayScheduler(two_nodes[0], jobs=[recorder.job("a")], ttl=1.5)
    second = GatewayScheduler(two_nodes[1], jobs=[recorder.job("b")], ttl=1.5)
    first.start()
    second.start()
    try:
        wait_for(lambda: len(recorder.runs) >= 5, message="jobs running")
        assert first.is_leader and not second.is_leader
        assert set(recorder.runs) == {"a"}
        assert current_holder(gateway.db, "scheduler") == first.holder
        first.stop()  # releases the lease: the second node takes over
        wait_for(lambda: "b" in recorder.runs, timeout=10, message="takeover")
        count = len(recorder.runs)
        wait_for(lambda: len(recorder.runs) >= count + 3, message="second node running")
        assert recorder.runs[-3:] == ["b", "b", "b"] and second.is_leader
    finally:
        first.stop()
        second.stop()


def test_every_job_has_one_name_of_design_section_12_and_unique_aliases() -> None:
    names = [name for job in JOBS for name in (job.name, *job.aliases)]
    assert len(names) == len(set(names))
    assert {"escalation", "quarterly", "announcements", "expiring-grants"} <= {
        job.name for job in JOBS}


def test_serve_runs_the_scheduler_with_the_periodic_jobs(running: GatewayServer,
                                                     gateway: Gateway) -> None:
    scheduler = running.scheduler
    assert scheduler is not None
    wait_for(lambda: current_holder(gateway.db, "scheduler") == scheduler.holder,
             message="serve's scheduler holds the lease")
    # The scheduler's names of the jobs are those it had before DESIGN §12 named them.
    names = {job.id for job in JOBS}
    assert {"quarterly-feature-mail", "announcements-resume", "escalation",
            "expiring-grants"} <= names
    # Jobs with a configured cadence read it from the settings (1 s in tests).
    escalation = [job for job in JOBS if job.name == "escalation"][0]
    trigger = escalation.cadence.trigger(gateway.settings)
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval.total_seconds() == 1.0
    # Each run is recorded for `gateway jobs list`, with the node that ran it.

    def recorded() -> JobRun | None:
        with gateway.db.reading() as session:
            return session.get(JobRun, "escalation")
    run = wait_for(recorded, message="the escalation run recorded")
    assert run.node == scheduler.holder and run.outcome == "ok"
