"""Throughput end to end, in one run on one machine (issue 18), beside django-helpdesk.

    .venv/bin/python bench/throughput.py                 # everything (~10-15 min when idle)
    .venv/bin/python bench/throughput.py --quick         # a smoke run of every part
    .venv/bin/python bench/throughput.py --only corpus --modes embedded   # one part, one mode

Parts (``--only``; default all):

- ``corpus``: the 1,000-message corpus of ``bench/make_corpus.py`` (seed 42) over SMTP,
  20 clients, until every spool row is processed and every outbox row settled; per mode
  msgs/s, replies on their parent's ticket (the generator's manifest says which), tickets
  against conversations, cores busy, CPU ms per message of each process role, p99 of send
  start -> acknowledgement in the maildir;
- ``helpdesk``: django-helpdesk (``pip install django-helpdesk`` into ``bench/.venvs/``,
  SQLite, one queue reading a local folder) on the same files: ``django-admin get_email``
  over the folder, and once fed in sending order (one message at a time); tickets,
  follow-ups, replies on their parent's ticket; the ratio gateway/django-helpdesk;
- ``burst``: 2,000 new requests (each from its own customer) until every acknowledgement
  is in the maildir;
- ``overload``: an open-loop offer above capacity (400/s for 20 s): acknowledgements/s
  against the burst's rate, cores busy, SMTP answer latency;
- ``stages``: CPU ms per message by stage (intake, analysis, pipeline, delivery), the
  corpus run in this process through the gateway's own functions, one thread.

Modes (``--modes``): ``embedded`` (SQLite, ``gateway serve``), ``scaleout`` (PostgreSQL +
Redis, ``serve --no-worker`` with 1 and then 2 ``gateway worker`` processes; admin URLs
``--postgres``/``--redis``). Output: the table (also ``bench/out/throughput.txt``) and raw
figures (``bench/out/throughput.json``). Every process started here is stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))  # this checkout's gateway, here as in the processes it starts

from intake import (  # noqa: E402 - bench/ is this script's folder
    CLK_TCK,
    AckWatcher,
    BenchError,
    SmtpClient,
    code_fingerprint,
    e2e_message,
    log,
    percentile,
    system_busy_seconds,
)
from make_corpus import generate  # noqa: E402
from sqlalchemy import create_engine, make_url, text  # noqa: E402

from gateway.db import Database, normalise_url  # noqa: E402

SUPPORT = "support@support.example"
OUT = ROOT / "bench" / "out"
HELPDESK_VENV = ROOT / "bench" / ".venvs" / "helpdesk"
HELPDESK_DIR = ROOT / "bench" / "helpdesk"
PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_DEFAULT = "redis://127.0.0.1:6379/0"
Mail = tuple[str, str, bytes]  # envelope sender, Message-ID (no brackets), bytes


# -- processes ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live descendants."""
    total = 0.0
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        total = sum(int(v) for v in fields[11:15]) / CLK_TCK  # utime stime cutime cstime
        children = []
        for task in os.scandir(f"/proc/{pid}/task"):  # a child belongs to the thread that forked it
            with open(f"{task.path}/children") as handle:
                children += [int(c) for c in handle.read().split()]
    except (FileNotFoundError, ProcessLookupError):
        return total
    return total + sum(tree_cpu(child) for child in children)


def children_cpu(pid: int) -> float:
    return tree_cpu(pid) - own_cpu(pid)


def own_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


