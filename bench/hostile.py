"""The hostile mix: steady normal mail while crafted messages keep arriving (issue 13, item 4).

Not a timed test: it reports what a customer waits for while someone attacks the gateway.
In one run, on a fresh embedded ``gateway serve`` each:

1. **baseline**: normal requests at ``--rate`` per second for ``--seconds`` over SMTP
   (5 KB, each from its own sender: a new ticket and an acknowledgement each);
2. **hostile**: the same, plus one crafted message every ``--crafted-every`` seconds on its
   own connection, cycling through the attacks of the issue: a winmail.dat of 20,000
   files, 400,000 tiny MIME parts (18 MB), a Subject of 30,000 RFC 2047 words (folded:
   SMTP's line limit), a 17 MB attachment, and 1 MB requests from one sender who keeps
   many tickets open (the duplicate check);
3. **large**: eight messages with a 17 MB attachment, four at a time (memory).

Reported: p50/p99/max acknowledgement latency of the normal requests (send start to the
ack's landing in the maildir), acknowledgements missing, crafted messages by final state,
messages lost (accepted with 250 but neither processed, ignored nor quarantined), and
the peak resident memory of ``gateway serve`` (VmHWM) and of its process tree (the
analysis children included).  Targets: p99 < 2 s and nothing lost.

    .venv/bin/python bench/hostile.py                 # ~3 minutes
    .venv/bin/python bench/hostile.py --seconds 10    # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import smtplib
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from intake import (  # noqa: E402
    OUT,
    SUPPORT_ADDRESS,
    AckWatcher,
    BenchError,
    GatewayServe,
    SmtpClient,
    e2e_message,
    e2e_sender,
    log,
    percentile,
    running,
    stop_all,
)

from tests import crafted  # noqa: E402

ATTACKS = ("winmail-20000-files", "mime-400000-parts", "subject-30000-words",
           "attachment-17MB", "open-tickets-1MB")


def crafted_message(kind: str, index: int) -> tuple[str, bytes]:
    """(sender, raw with CRLF) of one crafted message of ``kind``."""
    message_id = f"<crafted.{uuid.uuid4().hex}@crafted.example>"
    sender = f"crafted{index}@crafted.example"
    if kind == "winmail-20000-files":
        raw = crafted.winmail(20_000, sender=sender, message_id=message_id)
    elif kind == "mime-400000-parts":
        raw = crafted.many_parts(400_000, sender=sender, message_id=message_id)
    elif kind == "subject-30000-words":
        raw = crafted.encoded_subject(30_000, sender=sender, message_id=message_id)
        raw = raw.replace(b"?= =?", b"?=\n =?")  # folded: SMTP refuses lines over 1,000
    elif kind == "attachment-17MB":
        raw = crafted.big_attachment(17_000_000, sender=sender, message_id=message_id)
    else:  # one sender with many open 1 MB tickets: the duplicate check's worst case
        sender = "hoarder@crafted.example"
        body = f"Log excerpt {index}: " + " ".join(f"line{index}-{n}" for n in range(120_000))
        raw = crafted.plain(body, sender=sender, subject=f"Log {index}", message_id=message_id)
    return sender, crafted.crlf(raw)


class TreeMemory:
    """Samples the resident memory of a process and its descendants (from /proc)."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_tree_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_tree_kb = max(self.peak_tree_kb, sum(_rss_kb(p) for p in self._tree()))

    def _tree(self) -> list[int]:
        parents: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry))
        found, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(parents.get(pid, []))
        return found


