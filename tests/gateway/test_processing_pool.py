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
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update

from gateway.config import Settings
from gateway.models import (
    MessageRecord,
    OutboxItem,
    OutboxStatus,
    SpoolEntry,
    SpoolState,
    Ticket,
)
from gateway.pipeline.analysis_pool import AnalysisCrashed
from gateway.runtime.app import Gateway
from gateway.runtime.processing_child import JobResult
from gateway.runtime.processing_pool import (
    ProcessingFailed,
    ProcessingPool,
    available_cores,
    child_nice,
    pool_size,
)
from inbound.intake_priority import LanedDatabase, WriterLane
from inbound.spool import store_message
from outbound.delivery import deliver_outbox_item
from tests import crafted
from tests.conftest import DIRECTORY, wait_for
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
    assert _state(gateway, stored.spool_id).attempts == 1  # counted as it ended
    assert pool.process(stored.spool_id).outcome.outbox_ids == []  # a second run: no effect
    with gateway.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1
        assert session.scalar(select(func.count()).select_from(MessageRecord)) == 1
    # and the child wrote the acknowledgement to the maildir itself (completed in its
    # next lane turn, or alone when no next message comes).
    assert result.undelivered == []
    [ack] = wait_for(lambda: maildir_messages(_maildir(settings)),
                     message="the acknowledgement in the maildir")
    assert ack["To"] == "anna@acme.example" and "Sync fails" in str(ack["Subject"])


def _maildir(settings: Settings) -> Path:
    return Path(settings.outbound_url.removeprefix("maildir:"))


def _waiting_pool(gateway: Gateway, *, redeliver: Callable[[int], None] | None = None
                  ) -> ProcessingPool:
    """One child whose staged deliveries wait for the next message's lane turn (no idle
    completion within the test)."""
    from gateway.directory import load_directory_file

    with gateway.db.transaction() as session:
        load_directory_file(session, DIRECTORY)
    pool = ProcessingPool(gateway.settings, gateway.db, 1, redeliver=redeliver,
                          idle_completion=600)
    pool.warm()
    return pool


def _request(gateway: Gateway, sender: str, subject: str) -> int:
    """A new request from ``sender``, stored as SMTP intake stores it: its spool id."""
    return store_message(gateway.db, make_mail(sender=sender, subject=subject),
                         source="smtp").spool_id


def _sent_at_once_without_a_lane(gateway: Gateway, settings: Settings, staged: list[int]
                                 ) -> bool:
    """On PostgreSQL (no lane to share) nothing is staged: the acknowledgement is in the
    maildir already."""
    if gateway.db.sqlite_file is not None:
        return False
    assert staged == [] and len(maildir_messages(_maildir(settings))) == 1
    return True


def test_a_messages_deliveries_complete_in_the_lane_turn_of_the_next_one(
        gateway: Gateway, settings: Settings) -> None:
    # Given a child that processed a request and staged its acknowledgement
    pool = _waiting_pool(gateway)
    try:
        result = pool.process(_request(gateway, "anna@acme.example", "First"))
        assert result.outcome.state == "processed"
        if _sent_at_once_without_a_lane(gateway, settings, result.staged):
            return
        assert result.staged == result.outcome.outbox_ids
        assert maildir_messages(_maildir(settings)) == []  # written under tmp/, not linked
        # When it processes the next request
        pool.process(_request(gateway, "bert@acme.example", "Second"))
        # Then the first acknowledgement was completed in that message's turn: in the
        # maildir, its row sent, once.
        [ack] = maildir_messages(_maildir(settings))
        assert ack["To"] == "anna@acme.example" and "First" in str(ack["Subject"])
        with gateway.db.reading() as session:
            [item] = session.scalars(select(OutboxItem).where(
                OutboxItem.id.in_(result.staged))).all()
            assert item.status == OutboxStatus.SENT
    finally:
        pool.close()
    # and the second is completed when the child goes.
    assert sorted(m["To"] for m in maildir_messages(_maildir(settings))) == [
        "anna@acme.example", "bert@acme.example"]