@dataclass
class Database_:
    """The database of one gateway: a SQLite file or a fresh PostgreSQL database."""

    url: str
    drop: Callable[[], None] = lambda: None

    @classmethod
    def make(cls, mode: str, work: Path, admin_url: str) -> Database_:
        if mode == "embedded":
            return cls(f"sqlite:///{work / 'gateway.sqlite3'}")
        admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
        name = f"gw_tp_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))

        def drop() -> None:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        url = make_url(normalise_url(admin_url)).set(database=name)
        return cls(url.render_as_string(hide_password=False), drop)

    def states(self) -> tuple[dict[str, int], dict[str, int]]:
        """Spool states and outbox statuses, counted."""
        engine = create_engine(normalise_url(self.url))
        try:
            with engine.connect() as connection:
                spool = connection.execute(text(
                    "SELECT state, count(*) FROM spool GROUP BY state")).all()
                outbox = connection.execute(text(
                    "SELECT status, count(*) FROM outbox GROUP BY status")).all()
        finally:
            engine.dispose()
        return ({str(k).lower(): int(v) for k, v in spool},
                {str(k).lower(): int(v) for k, v in outbox})

    def placement(self) -> tuple[dict[str, int], int]:
        """Message-ID -> ticket number of every stored message; live tickets."""
        engine = create_engine(normalise_url(self.url))
        try:
            with engine.connect() as connection:
                rows = connection.execute(text(
                    "SELECT message_id, ticket_number FROM messages")).all()
                live = connection.execute(text(
                    "SELECT count(*) FROM tickets WHERE merged_into IS NULL")).scalar_one()
        finally:
            engine.dispose()
        return {str(m).strip("<>"): int(t) for m, t in rows if m}, int(live)


