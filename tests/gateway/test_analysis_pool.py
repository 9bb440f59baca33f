"""Analysis in child processes (``processing_processes = 0``: processing in the worker's
threads, each message's analysis in a child stopped at the budget): a child that dies
before it read a message does not fail that message."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from gateway.config import Settings
from gateway.pipeline.analysis_pool import AnalysisPool
from inbound.parsing.analysis import Analysis
from tests.mail import make_mail


@pytest.fixture
def pool(settings_factory: Callable[..., Settings]) -> Iterator[AnalysisPool]:
    analysis = AnalysisPool(settings_factory(processing_processes=0, analysis_processes=1))
    analysis.warm()
    yield analysis
    analysis.close()


def _idle_pid(pool: AnalysisPool) -> int:
    [child] = list(pool._idle.queue)  # noqa: SLF001 - which process to kill
    return int(child.process.pid)


def test_a_child_killed_with_the_message_unread_leaves_it_to_another(
        pool: AnalysisPool) -> None:
    # Given an idle child that cannot run (stopped) when a message is handed to it
    raw = make_mail(sender="anna@acme.example", subject="Printer offline")
    idle = _idle_pid(pool)
    os.kill(idle, signal.SIGSTOP)
    answers: list[Analysis] = []
    job = threading.Thread(target=lambda: answers.append(pool.analyze(raw, "anna@acme.example")))
    job.start()
    time.sleep(0.3)  # the message waits in the child's pipe
    # When it is killed before it read the message
    os.kill(idle, signal.SIGKILL)
    job.join(timeout=60)
    # Then another child analysed it.
    [analysis] = answers
    assert analysis.parsed.subject == "Printer offline" and _idle_pid(pool) != idle

