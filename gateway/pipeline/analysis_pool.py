"""Analyse messages in child processes that are stopped at the processing budget.

Why: the analysis (MIME parse, TNEF, HTML, classifiers) is the part of processing whose
cost the sender chooses.  In ``gateway serve`` the worker threads share one GIL with
SMTP intake and run one job at a time, so a message that parses for 14 s delayed every
acknowledgement behind it by 14 s, and a thread cannot be stopped.  A child process
can: the job sends the raw bytes to an idle child, waits at most
``processing_budget_seconds`` for the result, and otherwise kills the child (a fresh
one takes its place) and quarantines the message with that reason.  Meanwhile the
worker thread only waits on a pipe, holding neither the GIL nor the processing lane,
so other messages go on in the other children.

Children are forked from a ``forkserver`` that has imported the analysers once (no
fork of this threaded process).  A child whose peak memory grew past
``_RETIRE_RSS_KB`` (a message near the size limit) exits after answering, so the
memory goes back to the system.  A child that dies by itself (a crash, the OOM killer)
raises :class:`AnalysisCrashed`: the job fails and is retried, and the attempt counter
quarantines a message that keeps doing it (``max_processing_attempts``).
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
import resource
import threading
import time
from dataclasses import replace
from multiprocessing.connection import Connection
from types import MappingProxyType
from typing import Any

from gateway.config import Settings
from gateway.logs import configure_logging, current_level
from inbound.limits import Limits
from inbound.parsing.analysis import Analysis, analyze

__all__ = ["AnalysisCrashed", "AnalysisPool", "BudgetExceeded", "NotTaken", "analyze_in_thread",
           "budget_reason", "limits_of", "warm_sample"]

log = logging.getLogger(__name__)

_RETIRE_RSS_KB = 300 * 1024
"""A child that once used more than this (peak resident, KiB) is replaced after its job."""


class BudgetExceeded(Exception):
    """The analysis did not finish within the processing budget."""

    def __init__(self, budget: float, elapsed: float) -> None:
        super().__init__(budget_reason(budget, elapsed))
        self.budget = budget
        self.elapsed = elapsed


class AnalysisCrashed(Exception):
    """The child died while analysing (not a verdict on the message: the job is retried)."""


def budget_reason(budget: float, elapsed: float) -> str:
    return (f"processing budget exceeded: analysing the message took {elapsed:.1f} s, more "
            f"than processing_budget_seconds ({budget:g} s); stopped and kept for "
            "inspection and replay")


def limits_of(settings: Settings) -> Limits:
    """The per-message limits of ``inbound.limits`` from the settings."""
    return Limits(max_mime_parts=settings.max_mime_parts,
                  max_attachments=settings.max_attachments,
                  max_attachments_bytes=settings.max_attachments_size,
                  max_tnef_objects=settings.max_tnef_objects,
                  max_header_bytes=settings.max_header_size,
                  max_header_block_bytes=settings.max_header_block_size)


def analyze_in_thread(settings: Settings, raw: bytes, mail_from: str) -> Analysis:
    """No pool (``gateway ingest``, ``analysis_processes = 0``): the budget is checked after
    the analysis, which cannot be stopped in a thread."""
    started = time.monotonic()
    analysis = analyze(raw, mail_from, limits_of(settings))
    elapsed = time.monotonic() - started
    if elapsed > settings.processing_budget_seconds:
        raise BudgetExceeded(settings.processing_budget_seconds, elapsed)
    return analysis


def warm_sample() -> bytes:
    """A small reply with HTML, a quote and a signature: it runs every analyser once."""
    return (b"From: Anna <anna@example.org>\r\nTo: support@support.example\r\n"
            b"Subject: Re: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nMessage-ID: <warm@example.org>\r\n"
            b"Date: Mon, 2 Nov 2026 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nIt still fails.\r\n\r\n"
            b"On Mon, 2 Nov 2026, Support wrote:\r\n> Try again.\r\n-- \r\nAnna\r\n"
            b"--b\r\nContent-Type: text/html\r\n\r\n<p>It still fails.</p>\r\n--b--\r\n")


def _portable(analysis: Analysis) -> Analysis:
    """Picklable: the parsed headers' read-only mapping becomes a dict for the pipe."""
    return replace(analysis, parsed=replace(analysis.parsed,
                                            headers=dict(analysis.parsed.headers)))