class Cluster:
    """``gateway serve`` (embedded), or ``serve --no-worker`` + N ``gateway worker``."""

    def __init__(self, args: argparse.Namespace, mode: str, workers: int, work: Path,
                 directory: Path | None) -> None:
        self.mode, self.workers, self.work = mode, workers, work
        self.label = "embedded" if mode == "embedded" else f"scale-out, {workers} worker" + (
            "s" if workers > 1 else "")
        self.db = Database_.make(mode, work, args.postgres)
        self.port = free_port()
        self.maildir = work / "sent"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.env.update({
            "GATEWAY_DATABASE_URL": self.db.url, "GATEWAY_SECRET_KEY": "bench-" + "x" * 40,
            "GATEWAY_SMTP_LISTEN": f"127.0.0.1:{self.port}",
            "GATEWAY_WEB_LISTEN": f"127.0.0.1:{free_port()}",
            "GATEWAY_VAR_DIR": str(work / "var"), "GATEWAY_OUTBOUND_URL": f"maildir:{self.maildir}",
            "GATEWAY_LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT),
            # Every customer is acknowledged: the measured load is one of many customers.
            "GATEWAY_ACK_LIMIT_PER_HOUR": "1000000",
            "GATEWAY_ACK_LIMIT_PER_DOMAIN_PER_HOUR": "1000000",
            # All clients come from 127.0.0.1, standing in for many MTAs (the limit is 20).
            "GATEWAY_SMTP_MAX_CONNECTIONS_PER_IP": "200",
        })
        self.env.update(dict(setting.split("=", 1) for setting in args.env))
        if mode == "scaleout":
            self.env.update({"GATEWAY_BROKER_URL": args.redis,
                             "GATEWAY_BROKER_NAMESPACE": f"tp-{uuid.uuid4().hex[:8]}"})
        self.directory = directory
        self.serve: subprocess.Popen[bytes] | None = None
        self.worker_procs: list[subprocess.Popen[bytes]] = []
        self.log_path = work / "gateway.log"

    def gateway(self, *arguments: str) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as log_file:
            return subprocess.Popen([sys.executable, "-m", "gateway", *arguments], env=self.env,
                                    cwd=self.work, stdout=log_file, stderr=subprocess.STDOUT)

    def start(self) -> None:
        Database(self.db.url).upgrade()
        if self.directory is not None:
            subprocess.run([sys.executable, "-m", "gateway", "directory", "load",
                            str(self.directory)], env=self.env, cwd=self.work, check=True,
                           capture_output=True, timeout=300)
        for _ in range(self.workers if self.mode == "scaleout" else 0):
            self.worker_procs.append(self.gateway("worker"))
        self.serve = self.gateway("serve", *(["--no-worker"] if self.mode == "scaleout" else []))
        deadline = time.monotonic() + 90
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.serve.poll() is not None:
                    raise BenchError(f"gateway serve did not start; see {self.log_path}") \
                        from None
                time.sleep(0.2)

    def stop(self) -> None:
        for proc in [*([self.serve] if self.serve else []), *self.worker_procs]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*([self.serve] if self.serve else []), *self.worker_procs]:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.db.drop()

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far by role: intake side (serve), analysis children, workers."""
        assert self.serve is not None
        serve = self.serve.pid
        roles = {"serve": own_cpu(serve), "analysis": children_cpu(serve)}
        roles["workers"] = sum(own_cpu(p.pid) for p in self.worker_procs)
        roles["analysis"] += sum(children_cpu(p.pid) for p in self.worker_procs)
        return roles

    def settled(self, expected: int) -> bool:
        spool, outbox = self.db.states()
        return (sum(spool.values()) >= expected and not spool.get("received")
                and not outbox.get("pending") and not outbox.get("sending"))


@contextmanager
def running(cluster: Cluster) -> Iterator[Cluster]:
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


# -- sending --------------------------------------------------------------------------
async def send_closed_loop(port: int, mails: list[Mail], clients: int,
                           started: dict[str, float]) -> None:
    """Each client sends the next message as soon as its last one was answered."""
    queue: asyncio.Queue[Mail] = asyncio.Queue()
    for mail in mails:
        queue.put_nowait(mail)

    async def client() -> None:
        session = await SmtpClient.connect(port)
        while not queue.empty():
            mail_from, message_id, raw = queue.get_nowait()
            started[message_id] = time.time()
            await session.send(mail_from, SUPPORT, raw)
        await session.close()
    await asyncio.gather(*(client() for _ in range(clients)))


@dataclass
class OpenLoop:
    smtp_ms: list[float] = field(default_factory=list)
    lag_ms: list[float] = field(default_factory=list)
    started: dict[str, float] = field(default_factory=dict)
    window: float = 0.0


async def send_open_loop(port: int, mails: list[Mail], rate: float, clients: int) -> OpenLoop:
    """Message i is due at i/rate, whether or not the server keeps up (a free connection
    permitting): the lag says how far behind the schedule sending fell."""
    result = OpenLoop()
    pool: asyncio.Queue[SmtpClient] = asyncio.Queue()
    for _ in range(clients):
        pool.put_nowait(await SmtpClient.connect(port))

    async def one(mail: Mail, due: float) -> None:
        session = await pool.get()
        try:
            result.lag_ms.append((time.perf_counter() - due) * 1000)
            result.started[mail[1]] = time.time()
            began = time.perf_counter()
            await session.send(mail[0], SUPPORT, mail[2])
            result.smtp_ms.append((time.perf_counter() - began) * 1000)
        finally:
            pool.put_nowait(session)
    origin = time.perf_counter() + 0.1
    tasks = []
    for index, mail in enumerate(mails):
        due = origin + index / rate
        if due > time.perf_counter():
            await asyncio.sleep(due - time.perf_counter())
        tasks.append(asyncio.create_task(one(mail, due)))
    await asyncio.gather(*tasks)
    result.window = time.perf_counter() - origin
    while not pool.empty():
        await pool.get_nowait().close()
    return result


def new_requests(count: int, run: str) -> list[Mail]:
    """New requests, 5 KB, each from its own customer (each opens a ticket, gets an ack)."""
    mails = []
    for index in range(count):
        sender = f"customer{index}.{run}@unknown-customer.example"
        message_id, raw = e2e_message(index, run, sender, 5 * 1024)
        mails.append((sender, message_id, raw))
    return mails


# -- measurements ---------------------------------------------------------------------
@dataclass
class Run:
    """One workload on one cluster."""

    workload: str
    setup: str
    messages: int
    seconds: float
    rate: float
    acks: int
    ack_p50_s: float
    ack_p99_s: float
    cores_busy: float
    other_cores: float
    cpu_ms: dict[str, float]
    extra: dict[str, Any] = field(default_factory=dict)


class Meter:
    """CPU of the cluster and of the machine between start() and stop()."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.cpu0 = cluster.cpu()
        self.busy0, self.own0, self.t0 = system_busy_seconds(), time.process_time(), time.time()

    def stop(self, messages: int, until: float) -> tuple[float, float, dict[str, float]]:
        cpu = {k: v - self.cpu0[k] for k, v in self.cluster.cpu().items()}
        wall = max(1e-9, until - self.t0)
        gateway = sum(cpu.values())
        others = (system_busy_seconds() - self.busy0 - gateway
                  - (time.process_time() - self.own0))
        per_msg = {k: v / messages * 1000 for k, v in cpu.items() if v > 0}
        per_msg["total"] = gateway / messages * 1000
        return gateway / wall, max(0.0, others) / wall, per_msg