def _status_kb(pid: int, field_name: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    return 0


def _rss_kb(pid: int) -> int:
    return _status_kb(pid, "VmRSS")


@dataclass
class Phase:
    name: str
    sent: int = 0
    acked: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    crafted: dict[str, list[str]] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    serve_rss_start_mb: float = 0.0
    serve_peak_mb: float = 0.0
    tree_peak_mb: float = 0.0
    seconds: float = 0.0


async def _normal_load(server: GatewayServe, rate: float, seconds: float, connections: int,
                       watcher: AckWatcher, run: str) -> tuple[list[str], dict[str, float]]:
    pool: asyncio.Queue[SmtpClient] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await SmtpClient.connect(server.port))
    started: dict[str, float] = {}
    ids: list[str] = []

    async def one(index: int) -> None:
        sender = e2e_sender(index)
        message_id, raw = e2e_message(index, run, sender, 5120)
        client = await pool.get()
        try:
            started[message_id] = time.time()
            await client.send(sender, SUPPORT_ADDRESS, raw)
        finally:
            pool.put_nowait(client)

    origin = time.perf_counter() + 0.2
    tasks = []
    for index in range(int(rate * seconds)):
        delay = origin + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        ids.append(e2e_message(index, run, "", 10)[0])
        tasks.append(asyncio.create_task(one(index)))
        if index % 40 == 0:
            watcher.scan()
    await asyncio.gather(*tasks)
    while not pool.empty():
        await (await pool.get()).close()
    return ids, started


def _crafted_load(port: int, every: float, seconds: float, messages: list[tuple[str, str, bytes]],
                  sent: dict[str, list[str]], errors: list[str]) -> None:
    """One crafted message every ``every`` seconds, each on a fresh connection, from this
    thread (built beforehand: building 18 MB must not stall the normal load's loop)."""
    deadline = time.monotonic() + seconds
    index = 0
    while time.monotonic() < deadline:
        kind, sender, raw = messages[index % len(messages)]
        began = time.monotonic()
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
                client.sendmail(sender, [SUPPORT_ADDRESS], raw)
        except (OSError, smtplib.SMTPException) as error:
            errors.append(f"{kind}: {error}")
        else:
            sent.setdefault(kind, []).append(
                raw.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode())
        index += 1
        time.sleep(max(0.0, every - (time.monotonic() - began)))


def _spool_states(server: GatewayServe) -> dict[str, str]:
    import sqlite3
    with contextlib.closing(sqlite3.connect(server.db_path, timeout=60)) as con:
        return {mid: state for mid, state in con.execute("SELECT message_id, state FROM spool")}


