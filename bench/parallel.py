"""Processing on every core: a stored backlog processed by the worker's processing pool.

Stores N messages (the end-to-end messages of ``bench/intake.py``: 5 KB, each from its
own customer, so each opens a ticket and gets an acknowledgement in a maildir), then
processes them all the way a running worker does, once per configuration:

- ``thread``: ``process_spool_entry`` in the worker thread, one at a time (the old
  embedded lane; analysis in the analysis pool's child), maildir delivery inline;
- ``pool N``: :class:`gateway.runtime.processing_pool.ProcessingPool` with N children fed
  by N threads (what ``process_message`` does in ``serve`` and ``gateway worker``).

For each it prints msgs/s (wall clock, first job to last acknowledgement), the cores
the whole machine used meanwhile and how many of them were this benchmark's processes
(this process and the pool's children), so a busy shared machine shows up in the
figures.  ``--postgres URL`` runs against PostgreSQL instead of SQLite (the database
is emptied first).

    .venv/bin/python bench/parallel.py                        # 1000 messages, thread, pool 1..3
    .venv/bin/python bench/parallel.py --pools 3 --count 2000 --skip-thread
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from intake import DIRECTORY_FILE, e2e_message, e2e_sender  # noqa: E402

from gateway.config import Settings  # noqa: E402
from gateway.directory import load_directory_file  # noqa: E402
from gateway.runtime.app import Gateway  # noqa: E402
from gateway.runtime.processing_pool import available_cores  # noqa: E402
from inbound.spool import SpoolWriter  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every process of the machine used since boot (user+nice+system+irq)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / TICKS


def tree_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by these processes (those gone count 0)."""
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(stat[11]) + int(stat[12])) / TICKS
    return total


def postgres_pids() -> list[int]:
    """The PostgreSQL server's processes on this machine (its CPU is the database's share)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _settings(work: Path, postgres: str | None, **extra: object) -> Settings:
    return Settings(database_url=postgres or f"sqlite:///{work / 'var' / 'gateway.db'}",
                    outbound_url=f"maildir:{work / 'sent'}", var_dir=work / "var",
                    secret_key="x" * 64, ack_limit_per_hour=1_000_000,
                    ack_limit_per_domain_per_hour=1_000_000, **extra)  # type: ignore[arg-type]


def _empty_postgres(gateway: Gateway) -> None:
    from sqlalchemy import text

    with gateway.db.engine.begin() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))


def _store(gateway: Gateway, count: int, run: str) -> list[int]:
    gateway.db.upgrade()
    with gateway.db.transaction() as session:
        load_directory_file(session, DIRECTORY_FILE)
    writer = SpoolWriter(gateway.db)
    futures = [writer.submit(e2e_message(i, run, e2e_sender(i), 5120)[1], source="smtp",
                             mail_from="bench@client.example",
                             rcpt_tos=["support@support.example"], peer="127.0.0.1")
               for i in range(count)]
    ids = [future.result().spool_id for future in futures]
    writer.close()
    return ids


def _drain(ids: list[int], threads: int, job: Callable[[int], None]) -> None:
    pending = list(reversed(ids))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                spool_id = pending.pop()
            job(spool_id)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def run(label: str, count: int, postgres: str | None, processes: int, nice: int) -> str:
    with tempfile.TemporaryDirectory(prefix="gw-par-", dir=ROOT / "bench") as tmp:
        work = Path(tmp)
        settings = _settings(work, postgres, processing_processes=processes,
                             analysis_processes=1, processing_nice=nice)
        gateway = Gateway(settings)
        if postgres:
            _empty_postgres(gateway)
        ids = _store(gateway, count, label.replace(" ", ""))
        gateway.start_worker(threads=1)  # builds the pools; its own threads stay idle

        lane: list[float] = []
        lane_wall: list[float] = []

        def process(spool_id: int) -> None:
            if pool is None:
                gateway.actors.process(spool_id)  # the actor called directly runs in-line
                return
            result = pool.process(spool_id)  # what process_message does, keeping the figures
            lane.append(result.cpu_in_lane)
            lane_wall.append(result.wall_in_lane)
            for outbox_id in result.undelivered:
                gateway.enqueue_delivery(outbox_id)
        pool = gateway.processing_pool
        time.sleep(3.0 if pool else 0.5)  # children warm up
        pids = [os.getpid()] + ([c.process.pid for c in list(pool._idle.queue)]  # noqa: SLF001
                                if pool else [])
        own_before, busy_before = tree_seconds(pids), machine_busy_seconds()
        db_before = tree_seconds(postgres_pids()) if postgres else 0.0
        started = time.perf_counter()
        _drain(ids, max(1, processes), process)
        sent_folder = work / "sent" / "new"
        deadline = time.monotonic() + 10  # until the last acknowledgement is in the maildir
        while len(list(sent_folder.iterdir())) < count and time.monotonic() < deadline:
            time.sleep(0.002)
        wall = time.perf_counter() - started
        own = tree_seconds(pids) - own_before
        db = (tree_seconds(postgres_pids()) - db_before) if postgres else 0.0  # new backends too
        busy = machine_busy_seconds() - busy_before
        sent = len(list(sent_folder.iterdir()))
        gateway.close()
    in_lane = (f"   in the lane {sum(lane) / len(lane) * 1000:5.1f} ms/msg (at most "
               f"{len(lane) / sum(lane):4.0f} msgs/s), lane held "
               f"{sum(lane_wall) / wall * 100:3.0f} % of the time"
               if lane and sum(lane) else "")
    return (f"  {label:10} {count:5} msgs {wall:6.1f} s {count / wall:7.1f} msgs/s   "
            f"acks {sent:5}   cores: ours {own / wall:4.2f}, "
            + (f"PostgreSQL {db / wall:4.2f}, " if postgres else "")
            + f"machine {busy / wall:4.2f}   "
            f"CPU {own / count * 1000:5.1f} ms/msg{in_lane}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--pools", default="1,2,3", help="pool sizes to run (comma-separated)")
    parser.add_argument("--skip-thread", action="store_true")
    parser.add_argument("--postgres", help="a PostgreSQL URL to use (emptied first)")
    parser.add_argument("--nice", type=int, default=10, help="processing_nice (default 10)")
    args = parser.parse_args()
    print(f"bench/parallel.py: {args.count} new requests of 5 KB, "
          f"{'PostgreSQL' if args.postgres else 'SQLite'}, {available_cores()} cores; "
          f"load average before: {os.getloadavg()[0]:.2f}")
    if not args.skip_thread:
        print(run("thread", args.count, args.postgres, 0, args.nice), flush=True)
    for size in (int(v) for v in args.pools.split(",") if v.strip()):
        print(run(f"pool {size}", args.count, args.postgres, size, args.nice), flush=True)


if __name__ == "__main__":
    main()