def wait_settled(cluster: Cluster, expected: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not cluster.settled(expected):
        if time.monotonic() > deadline:
            raise BenchError(f"{cluster.label}: not settled after {timeout:.0f} s: "
                             f"{cluster.db.states()}; log {cluster.log_path}")
        time.sleep(0.1)
    return time.time()


def ack_latencies(watcher: AckWatcher, started: dict[str, float]) -> list[float]:
    watcher.scan()
    return [watcher.landed[mid] - t for mid, t in started.items() if mid in watcher.landed]


def corpus_run(args: argparse.Namespace, cluster: Cluster, mails: list[Mail],
               manifest: list[dict[str, Any]]) -> Run:
    started: dict[str, float] = {}
    meter = Meter(cluster)
    asyncio.run(send_closed_loop(cluster.port, mails, args.clients, started))
    spooled = time.time() - meter.t0
    done = wait_settled(cluster, len(mails), args.drain)
    cores, others, cpu_ms = meter.stop(len(mails), done)
    latencies = ack_latencies(AckWatcher(cluster.maildir / "new"), started)
    placed, tickets = cluster.db.placement()
    replies = [m for m in manifest if m["parent"]]
    by_index = {m["index"]: m for m in manifest}
    on_parent = sum(1 for m in replies if placed.get(m["message_id"].strip("<>")) is not None
                    and placed.get(m["message_id"].strip("<>")) == placed.get(
                        by_index[m["parent"]]["message_id"].strip("<>")))
    seconds = done - meter.t0
    return Run("corpus", cluster.label, len(mails), seconds, len(mails) / seconds,
               len(latencies), percentile(latencies, 50) if latencies else float("inf"),
               percentile(latencies, 99) if latencies else float("inf"), cores, others, cpu_ms,
               {"spooled_s": spooled, "on_parent": on_parent, "replies": len(replies),
                "tickets": tickets,
                "conversations": sum(1 for m in manifest if m["expects_ticket"]),
                "states": cluster.db.states()})


def burst_run(args: argparse.Namespace, cluster: Cluster) -> Run:
    mails = new_requests(args.burst, uuid.uuid4().hex[:6])
    started: dict[str, float] = {}
    watcher = AckWatcher(cluster.maildir / "new")
    meter = Meter(cluster)
    asyncio.run(send_closed_loop(cluster.port, mails, args.clients, started))
    spooled = time.time() - meter.t0
    deadline = time.monotonic() + args.drain
    while len(ack_latencies(watcher, started)) < len(mails) and time.monotonic() < deadline:
        time.sleep(0.1)
    latencies = ack_latencies(watcher, started)
    last = max((watcher.landed[m] for m in started if m in watcher.landed), default=time.time())
    cores, others, cpu_ms = meter.stop(len(mails), last)
    seconds = last - meter.t0
    return Run("burst", cluster.label, len(mails), seconds, len(latencies) / seconds,
               len(latencies), percentile(latencies, 50), percentile(latencies, 99), cores,
               others, cpu_ms, {"spooled_s": spooled})


def overload_run(args: argparse.Namespace, cluster: Cluster) -> Run:
    count = int(args.overload_rate * args.overload_seconds)
    mails = new_requests(count, uuid.uuid4().hex[:6])
    watcher = AckWatcher(cluster.maildir / "new")
    meter = Meter(cluster)
    sent = asyncio.run(send_open_loop(cluster.port, mails, args.overload_rate, args.clients))
    end_of_offer = time.time()
    acked_in_offer = len(ack_latencies(watcher, sent.started))
    cores, others, cpu_ms = meter.stop(count, end_of_offer)
    deadline = time.monotonic() + args.drain
    while len(ack_latencies(watcher, sent.started)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    latencies = ack_latencies(watcher, sent.started)
    last = max((watcher.landed[m] for m in sent.started if m in watcher.landed),
               default=time.time())
    window = end_of_offer - meter.t0
    return Run("overload", cluster.label, count, window, acked_in_offer / window, len(latencies),
               percentile(latencies, 50), percentile(latencies, 99), cores, others, cpu_ms,
               {"offered_per_s": args.overload_rate, "sent_per_s": count / sent.window,
                "smtp_p99_ms": percentile(sent.smtp_ms, 99),
                "smtp_max_ms": max(sent.smtp_ms), "lag_max_ms": max(sent.lag_ms),
                "drained_s": last - meter.t0, "acks_total_per_s": len(latencies) / max(
                    1e-9, last - meter.t0)})


# -- django-helpdesk ------------------------------------------------------------------
def helpdesk_python() -> Path:
    """The benchmark's venv with django-helpdesk, made on first use (git-ignored)."""
    python = HELPDESK_VENV / "bin" / "python"
    if not python.exists():
        log(f"installing django-helpdesk into {HELPDESK_VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(HELPDESK_VENV)], check=True)
        subprocess.run([str(HELPDESK_VENV / "bin" / "pip"), "install", "-q", "django-helpdesk"],
                       check=True)
    return python


def helpdesk_runs(corpus: Path, manifest: list[dict[str, Any]], work: Path) -> list[Run]:
    python = helpdesk_python()
    runs = []
    for order in ("folder", "sending order"):
        home = work / f"helpdesk-{order.replace(' ', '-')}"
        home.mkdir()
        env = {**os.environ, "HELPDESK_BENCH_DIR": str(home), "PYTHONPATH": str(HELPDESK_DIR),
               "DJANGO_SETTINGS_MODULE": "settings"}
        script = str(HELPDESK_DIR / "run.py")
        subprocess.run([str(python), script, "setup"], env=env, check=True)
        busy0, t0 = system_busy_seconds(), time.perf_counter()
        if order == "folder":
            for entry in manifest:
                shutil.copyfile(corpus / "eml" / entry["file"], home / "inbox" / entry["file"])
            t0 = time.perf_counter()
            busy0 = system_busy_seconds()
            cpu0 = children_rusage()
            subprocess.run([str(python), script, "folder"], env=env, check=True,
                           capture_output=True)
        else:
            cpu0 = children_rusage()
            subprocess.run([str(python), script, "ordered", str(corpus / "manifest.json"),
                            str(corpus / "eml")], env=env, check=True, capture_output=True)
        seconds = time.perf_counter() - t0
        cpu = children_rusage() - cpu0
        counted = json.loads(subprocess.run(
            [str(python), script, "count", str(corpus / "manifest.json")], env=env, check=True,
            capture_output=True).stdout)
        others = max(0.0, system_busy_seconds() - busy0 - cpu) / seconds
        # Only what it consumed counts (a file it cannot make a ticket of stays in the folder;
        # run.py's docstring says how its undecodable files are read).
        done = max(1, len(manifest) - counted["left_in_inbox"] - counted.get("failed", 0))
        runs.append(Run("helpdesk", f"django-helpdesk get_email, {order}", done,
                        seconds, done / seconds, counted["mails_sent"], 0.0, 0.0,
                        cpu / seconds, others, {"total": cpu / done * 1000}, counted))
        log(f"django-helpdesk ({order}): {done / seconds:.1f} msgs/s, {counted}")
    return runs


def children_rusage() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- CPU by stage ---------------------------------------------------------------------
def stage_cpu(corpus: Path, mails: list[Mail]) -> dict[str, float]:
    """CPU ms per message of each stage: the corpus through the gateway's own functions in
    this process and thread (intake's group commit, the analysis, the pipeline's
    transaction, delivery to a maildir); the analysis is timed where processing calls it."""
    import gateway.pipeline.processing as processing
    from gateway.config import Settings
    from gateway.directory import load_directory_file
    from gateway.pipeline.analysis_pool import analyze_in_thread
    from gateway.runtime.app import Gateway
    from inbound.spool import SpoolWriter
    from outbound.delivery import deliver_outbox_item

    logging.getLogger("mailparser").setLevel(logging.ERROR)  # as the CLI does
    with tempfile.TemporaryDirectory(prefix="gw-tp-stages-") as tmp:
        work = Path(tmp)
        settings = Settings(database_url=f"sqlite:///{work / 'gateway.sqlite3'}",
                            outbound_url=f"maildir:{work / 'sent'}", var_dir=work / "var",
                            secret_key="x" * 64, ack_limit_per_hour=1_000_000,
                            ack_limit_per_domain_per_hour=1_000_000, analysis_processes=0)
        gateway = Gateway(settings)
        gateway.db.upgrade()
        with gateway.db.transaction() as session:
            load_directory_file(session, corpus / "directory.toml")
        spent = {"intake": 0.0, "analysis": 0.0, "pipeline": 0.0, "delivery": 0.0}
        writer = SpoolWriter(gateway.db)
        began = time.process_time()
        futures = [writer.submit(raw, source="smtp", mail_from=sender, rcpt_tos=[SUPPORT],
                                 peer="127.0.0.1") for sender, _mid, raw in mails]
        ids = [future.result().spool_id for future in futures]
        spent["intake"] = time.process_time() - began
        writer.close()
        original = analyze_in_thread

        def timed(*arguments: Any) -> Any:
            start = time.thread_time()
            try:
                return original(*arguments)
            finally:
                spent["analysis"] += time.thread_time() - start
        vars(processing)["analyze_in_thread"] = timed  # where processing looks it up
        try:
            for spool_id in ids:
                start = time.thread_time()
                outcome = processing.process_spool_entry(gateway.db, gateway.services, spool_id)
                middle = time.thread_time()
                spent["pipeline"] += middle - start
                for outbox_id in outcome.outbox_ids:
                    deliver_outbox_item(gateway.db, gateway.transport, settings, outbox_id)
                spent["delivery"] += time.thread_time() - middle
        finally:
            vars(processing)["analyze_in_thread"] = original
            gateway.close()
    spent["pipeline"] -= spent["analysis"]
    return {stage: seconds / len(mails) * 1000 for stage, seconds in spent.items()}


# -- report ---------------------------------------------------------------------------
def fmt_s(seconds: float) -> str:
    return "-" if seconds == float("inf") else f"{seconds:.2f}"


def report_lines(runs: list[Run], stages: dict[str, float] | None) -> list[str]:
    lines = []
    corpus = [r for r in runs if r.workload == "corpus"]
    helpdesk = [r for r in runs if r.workload == "helpdesk"]
    if corpus or helpdesk:
        lines += ["Corpus, 20 SMTP clients, until every message is processed and every "
                  "outbox row settled (django-helpdesk: msgs = files it consumed)",
                  f"  {'setup':<40}{'msgs':>5}{'s':>7}{'msgs/s':>8}{'threaded':>10}"
                  f"{'tickets':>12}{'acks':>6}{'p99 ack s':>10}{'cores':>6}{'other':>6}"
                  "  CPU ms/msg by process"]
        for r in corpus + helpdesk:
            x = r.extra
            threaded = f"{x['on_parent']}/{x['replies']}"
            tickets = (f"{x['tickets']}/{x['conversations']}" if "conversations" in x
                       else f"{x['tickets']}+{x['followups'] - x['tickets']}f")
            cpu = " ".join(f"{k} {v:.1f}" for k, v in r.cpu_ms.items())
            left = f"  ({x['left_in_inbox']} files left unread)" if x.get("left_in_inbox") else ""
            if x.get("failed"):
                left += f"  ({x['failed']} set aside: it raised on them)"
            lines.append(f"  {r.setup:<40}{r.messages:>5}{r.seconds:>7.1f}{r.rate:>8.1f}"
                         f"{threaded:>10}{tickets:>12}{r.acks:>6}{fmt_s(r.ack_p99_s):>10}"
                         f"{r.cores_busy:>6.2f}{r.other_cores:>6.2f}  {cpu}{left}")
        complete = [r.rate for r in helpdesk if not r.extra["left_in_inbox"]]
        best_peer = max(complete, default=0.0)
        if helpdesk and not complete:
            lines.append("  no ratio: django-helpdesk left files unread in every run")
        for r in corpus:
            if best_peer:
                lines.append(f"  ratio {r.setup} / django-helpdesk (its faster complete run): "
                             f"{r.rate / best_peer:.2f}x (goal >= 5x)")
        lines.append("")
    for workload, title in (("burst", "Burst of new requests, until every acknowledgement "
                             "is in the maildir"),
                            ("overload", "Overload: open-loop offer above capacity")):
        selected = [r for r in runs if r.workload == workload]
        if not selected:
            continue
        lines += [title, f"  {'setup':<26}{'msgs':>6}{'s':>7}{'acks/s':>8}{'acks':>6}"
                  f"{'p50 s':>7}{'p99 s':>8}{'cores':>6}{'other':>6}  details"]
        for r in selected:
            details = ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                                for k, v in r.extra.items())
            lines.append(f"  {r.setup:<26}{r.messages:>6}{r.seconds:>7.1f}{r.rate:>8.1f}"
                         f"{r.acks:>6}{fmt_s(r.ack_p50_s):>7}{fmt_s(r.ack_p99_s):>8}"
                         f"{r.cores_busy:>6.2f}{r.other_cores:>6.2f}  {details}")
        lines.append("")
    lines += overload_verdicts(runs)
    if stages:
        lines += ["CPU ms per message by stage (the corpus in one thread of this process):",
                  "  " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
                  + f"; total {sum(stages.values()):.2f}", ""]
    return lines


def overload_verdicts(runs: list[Run]) -> list[str]:
    lines = []
    for r in runs:
        if r.workload != "overload":
            continue
        burst = next((b for b in runs if b.workload == "burst" and b.setup == r.setup), None)
        if burst:
            share = r.rate / burst.rate
            lines.append(f"  overload {r.setup}: acks/s while offered = {share:.0%} of the burst's"
                         f" {burst.rate:.1f}/s (goal >= 90 %); cores busy {r.cores_busy:.2f}")
    return lines + ([""] if lines else [])


# -- main -----------------------------------------------------------------------------
PARTS = ("corpus", "helpdesk", "burst", "overload", "stages")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(PARTS), help=f"parts: {','.join(PARTS)}")
    parser.add_argument("--modes", default="embedded,scaleout", help="embedded,scaleout")
    parser.add_argument("--workers", default="1,2", help="worker counts of the scale-out runs")
    parser.add_argument("--quick", action="store_true",
                        help="200 corpus messages, a 300-request burst, 100/s for 5 s")
    parser.add_argument("--n", type=int, default=1000, help="corpus messages")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--make-corpus", type=Path, default=None, metavar="SCRIPT",
                        help="another corpus generator (e.g. ../shared/bench/make_corpus.py, "
                        "the issue's); default bench/make_corpus.py")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--overload-rate", type=float, default=400.0)
    parser.add_argument("--overload-seconds", type=float, default=20.0)
    parser.add_argument("--drain", type=float, default=600.0,
                        help="seconds to wait for processing to finish")
    parser.add_argument("--postgres", default=PG_DEFAULT, help="admin URL (a fresh database "
                        "per run, dropped after)")
    parser.add_argument("--redis", default=REDIS_DEFAULT)
    parser.add_argument("--env", action="append", default=[], metavar="GATEWAY_X=VALUE",
                        help="a setting for the gateway's processes (repeatable), e.g. "
                             "GATEWAY_PROCESSING_NICE=0")
    args = parser.parse_args()
    if args.quick:
        args.n, args.burst, args.overload_rate, args.overload_seconds = 200, 300, 100.0, 5.0
    args.only = [p for p in args.only.split(",") if p]
    args.modes = [m for m in args.modes.split(",") if m]
    args.workers = [int(w) for w in args.workers.split(",") if w]
    if not set(args.only) <= set(PARTS) or not set(args.modes) <= {"embedded", "scaleout"}:
        parser.error(f"--only takes {','.join(PARTS)}; --modes takes embedded,scaleout")
    return args