def _restored(analysis: Analysis) -> Analysis:
    return replace(analysis, parsed=replace(analysis.parsed,
                                            headers=MappingProxyType(dict(analysis.parsed.headers))))


def _child_main(conn: Connection, limits: Limits, log_level: str) -> None:
    """A child's loop: raw bytes and envelope sender in, the analysis (or an error) out."""
    configure_logging(log_level)  # a forkserver child inherits no logging set-up
    while True:
        try:
            raw = conn.recv_bytes()
            mail_from = conn.recv()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[str, Any] = ("ok", _portable(analyze(raw, mail_from, limits)))
        except Exception as exc:  # noqa: BLE001 - analyze never raises; a bug is reported
            answer = ("error", f"{type(exc).__name__}: {exc}")
        del raw
        retire = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > _RETIRE_RSS_KB
        conn.send((answer, retire))
        if retire:
            return


class _Child:
    def __init__(self, context: Any, limits: Limits) -> None:
        parent, child = context.Pipe()
        self.process = context.Process(target=_child_main,
                                       args=(child, limits, current_level()),
                                       name="gateway-analysis", daemon=True)
        self.process.start()
        child.close()
        self.conn: Connection = parent

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class AnalysisError(Exception):
    """The analysis itself raised in the child (a bug): the message is quarantined."""


class AnalysisPool:
    """At most ``processes`` analyses at once, each in its own child, each within budget."""

    def __init__(self, settings: Settings) -> None:
        self.budget = settings.processing_budget_seconds
        self.limits = limits_of(settings)
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["gateway.pipeline.analysis_child"])
        self._slots = threading.BoundedSemaphore(settings.analysis_processes)
        self._idle: queue.LifoQueue[_Child] = queue.LifoQueue()
        self._closed = False

    def analyze(self, raw: bytes, mail_from: str) -> Analysis:
        """The analysis of ``raw``; BudgetExceeded, AnalysisCrashed or AnalysisError else."""
        with self._slots:
            for _ in range(3):
                child = self._take()
                try:
                    (status, value), retire = self._run(child, raw, mail_from)
                    break
                except NotTaken:  # killed while idle: the message never reached it
                    child.stop()
                except (EOFError, OSError) as error:
                    child.stop()
                    raise AnalysisCrashed(
                        f"the analysis process died ({type(error).__name__}, "
                        f"exit code {child.process.exitcode})") from None
            else:
                raise AnalysisCrashed("no analysis process lived to take the message")
            if retire or self._closed:
                child.stop()
            else:
                self._idle.put(child)
        if status != "ok":
            raise AnalysisError(str(value))
        assert isinstance(value, Analysis)
        return _restored(value)

    def _run(self, child: _Child, raw: bytes, mail_from: str) -> tuple[tuple[str, Any], bool]:
        """The child's answer, or :class:`NotTaken`."""
        started = time.monotonic()
        try:
            child.conn.send_bytes(raw)
            child.conn.send(mail_from)
        except OSError:
            raise NotTaken from None
        try:
            if not child.conn.poll(self.budget):
                elapsed = time.monotonic() - started
                child.stop()
                log.warning("analysis stopped after %.1f s (budget %g s)", elapsed,
                            self.budget)
                raise BudgetExceeded(self.budget, elapsed)
            return child.conn.recv()  # type: ignore[no-any-return]
        except ConnectionResetError:
            raise NotTaken from None

    def _take(self) -> _Child:
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                return _Child(self._context, self.limits)
            if child.process.is_alive():
                return child
            child.stop()

    def warm(self) -> None:
        """Start one child now (the forkserver's imports), not during the first message."""
        self._idle.put(self._take())

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return


class NotTaken(Exception):
    """A child died before it read its job (killed while idle): the job never reached
    it, so another child takes it and no attempt is counted.  How the parent knows: the
    pipe is a Unix socket pair; writing to a dead child fails, and a socket closed with
    data unread makes its peer's read fail with ECONNRESET, where a child that read the
    job and died leaves an end of file."""