def test_a_staged_delivery_that_cannot_complete_fails_alone_and_goes_to_the_delivery_job(
        gateway: Gateway, settings: Settings) -> None:
    # Given a staged acknowledgement whose file under tmp/ is gone (a cleaner, a full disk)
    pool = _waiting_pool(gateway)
    try:
        staged = pool.process(_request(gateway, "anna@acme.example", "Lost file")).staged
        if _sent_at_once_without_a_lane(gateway, settings, staged):
            return
        for file in (_maildir(settings) / "tmp").iterdir():
            file.unlink()
        # When the next message's transaction would complete it
        result = pool.process(_request(gateway, "bert@acme.example", "Next"))
    finally:
        pool.close()
    # Then that message is processed all the same, the failed row alone stays pending and
    # is handed to the delivery job, which sends it once.
    assert result.outcome.state == "processed" and result.undelivered == staged
    with gateway.db.reading() as session:
        [item] = session.scalars(select(OutboxItem).where(OutboxItem.id.in_(staged))).all()
        assert item.status == OutboxStatus.PENDING
    assert [m["To"] for m in maildir_messages(_maildir(settings))] == ["bert@acme.example"]
    assert deliver_outbox_item(gateway.db, gateway.transport, settings, staged[0]) == "sent"
    assert sorted(m["To"] for m in maildir_messages(_maildir(settings))) == [
        "anna@acme.example", "bert@acme.example"]


def test_a_child_killed_with_staged_deliveries_hands_them_to_the_delivery_job(
        gateway: Gateway, settings: Settings) -> None:
    # Given a child holding a staged acknowledgement (written under tmp/, not linked)
    redelivered: list[int] = []
    pool = _waiting_pool(gateway, redeliver=redelivered.append)
    try:
        staged = pool.process(_request(gateway, "anna@acme.example", "Staged")).staged
        # (on PostgreSQL nothing waits for a lane turn: it was sent at once)
        assert bool(staged) == (gateway.db.sqlite_file is not None)
        # When the child is killed (the OOM killer) before its next lane turn
        for pid in _children():
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while _children() and time.monotonic() < deadline:
            time.sleep(0.02)
        # and the next job finds it dead,
        assert pool.process(_request(gateway, "bert@acme.example", "After")
                            ).outcome.state == "processed"
    finally:
        pool.close()
    # Then the staged row went to the delivery job, which sends it once.
    assert redelivered == staged
    for outbox_id in redelivered:
        assert deliver_outbox_item(gateway.db, gateway.transport, settings, outbox_id) == "sent"
    acks = [m["To"] for m in maildir_messages(_maildir(settings))]
    assert sorted(acks) == ["anna@acme.example", "bert@acme.example"]