def setups(args: argparse.Namespace, workload: str) -> list[tuple[str, int]]:
    """(mode, workers) to run a workload on: overload only on the largest scale-out."""
    chosen = [("embedded", 0)] if "embedded" in args.modes else []
    if "scaleout" in args.modes:
        counts = args.workers if workload != "overload" else [max(args.workers)]
        chosen += [("scaleout", n) for n in counts]
    return chosen


def measure(args: argparse.Namespace, root: Path, corpus: Path, mails: list[Mail],
            manifest: list[dict[str, Any]]) -> list[Run]:
    runs: list[Run] = []
    for workload in ("corpus", "burst", "overload"):
        if workload not in args.only:
            continue
        for mode, workers in setups(args, workload):
            work = root / f"{workload}-{mode}-{workers}"
            work.mkdir()
            cluster = Cluster(args, mode, workers, work, corpus / "directory.toml")
            with running(cluster):
                log(f"{workload}: {cluster.label}")
                if workload == "corpus":
                    run = corpus_run(args, cluster, mails, manifest)
                elif workload == "burst":
                    run = burst_run(args, cluster)
                else:
                    run = overload_run(args, cluster)
            runs.append(run)
            log(f"  {run.rate:.1f}/s, {run.acks} acks, p99 {fmt_s(run.ack_p99_s)} s, "
                f"cores {run.cores_busy:.2f} (other {run.other_cores:.2f}) {run.extra}")
    if "helpdesk" in args.only:
        runs += helpdesk_runs(corpus, manifest, root)
    return runs