def _wait_settled(server: GatewayServe, timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        states = _spool_states(server)
        if "received" not in states.values() or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


def run_phase(name: str, args: argparse.Namespace, *, hostile: bool) -> Phase:
    messages = []
    if hostile:
        log("building the crafted messages")
        count = int(args.seconds / args.crafted_every) + 1
        messages = [(ATTACKS[i % len(ATTACKS)], *crafted_message(ATTACKS[i % len(ATTACKS)], i))
                    for i in range(count)]
    server = GatewayServe(f"hostile-{name}", with_directory=True)
    phase = Phase(name)
    with running(server):
        assert server.proc is not None
        phase.serve_rss_start_mb = _rss_kb(server.proc.pid) / 1024
        watcher = AckWatcher(server.maildir_new)
        run = uuid.uuid4().hex[:8]
        started_at = time.monotonic()
        with TreeMemory(server.proc.pid) as memory:

            errors: list[str] = []
            attacker = threading.Thread(target=_crafted_load, daemon=True, args=(
                server.port, args.crafted_every, args.seconds, messages, phase.crafted, errors))
            if hostile:
                attacker.start()
            ids, started = asyncio.run(_normal_load(
                server, args.rate, args.seconds, args.connections, watcher, run))
            if hostile:
                attacker.join()
            if errors:
                raise BenchError("crafted messages refused: " + "; ".join(errors))
            deadline = time.monotonic() + args.drain
            while time.monotonic() < deadline and not all(m in watcher.landed for m in ids):
                watcher.scan()
                time.sleep(0.1)
            states = _wait_settled(server, args.drain)
            phase.serve_peak_mb = _status_kb(server.proc.pid, "VmHWM") / 1024
        phase.tree_peak_mb = memory.peak_tree_kb / 1024
        phase.seconds = time.monotonic() - started_at
        latencies = [(watcher.landed[m] - started[m]) * 1000 for m in ids if m in watcher.landed]
        latencies += [float("inf")] * (len(ids) - len(latencies))
        phase.sent, phase.acked = len(ids), sum(1 for m in ids if m in watcher.landed)
        phase.p50_ms = percentile(latencies, 50)
        phase.p99_ms = percentile(latencies, 99)
        phase.max_ms = max(latencies)
        accepted = ids + [m for mids in phase.crafted.values() for m in mids]
        for state in states.values():
            phase.states[state] = phase.states.get(state, 0) + 1
        phase.lost = sum(1 for m in accepted if states.get(m) in (None, "received"))
        phase.crafted = {kind: [states.get(m, "missing") for m in mids]
                         for kind, mids in phase.crafted.items()}
    server.cleanup(args.keep)
    return phase


def run_large(args: argparse.Namespace) -> Phase:
    """Eight messages with a 17 MB attachment, four at a time: resident memory of serve."""
    server = GatewayServe("hostile-large", with_directory=True)
    phase = Phase("large")
    with running(server):
        assert server.proc is not None
        phase.serve_rss_start_mb = _rss_kb(server.proc.pid) / 1024
        with TreeMemory(server.proc.pid) as memory:

            async def send_all() -> list[str]:
                ids = []

                async def one(index: int) -> None:
                    sender, raw = crafted_message("attachment-17MB", index)
                    client = await SmtpClient.connect(server.port)
                    await client.send(sender, SUPPORT_ADDRESS, raw)
                    await client.close()
                    ids.append(raw.split(b"Message-ID: <", 1)[1].split(b">", 1)[0].decode())

                for batch in range(2):
                    await asyncio.gather(*(one(batch * 4 + n) for n in range(4)))
                return ids

            ids = asyncio.run(send_all())
            states = _wait_settled(server, args.drain)
            phase.serve_peak_mb = _status_kb(server.proc.pid, "VmHWM") / 1024
        phase.tree_peak_mb = memory.peak_tree_kb / 1024
        phase.sent = len(ids)
        phase.lost = sum(1 for m in ids if states.get(m) in (None, "received"))
        for state in states.values():
            phase.states[state] = phase.states.get(state, 0) + 1
    server.cleanup(args.keep)
    return phase


def report(phases: list[Phase], args: argparse.Namespace) -> str:
    lines = [f"hostile mix: {args.rate:g} normal requests/s for {args.seconds:g} s; crafted "
             f"message every {args.crafted_every:g} s in the hostile run; "
             f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", "",
             f"{'run':10} {'sent':>5} {'acked':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
             f"{'lost':>5} {'serve MB start/peak':>20} {'tree peak MB':>13}"]
    for phase in phases:
        acks = (f"{phase.acked:6d} {phase.p50_ms:8.0f} {phase.p99_ms:8.0f} {phase.max_ms:8.0f}"
                if phase.name != "large" else f"{'-':>6} {'-':>8} {'-':>8} {'-':>8}")
        lines.append(
            f"{phase.name:10} {phase.sent:5d} {acks} {phase.lost:5d} "
            f"{phase.serve_rss_start_mb:9.0f} / {phase.serve_peak_mb:6.0f}   "
            f"{phase.tree_peak_mb:11.0f}")
    for phase in phases:
        if phase.crafted:
            lines.append("")
            lines.append(f"crafted messages in the {phase.name} run, final spool state:")
            for kind, states in phase.crafted.items():
                counts = {s: states.count(s) for s in sorted(set(states))}
                lines.append(f"  {kind:22} {counts}")
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--crafted-every", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--drain", type=float, default=120.0,
                        help="seconds to wait for the last acknowledgements and spool rows")
    parser.add_argument("--phases", default="baseline,hostile,large",
                        help="comma-separated subset of baseline,hostile,large")
    parser.add_argument("--keep", action="store_true", help="keep the working dirs")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    try:
        wanted = args.phases.split(",")
        phases = [run_phase(name, args, hostile=name == "hostile")
                  for name in ("baseline", "hostile") if name in wanted]
        if "large" in wanted:
            phases.append(run_large(args))
    except BenchError as error:
        log(f"error: {error}")
        return 1
    finally:
        stop_all()
    text = report(phases, args)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "hostile.txt").write_text(text + "\n")
    (OUT / "hostile.json").write_text(json.dumps([asdict(p) for p in phases], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
