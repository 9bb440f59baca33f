"""The scheduler: jobs registered with one call run on one node only (the holder of the
database lease "scheduler"); when that node stops, another takes over."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from gateway.config import Settings
from gateway.leases import current_holder
from gateway.runtime.app import Gateway
from gateway.runtime.scheduler import (
    GatewayScheduler,
    PeriodicJob,
    register,
    registered_jobs,
    unregister,
)
from gateway.runtime.server import GatewayServer
from tests.conftest import wait_for


class Recorder:
    def __init__(self) -> None:
        self.runs: list[str] = []
        self.lock = threading.Lock()

    def job(self, node: str) -> PeriodicJob:
        def run(_gateway: Gateway) -> None:
            with self.lock:
                self.runs.append(node)
        register(f"test-tick-{node}", run, seconds=0.2)  # the one call other modules make
        try:
            return [j for j in registered_jobs() if j.name == f"test-tick-{node}"][0]
        finally:
            unregister(f"test-tick-{node}")


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


def test_register_needs_exactly_one_schedule() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        register("bad", lambda _g: None)
    with pytest.raises(ValueError, match="exactly one"):
        register("bad", lambda _g: None, seconds=1, cron={"hour": 1})


def test_serve_runs_the_scheduler_with_the_periodic_jobs(running: GatewayServer,
                                                     gateway: Gateway) -> None:
    scheduler = running.scheduler
    assert scheduler is not None
    wait_for(lambda: current_holder(gateway.db, "scheduler") == scheduler.holder,
             message="serve's scheduler holds the lease")
    names = {job.name for job in registered_jobs()}
    assert {"quarterly-feature-mail", "announcements-resume", "escalation",
            "expiring-grants"} <= names
    # Jobs with a configured cadence read it from the settings (1 s in tests).
    escalation = [job for job in registered_jobs() if job.name == "escalation"][0]
    assert escalation.trigger_for(gateway.settings).interval.total_seconds() == 1.0