def load_corpus(args: argparse.Namespace, corpus: Path) -> tuple[list[Mail],
                                                                 list[dict[str, Any]]]:
    """Ours by default; ``--make-corpus`` runs another generator with the same interface
    (``--n --seed --out``, ``eml/`` and ``manifest.json``: the issue's shared one)."""
    if args.make_corpus is None:
        generate(args.n, args.seed, corpus)
    else:
        subprocess.run([sys.executable, str(args.make_corpus), "--n", str(args.n), "--seed",
                        str(args.seed), "--out", str(corpus)], check=True, capture_output=True)
    if not (corpus / "directory.toml").exists():
        shutil.copyfile(ROOT / "examples" / "directory.toml", corpus / "directory.toml")
    manifest: list[dict[str, Any]] = json.loads((corpus / "manifest.json").read_text())
    for entry in manifest:  # a generator without our fields: every root opens a ticket
        entry.setdefault("mail_from", entry.get("sender", "bench@client.example"))
        entry.setdefault("expects_ticket", not entry["parent"])
    mails = [(m["mail_from"], m["message_id"].strip("<>"),
              (corpus / "eml" / m["file"]).read_bytes().replace(b"\r\n", b"\n")
              .replace(b"\n", b"\r\n")) for m in manifest]
    return mails, manifest