def test_an_idle_child_dead_before_its_death_is_reported_is_replaced_without_an_attempt(
        gateway: Gateway, settings: Settings) -> None:
    # Given an idle child killed while the forkserver, which reports its children's deaths,
    # cannot yet say so (stopped here; under load it is merely late)
    pool = _waiting_pool(gateway)
    forkserver = _forkserver_pid()
    try:
        pool.process(_request(gateway, "anna@acme.example", "First"))
        [idle] = _children()
        os.kill(forkserver, signal.SIGSTOP)
        try:
            os.kill(idle, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while _alive(idle) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert not _alive(idle)
            # When the next job is handed to the pool (the forkserver carries on meanwhile)
            spool_id = _request(gateway, "bert@acme.example", "After")
            answers: list[JobResult] = []
            job = _in_a_thread(lambda: answers.append(pool.process(spool_id)))
            time.sleep(0.3)
        finally:
            os.kill(forkserver, signal.SIGCONT)
        job.join(timeout=60)
    finally:
        pool.close()
    # Then a fresh child processed it, and the one attempt counted is the one that did.
    _processed_once_elsewhere(gateway, answers, spool_id, not_by=idle)


def test_a_child_killed_with_the_job_unread_leaves_it_to_another_without_an_attempt(
        gateway: Gateway, settings: Settings) -> None:
    # Given an idle child that cannot run (stopped) when a job is handed to it
    pool = _waiting_pool(gateway)
    try:
        pool.process(_request(gateway, "anna@acme.example", "First"))
        [idle] = _children()
        os.kill(idle, signal.SIGSTOP)
        spool_id = _request(gateway, "bert@acme.example", "After")
        answers: list[JobResult] = []
        job = _in_a_thread(lambda: answers.append(pool.process(spool_id)))
        time.sleep(0.3)  # the spool id waits in the child's pipe
        # When it is killed before it ever read the job
        os.kill(idle, signal.SIGKILL)
        job.join(timeout=60)
    finally:
        pool.close()
    # Then another child processed it, and the one attempt counted is the one that did.
    _processed_once_elsewhere(gateway, answers, spool_id, not_by=idle)


def _in_a_thread(job: Callable[[], None]) -> threading.Thread:
    thread = threading.Thread(target=job)
    thread.start()
    return thread


def _processed_once_elsewhere(gateway: Gateway, answers: list[JobResult], spool_id: int, *,
                              not_by: int) -> None:
    """The job's one answer: processed by a child other than ``not_by``, one attempt."""
    [answer] = answers
    assert answer.outcome.state == "processed" and answer.pid != not_by
    with gateway.db.reading() as session:
        entry = session.get(SpoolEntry, spool_id)
        assert entry is not None and entry.attempts == 1


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
    assert "processing_budget_seconds (0.5 s)" in entry.reason and entry.attempts == 1
    # and the next message is processed by a fresh child.
    normal = store_message(gateway.db, make_mail(subject="After the costly one"), source="smtp")
    assert pool.process(normal.spool_id).outcome.state == "processed"


def _killed_mid_analysis(pool: ProcessingPool, spool_id: int
                         ) -> tuple[JobResult | None, BaseException | None]:
    """Process ``spool_id`` in a thread and SIGKILL the children (the OOM killer, a
    crash) while it is analysed; the job's result or error."""
    answers: list[JobResult | BaseException] = []

    def job() -> None:
        try:
            answers.append(pool.process(spool_id))
        except AnalysisCrashed as crashed:
            answers.append(crashed)

    thread = threading.Thread(target=job)
    thread.start()
    deadline = time.monotonic() + 30
    while spool_id not in pool.analysing and time.monotonic() < deadline:
        time.sleep(0.02)
    killed = _children()
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    thread.join(timeout=30)
    while any(_alive(pid) for pid in killed) and time.monotonic() < deadline:
        time.sleep(0.02)  # the idle one too: a retry must not pick it up dying
    [answer] = answers
    return (answer, None) if isinstance(answer, JobResult) else (None, answer)


def test_a_child_that_dies_mid_job_fails_the_job_and_the_row_waits_for_the_retry(
        gateway: Gateway, pool: ProcessingPool) -> None:
    # Given a message whose analysis takes a while, being processed by a child
    slow = store_message(gateway.db, crafted.many_parts(100_000), source="smtp")
    # When that child is killed (the OOM killer, a crash)
    _, failure = _killed_mid_analysis(pool, slow.spool_id)
    # Then the job fails (dramatiq retries it), nothing was recorded, the row is still
    # received with the interrupted attempt counted (by the parent, which saw it die),
    assert failure is not None and "died" in str(failure)
    entry = _state(gateway, slow.spool_id)
    assert entry.state == SpoolState.RECEIVED and entry.attempts == 1
    # and the retry, in a fresh child, processes it: two attempts made.
    assert pool.process(slow.spool_id).outcome.state == "processed"
    assert _state(gateway, slow.spool_id).attempts == 2


def test_a_message_that_keeps_killing_its_child_is_quarantined_by_the_parent(
        gateway: Gateway, pool: ProcessingPool) -> None:
    # Given a message whose processing was interrupted as often as allowed but once
    slow = store_message(gateway.db, crafted.many_parts(100_000), source="smtp")
    with gateway.db.transaction() as session:
        session.execute(update(SpoolEntry).where(SpoolEntry.id == slow.spool_id).values(
            attempts=gateway.settings.max_processing_attempts - 1))
    # When its child dies once more
    result, failure = _killed_mid_analysis(pool, slow.spool_id)
    # Then the job ends (no retry) with the message kept for inspection and replay.
    assert failure is None and result is not None
    assert result.outcome.state == "quarantined"
    assert "interrupted 3 times" in result.outcome.reason
    entry = _state(gateway, slow.spool_id)
    assert entry.state == SpoolState.QUARANTINED and entry.attempts == 3


@contextmanager
def _refusing_tickets(gateway: Gateway, subject: str) -> Iterator[None]:
    """A trigger makes the database refuse the ticket of one subject: an error of the
    database that is no outage, as a value it cannot store (a NUL on PostgreSQL in a row
    spooled before intake refused them) would be."""
    sqlite = gateway.settings.database_url.startswith("sqlite")
    install = ([f"CREATE TRIGGER refuse BEFORE INSERT ON tickets WHEN NEW.subject = '{subject}' "
                "BEGIN SELECT RAISE(ABORT, 'the database refuses this ticket'); END"] if sqlite
               else ["CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN IF NEW.subject = "
                     f"'{subject}' THEN RAISE EXCEPTION 'the database refuses this ticket'; "
                     "END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
                     "CREATE TRIGGER refuse BEFORE INSERT ON tickets FOR EACH ROW "
                     "EXECUTE FUNCTION refuse()"])
    remove = (["DROP TRIGGER refuse"] if sqlite
              else ["DROP TRIGGER refuse ON tickets", "DROP FUNCTION refuse()"])
    with gateway.db.transaction() as session:
        for statement in install:
            session.execute(text(statement))
    try:
        yield
    finally:
        with gateway.db.transaction() as session:
            for statement in remove:
                session.execute(text(statement))


def test_a_message_the_database_keeps_refusing_is_quarantined_not_retried_for_ever(
        gateway: Gateway, pool: ProcessingPool) -> None:
    # Given a message whose every attempt fails in the database (no outage: it refuses
    # what this message makes it do) and another one
    poison = store_message(gateway.db, make_mail(subject="Poison pill"), source="smtp")
    fine = store_message(gateway.db, make_mail(subject="VPN drops", sender="max@acme.example"),
                         source="smtp")
    limit = gateway.settings.max_processing_attempts
    with _refusing_tickets(gateway, "Poison pill"):
        # When its job is retried: each failed attempt is counted (before, none was, as
        # the child's transaction rolled back, and the retries never ended) …
        for attempt in range(1, limit):
            with pytest.raises(ProcessingFailed, match="refuses this ticket"):
                pool.process(poison.spool_id)
            assert _state(gateway, poison.spool_id).attempts == attempt
        # … and the last one allowed quarantines it, with the reason and its raw bytes
        result = pool.process(poison.spool_id)
        assert result.outcome.state == "quarantined"
        assert f"processing failed {limit} times" in result.outcome.reason
        assert "refuses this ticket" in result.outcome.reason
        entry = _state(gateway, poison.spool_id)
        assert entry.state == SpoolState.QUARANTINED and entry.raw
        # while the other message is processed as usual.
        assert pool.process(fine.spool_id).outcome.state == "processed"


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


def _forkserver_pid() -> int:
    """The pool's forkserver: the parent of its children."""
    [child] = _children()[:1]
    stat = Path(f"/proc/{child}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


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
