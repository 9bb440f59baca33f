"""Intake before processing: a burst of mail holds in-process jobs back, never for long,
and a slow or idle client holds nothing back."""

from __future__ import annotations

import smtplib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.config import Settings
from gateway.runtime.server import GatewayServer
from inbound.intake_priority import IntakePriority, ProcessingFeed
from tests.mail import make_mail


@contextmanager
def _intake_running_at(priority: IntakePriority, per_second: float) -> Iterator[None]:
    """Another thread answers messages at a steady rate, like a busy event loop."""
    stop = threading.Event()

    def _take() -> None:
        while not stop.wait(1 / per_second):
            priority.taken()

    thread = threading.Thread(target=_take, daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # a full window at that rate
        yield
    finally:
        stop.set()
        thread.join()


def test_busy_is_a_rate_of_answered_messages() -> None:
    priority = IntakePriority(busy_rate=100, window=0.2)
    for _ in range(19):
        priority.taken()
    assert not priority.busy()  # 19 in the window: under 100 a second
    priority.taken()
    assert priority.busy()
    time.sleep(0.25)
    assert not priority.busy()  # the burst is over
    with _intake_running_at(priority, per_second=40):
        assert not priority.busy()  # a steady trickle is processed at once


def test_a_job_waits_while_intake_is_busy_but_at_most_max_wait() -> None:
    priority = IntakePriority(busy_rate=100, window=0.2, max_wait=0.3)
    started = time.monotonic()
    priority.wait_turn()
    priority.job_done()
    assert time.monotonic() - started < 0.05  # idle intake: no wait

    with _intake_running_at(priority, per_second=400):
        started = time.monotonic()
        priority.wait_turn()
        waited = time.monotonic() - started
        priority.job_done()
    assert 0.28 <= waited < 2.0  # busy all the time: the job still runs after max_wait


def _assert_a_second_job_waits_for_the_first(priority: IntakePriority, hold: float) -> None:
    """The calling thread runs a job; one started meanwhile in another thread waits for it."""
    priority.wait_turn()
    second_started = threading.Event()

    def _second_job() -> None:
        priority.wait_turn()
        second_started.set()
        priority.job_done()

    thread = threading.Thread(target=_second_job, daemon=True)
    thread.start()
    assert not second_started.wait(hold)  # the lane is taken
    priority.job_done()
    assert second_started.wait(3.0)
    thread.join()


def test_processing_jobs_run_one_at_a_time() -> None:
    _assert_a_second_job_waits_for_the_first(IntakePriority(), hold=0.2)


def test_without_one_at_a_time_jobs_overlap_until_intake_is_busy() -> None:
    priority = IntakePriority(busy_rate=100, window=0.2, max_wait=0.3, one_at_a_time=False)
    priority.wait_turn()
    started = time.monotonic()
    priority.wait_turn()  # a second job at once: the lane is only for busy intake
    assert time.monotonic() - started < 0.05
    priority.job_done()
    priority.job_done()
    with _intake_running_at(priority, per_second=400):  # busy: one at a time
        _assert_a_second_job_waits_for_the_first(priority, hold=0.5)


def test_the_feed_hands_over_everything_when_idle_and_one_per_max_wait_in_a_burst() -> None:
    priority = IntakePriority(busy_rate=100, window=0.2, max_wait=0.4)
    sent: list[tuple[float, int]] = []
    feed = ProcessingFeed(priority, lambda spool_id: sent.append((time.monotonic(), spool_id)))
    try:
        for spool_id in range(5):
            feed.submit(spool_id)
        deadline = time.monotonic() + 2
        while len(sent) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [spool_id for _at, spool_id in sent] == [0, 1, 2, 3, 4]

        sent.clear()
        with _intake_running_at(priority, per_second=400):
            started = time.monotonic()
            for spool_id in range(5, 10):
                feed.submit(spool_id)
            time.sleep(1.0)
            during = [spool_id for at, spool_id in sent if at - started < 1.0]
        assert 1 <= len(during) <= 3  # about one per max_wait, in order
        assert during == list(range(5, 5 + len(during)))
        deadline = time.monotonic() + 3
        while len(sent) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sorted(spool_id for _at, spool_id in sent) == list(range(5, 10))  # none lost
    finally:
        feed.close()


def _client(settings: Settings) -> smtplib.SMTP:
    host, port = settings.smtp_listen.rsplit(":", 1)
    client = smtplib.SMTP(host, int(port), timeout=30)
    client.ehlo("client.example")
    return client


def test_each_answered_message_counts_and_an_open_transaction_holds_nothing_back(
    running: GatewayServer, settings: Settings
) -> None:
    priority = running.intake_priority
    before = priority.answered()
    with _client(settings) as slow, _client(settings) as other:
        slow.mail("anna@acme.example")  # a remote MTA that sits in its transaction
        slow.rcpt("support@support.example")
        assert not priority.busy()
        for number in range(3):
            other.sendmail("anna@acme.example", ["support@support.example"],
                           make_mail(subject=f"counted {number}",
                                     message_id=f"<counted-{number}@client.example>"))
        assert priority.answered() == before + 3
        assert not priority.busy()
        slow.rset()