def main() -> int:
    args = parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    fingerprint, load0 = code_fingerprint(), os.getloadavg()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gw-throughput-") as tmp:
        root = Path(tmp)
        mails, manifest = load_corpus(args, root / "corpus")
        try:
            runs = measure(args, root, root / "corpus", mails, manifest)
        except BenchError as error:
            log(f"BENCHMARK FAILED: {error}")
            return 1
        stages = stage_cpu(root / "corpus", mails) if "stages" in args.only else None
    load1 = os.getloadavg()
    head = [f"Throughput (bench/throughput.py {' '.join(sys.argv[1:])})",
            f"started {started}, took {time.monotonic() - t0:.0f} s; {os.cpu_count()} CPUs, "
            f"{platform.platform()}, Python {platform.python_version()}",
            f"gateway code {fingerprint}",
            f"load average {load0[0]:.1f} before, {load1[0]:.1f} after; 'other' = cores "
            "other processes kept busy during each run; 'cores' = CPU s of the gateway's "
            "processes (children included) / wall s", ""]
    table = "\n".join(head + report_lines(runs, stages)) + "\n"
    (OUT / "throughput.txt").write_text(table)
    (OUT / "throughput.json").write_text(json.dumps(
        {"started": started, "code": fingerprint, "args": vars(args),
         "runs": [asdict(r) for r in runs], "stages": stages}, indent=2, default=str))
    print()
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
