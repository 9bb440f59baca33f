"""Processing in child processes: whole jobs run outside the worker's process, at a lower
CPU priority, exactly once, stopped at the budget, and a dead child loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.config import Settings
from gateway.models import MessageRecord, SpoolEntry, SpoolState, Ticket
from gateway.pipeline.analysis_pool import AnalysisCrashed
from gateway.runtime.app import Gateway
from gateway.runtime.processing_pool import (
    ProcessingPool,
    available_cores,
    child_nice,
    pool_size,
)
from inbound.intake_priority import LanedDatabase, WriterLane
from inbound.spool import store_message
from tests import crafted
from tests.conftest import DIRECTORY
from tests.mail import maildir_messages, make_mail


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], request: pytest.FixtureRequest) -> Settings:
    overrides = {"processing_processes": 2, **getattr(request, "param", {})}
    return settings_factory(**overrides)


@pytest.fixture
def pool(gateway: Gateway) -> Iterator[ProcessingPool]:
    from gateway.directory import load_directory_file

    with gateway.db.transaction() as session:
        load_directory_file(session, DIRECTORY)
    gateway.start_worker(threads=1, beside_intake=True)  # as under serve: niced children
    assert gateway.processing_pool is not None
    yield gateway.processing_pool
    gateway.stop_worker()


def _state(gateway: Gateway, spool_id: int) -> SpoolEntry:
    with gateway.db.reading() as session:
        entry = session.get(SpoolEntry, spool_id)
        assert entry is not None
        return entry


def _nice(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])


def test_the_pool_follows_the_cores_unless_set(settings_factory: Callable[..., Settings]) -> None:
    assert pool_size(settings_factory(processing_processes=None)) == available_cores()
    assert available_cores() == len(os.sched_getaffinity(0))
    assert pool_size(settings_factory(processing_processes=0)) == 0


def test_children_are_niced_only_beside_intake_unless_configured(
        settings_factory: Callable[..., Settings]) -> None:
    # Under serve, SMTP intake in the parent goes first; a worker of its own competes with
    # the host's other processes on equal terms; a configured value holds for both.
    assert child_nice(settings_factory(), beside_intake=True) == 10
    assert child_nice(settings_factory(), beside_intake=False) == 0
    assert child_nice(settings_factory(processing_nice=5), beside_intake=True) == 5
    assert child_nice(settings_factory(processing_nice=5), beside_intake=False) == 5


def test_a_job_runs_in_a_niced_child_and_its_acknowledgement_is_delivered(
        gateway: Gateway, pool: ProcessingPool, settings: Settings) -> None:
    # Given a stored request
    stored = store_message(gateway.db, make_mail(sender="anna@acme.example",
                                                 subject="Sync fails"), source="smtp")
    # When the worker's job processes it
    result = pool.process(stored.spool_id)
    # Then another process did it, at a lower priority than intake's, exactly once,
    assert result.pid != os.getpid()
    assert pool.nice == 10
    assert _nice(result.pid) == min(19, _nice(os.getpid()) + 10)
    assert result.outcome.state == "processed" and result.outcome.ticket_number
    assert pool.process(stored.spool_id).outcome.outbox_ids == []  # a second run: no effect
    with gateway.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
        assert session.scalar(select(func.count()).select_from(MessageRecord)) == 1
    # and the child wrote the acknowledgement to the maildir itself.
    assert result.undelivered == []
    [ack] = maildir_messages(Path(settings.outbound_url.removeprefix("maildir:")))
    assert ack["To"] == "anna@acme.example" and "Sync fails" in str(ack["Subject"])


def test_jobs_from_several_threads_overlap_in_different_children(
        gateway: Gateway, pool: ProcessingPool) -> None:
    # Given two requests whose analysis takes a while (many MIME parts)
    ids = [store_message(gateway.db, crafted.many_parts(
        20_000, sender=f"parts{n}@crafted.example", subject=f"Parts {n}"), source="smtp").spool_id
        for n in range(2)]
    pids: dict[int, int] = {}

    def job(spool_id: int) -> None:
        pids[spool_id] = pool.process(spool_id).pid

    # When two worker threads process them at the same time
    threads = [threading.Thread(target=job, args=(spool_id,)) for spool_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then both are done, each by its own child
    assert {_state(gateway, i).state for i in ids} == {SpoolState.PROCESSED}
    assert len(set(pids.values())) == 2 and os.getpid() not in pids.values()


@pytest.mark.parametrize("settings", [{"processing_budget_seconds": 0.5,
                                       "max_mime_parts": 10_000_000}], indirect=True)
def test_past_the_budget_the_child_is_stopped_and_the_message_quarantined(
        gateway: Gateway, pool: ProcessingPool) -> None:
    # Given a message whose analysis takes far longer than the 0.5 s budget
    costly = store_message(gateway.db, crafted.many_parts(400_000), source="smtp")
    # When a job processes it
    result = pool.process(costly.spool_id)
    # Then it is stopped at the budget and kept with the reason,
    entry = _state(gateway, costly.spool_id)
    assert entry.state == SpoolState.QUARANTINED and result.outcome.state == "quarantined"
    assert "processing_budget_seconds (0.5 s)" in entry.reason
    # and the next message is processed by a fresh child.
    normal = store_message(gateway.db, make_mail(subject="After the costly one"), source="smtp")
    assert pool.process(normal.spool_id).outcome.state == "processed"


def test_a_child_that_dies_mid_job_fails_the_job_and_the_row_waits_for_the_retry(
        gateway: Gateway, pool: ProcessingPool) -> None:
    # Given a message whose analysis takes a while, being processed by a child
    slow = store_message(gateway.db, crafted.many_parts(100_000), source="smtp")
    failure: list[BaseException] = []

    def job() -> None:
        try:
            pool.process(slow.spool_id)
        except AnalysisCrashed as crashed:
            failure.append(crashed)

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 30
    while _state(gateway, slow.spool_id).attempts == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    # When that child is killed (the OOM killer, a crash)
    killed = _children()
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=30)
    while any(_alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.02)  # the idle one too: the retry below must not pick it up dying
    # Then the job fails (dramatiq retries it), nothing was recorded, the row is still
    # received with the attempt counted,
    assert failure and "died" in str(failure[0])
    entry = _state(gateway, slow.spool_id)
    assert entry.state == SpoolState.RECEIVED and entry.attempts == 1
    # and the retry, in a fresh child, processes it.
    assert pool.process(slow.spool_id).outcome.state == "processed"


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _children() -> list[int]:
    """The processing children alive now (forked by the pool's forkserver)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if b"forkserver" in cmdline and _is_forkserver_of_us(parent):
            found.append(int(entry.name))
    return found


def _is_forkserver_of_us(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid()


def _hold_in_another_process(path: Path) -> subprocess.Popen[bytes]:
    """A process holding ``path``'s flock, as a processing child inside a transaction."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n")],
        stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
    return holder


def _taker(lane: WriterLane, order: list[str], name: str) -> threading.Thread:
    def take() -> None:
        with lane.held(), lane.held():  # re-entrant within a thread
            order.append(name)
            time.sleep(0.05)
    thread = threading.Thread(target=take)
    thread.start()
    return thread


def test_the_writer_lane_is_free_again_when_its_holder_is_killed(tmp_path: Path) -> None:
    # Given another process holding the lane (a child killed inside its transaction)
    holder = _hold_in_another_process(tmp_path / "gateway.db.lane")
    order: list[str] = []
    waiter = _taker(WriterLane(tmp_path / "gateway.db.lane", first=False), order, "child")
    # Then nobody else gets it while it is held,
    time.sleep(0.3)
    assert order == []
    # and when the holder dies inside it, the next one gets it.
    holder.kill()
    holder.wait()
    waiter.join(timeout=5)
    assert order == ["child"]


def test_intake_takes_the_writer_lane_before_processing_children_that_come_later(
        tmp_path: Path) -> None:
    # Given the lane held (by a child in its transaction) and intake waiting for it
    path = tmp_path / "gateway.db.lane"
    holder = _hold_in_another_process(path)
    order: list[str] = []
    intake = _taker(WriterLane(path, first=True), order, "intake")
    time.sleep(0.2)
    # When more processing children queue after it
    children = [_taker(WriterLane(path, first=False), order, f"child {n}") for n in range(3)]
    time.sleep(0.2)
    holder.kill()
    holder.wait()
    for thread in [intake, *children]:
        thread.join(timeout=5)
    # Then intake writes first; the children wait until it is done.
    assert order[0] == "intake" and sorted(order[1:]) == ["child 0", "child 1", "child 2"]


def test_a_gateway_on_sqlite_writes_on_the_lane(gateway: Gateway) -> None:
    assert isinstance(gateway.db, LanedDatabase)
    if not gateway.db.is_sqlite:  # PostgreSQL: writers lock rows, not the database
        assert gateway.db.lane is None
        return
    assert gateway.db.lane is not None
    before = gateway.db.lane.cpu_held
    store_message(gateway.db, make_mail(subject="Laned"), source="smtp")
    with gateway.db.transaction() as session:
        session.execute(select(1))
    assert gateway.db.lane.cpu_held > before
