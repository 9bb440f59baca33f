"""Intake and end-to-end benchmark of ``gateway serve`` (run by ``make bench``).

One run measures, on loopback and on the same machine so that the ratios compare
like with like:

1. SMTP intake throughput under the same load (Postfix's ``smtp-source``, 20
   concurrent sessions, fixed message sizes and counts) against three servers:
   Postfix's ``smtp-sink`` (the machine's SMTP ceiling), a bare aiosmtpd sink
   (``bench/bare_aiosmtpd.py``, the limit of our stack) and ``gateway serve`` in
   embedded mode (SQLite, synchronous=FULL, in-process worker running) in a fresh
   working directory.  Every message sent to the gateway is checked afterwards
   in its spool: a missing or merged row fails the run.
2. Sustained end to end: a steady rate (default 50 messages/s for 30 s) into
   ``gateway serve``; per message, the time from the client's send start until
   the acknowledgement (``In-Reply-To`` = the sent Message-ID) is in the maildir.

    .venv/bin/python bench/intake.py            # the full run, a few minutes
    .venv/bin/python bench/intake.py --quick    # a smoke run, under 2 minutes

The table is printed at the end and written to ``bench/out/results.txt``; the
raw figures go to ``bench/out/results.json`` and server logs to ``bench/out/logs/``.
Every server the script starts is stopped, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
LOGS = OUT / "logs"
PYTHON = sys.executable
SUPPORT_ADDRESS = "support@support.example"  # the gateway's default support address
LOAD_SENDER = "bench@client.example"
DIRECTORY_FILE = ROOT / "examples" / "directory.toml"
# Warm-up senders of the end-to-end run: the people of examples/directory.toml (acks in
# de, it, ja) and one stranger; the measured messages come from e2e_sender(index).
E2E_SENDERS = ("anna@acme.example", "max@acme.example", "giulia@globex.example",
               "yuki@globex.example", "someone@unknown-customer.example")
SBIN = "/usr/sbin:/usr/local/sbin:/sbin"


def e2e_sender(index: int) -> str:
    """Every end-to-end message comes from its own customer: the gateway answers at most
    ``ack_limit_per_hour`` (3) automatic mails per address per hour, and a repeated request
    of one sender is a duplicate; the directory's people would get 3 acks each."""
    return f"customer{index}@unknown-customer.example" if index >= 0 else \
        E2E_SENDERS[-1 - index % len(E2E_SENDERS)]
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A measurement could not be made or is not trustworthy: the run fails."""


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- tools ----------------------------------------------------------------------------
def postfix_tool(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path=SBIN)


def ensure_postfix_tools() -> tuple[str, str]:
    """Return the paths of smtp-source and smtp-sink, installing Debian's postfix if needed."""
    source, sink = postfix_tool("smtp-source"), postfix_tool("smtp-sink")
    if source and sink:
        return source, sink
    log("smtp-source/smtp-sink missing: installing the Debian package postfix")
    prefix: list[str] = []
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if not sudo:
            raise BenchError("smtp-source/smtp-sink are missing and we are not root: "
                             "run `apt-get install postfix` as root")
        prefix = [sudo, "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # "No configuration": the package installs its tools but neither configures nor
    # starts a Postfix daemon on port 25.
    if shutil.which("debconf-set-selections"):
        subprocess.run([*prefix, "debconf-set-selections"], env=env, check=False,
                       input=b"postfix postfix/main_mailer_type select No configuration\n")
    for command in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postfix"]):
        result = subprocess.run([*prefix, *command], env=env, check=False)
        if result.returncode != 0:
            raise BenchError(f"`{' '.join(command)}` failed with status {result.returncode}")
    source, sink = postfix_tool("smtp-source"), postfix_tool("smtp-sink")
    if not (source and sink):
        raise BenchError("postfix is installed but smtp-source/smtp-sink are still missing")
    return source, sink


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def system_busy_seconds() -> float:
    """CPU seconds all cores have spent busy since boot (from /proc/stat)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def background_cores(seconds: float = 3.0) -> float:
    """Cores kept busy by other processes right now (this script sleeps meanwhile)."""
    before, own = system_busy_seconds(), time.process_time()
    time.sleep(seconds)
    return max(0.0, system_busy_seconds() - before - (time.process_time() - own)) / seconds


def code_fingerprint() -> str:
    """A short hash of the gateway's code and templates, and its newest file: results are
    only comparable for the same code (no git involved)."""
    import hashlib

    digest, newest, newest_name = hashlib.sha256(), 0.0, ""
    files = sorted(p for top in ("gateway", "inbound", "outbound", "rules", "templates")
                   for p in (ROOT / top).rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
        if path.stat().st_mtime > newest:
            newest, newest_name = path.stat().st_mtime, str(path.relative_to(ROOT))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(newest))
    return f"{digest.hexdigest()[:12]} ({len(files)} files, newest {newest_name} {stamp})"


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- servers --------------------------------------------------------------------------
RUNNING: list[Server] = []


class Server:
    """One server process on its own free loopback port; stopped by :func:`stop_all`."""

    label = "server"

    def __init__(self, tag: str) -> None:
        self.port = free_port()
        self.tag = tag
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = LOGS / f"{tag}.log"
        self.cwd: Path | None = None
        self.env: dict[str, str] | None = None
        self.signalled = False

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Server:
        LOGS.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(self.command(), cwd=self.cwd, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=log_file,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        RUNNING.append(self)
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Return once the server greets with 220 (the gateway listens only when ready)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.label} exited with status {self.proc.returncode} "
                                 f"before listening; log {self.log_path}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=5) as sock:
                    banner = sock.recv(512)
                    if banner.startswith(b"220"):
                        sock.sendall(b"QUIT\r\n")
                        with contextlib.suppress(OSError):
                            sock.recv(512)
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.label} did not greet on port {self.port} within {timeout:.0f} s; "
                         f"log {self.log_path}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def cpu(self) -> float:
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def stopped_by_someone_else(self) -> bool:
        """True when the server died or got a signal that this script did not send (on a
        shared machine another session's clean-up may kill servers by name)."""
        if self.proc is None or self.signalled:
            return False
        if self.proc.poll() is not None:
            return True
        return "signal 15 received" in self.log_tail(200) or "signal 2 received" in \
            self.log_tail(200)

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            self.signalled = True
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                log(f"{self.label} ignored SIGTERM for 40 s: killing pid {proc.pid}")
                proc.kill()
                proc.wait(timeout=10)
        if self in RUNNING:
            RUNNING.remove(self)


class SmtpSink(Server):
    label = "smtp-sink"

    def __init__(self, tag: str, binary: str) -> None:
        super().__init__(tag)
        self.binary = binary

    def command(self) -> list[str]:
        user = ["-u", "postfix"] if os.geteuid() == 0 else []  # required when run as root
        return [self.binary, *user, f"127.0.0.1:{self.port}", "1024"]


class BareAiosmtpd(Server):
    label = "bare aiosmtpd"

    def command(self) -> list[str]:
        return [PYTHON, str(BENCH / "bare_aiosmtpd.py"), "--listen", f"127.0.0.1:{self.port}"]


class GatewayServe(Server):
    """``python -m gateway serve`` (embedded mode) in a fresh temporary working dir."""

    label = "gateway serve"

    def __init__(self, tag: str, *, with_directory: bool = False, worker: bool = True) -> None:
        super().__init__(tag)
        self.worker = worker
        if not worker:
            self.label = "gateway --no-worker"
        OUT.mkdir(parents=True, exist_ok=True)
        self.cwd = Path(tempfile.mkdtemp(prefix=f"{tag}-", dir=OUT))
        self.var = self.cwd / "var"
        self.db_path = self.var / "gateway.db"
        self.maildir_new = self.var / "sent" / "new"
        web_port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update({
            "GATEWAY_DATABASE_URL": f"sqlite:///{self.db_path}",
            "GATEWAY_SMTP_LISTEN": f"127.0.0.1:{self.port}",
            "GATEWAY_WEB_LISTEN": f"127.0.0.1:{web_port}",
            "GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{web_port}",
            "GATEWAY_OUTBOUND_URL": f"maildir:{self.var / 'sent'}",
            "GATEWAY_VAR_DIR": str(self.var),
            # The measured customers share one domain and each is acknowledged, as before
            # the per-domain cap of automatic answers existed.
            "GATEWAY_ACK_LIMIT_PER_DOMAIN_PER_HOUR": "1000000",
            "PYTHONPATH": str(ROOT),
        })
        env.update(GATEWAY_SETTINGS)  # --set NAME=VALUE
        self.env = env
        self.with_directory = with_directory

    def command(self) -> list[str]:
        return [PYTHON, "-m", "gateway", "serve", *([] if self.worker else ["--no-worker"])]

    def start(self) -> Server:
        if self.with_directory:
            result = subprocess.run([PYTHON, "-m", "gateway", "directory", "load",
                                     str(DIRECTORY_FILE)], cwd=self.cwd, env=self.env,
                                    capture_output=True, timeout=120, check=False)
            if result.returncode != 0:
                raise BenchError("gateway directory load failed: "
                                 + result.stderr.decode(errors="replace")[-2000:])
        return super().start()

    def spool(self) -> dict[str, Any]:
        """Rows, distinct Message-IDs and states of the spool, read from the SQLite file."""
        with contextlib.closing(sqlite3.connect(self.db_path, timeout=60)) as con:
            rows, distinct = con.execute(
                "SELECT count(*), count(DISTINCT message_id) FROM spool").fetchone()
            states = dict(con.execute("SELECT state, count(*) FROM spool GROUP BY state"))
            journal = con.execute("PRAGMA journal_mode").fetchone()[0]
        return {"rows": rows, "distinct_message_ids": distinct, "states": states,
                "journal_mode": journal}

    def wait_processed(self, count: int, timeout: float = 120.0) -> None:
        """Return once ``count`` spool rows have left ``received`` (processed or ignored)."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.spool()["states"]
            if sum(n for state, n in states.items() if state != "received") >= count:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"the warm-up messages were not processed in {timeout:.0f} s: "
                                 f"{states}")
            time.sleep(0.1)

    def cleanup(self, keep: bool) -> None:
        if not keep and self.cwd is not None:
            shutil.rmtree(self.cwd, ignore_errors=True)


def stop_all() -> None:
    for server in list(reversed(RUNNING)):
        try:
            server.stop()
        except Exception as error:  # noqa: BLE001 - keep stopping the others
            log(f"could not stop {server.label} (pid {server.proc and server.proc.pid}): {error}")
            if server.proc is not None and server.proc.poll() is None:
                server.proc.kill()


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- intake ---------------------------------------------------------------------------
@dataclass
class IntakeResult:
    server: str
    size: int
    mode: str
    round: int
    count: int
    seconds: float
    rate: float
    server_cpu_ms_per_msg: float
    client_cpu_ms_per_msg: float
    background_cores: float
    spool: dict[str, Any] | None = None


def smtp_source(source: str, port: int, *, count: int, size: int, sessions: int,
                reuse: bool) -> tuple[float, float]:
    """Send ``count`` messages with smtp-source; return (wall seconds, client CPU seconds)."""
    command = [source, "-c", "-s", str(sessions), "-m", str(count), "-l", str(size),
               "-f", LOAD_SENDER, "-t", SUPPORT_ADDRESS, *(["-d"] if reuse else []),
               f"127.0.0.1:{port}"]
    cpu_before = children_cpu_seconds()
    started = time.perf_counter()
    try:
        result = subprocess.run(command, capture_output=True, timeout=1800, check=False)
    except subprocess.TimeoutExpired as error:
        raise BenchError(f"smtp-source did not finish: {' '.join(command)}") from error
    seconds = time.perf_counter() - started
    client_cpu = children_cpu_seconds() - cpu_before
    counters = re.findall(rb"\d+", result.stdout)
    done = int(counters[-1]) if counters else 0
    if result.returncode != 0 or done != count:
        raise BenchError(f"smtp-source status {result.returncode}, {done} of {count} DATA "
                         f"completed: {' '.join(command)}\n"
                         f"{result.stderr.decode(errors='replace')[-2000:]}")
    return seconds, client_cpu


def measure_intake(server: Server, source: str, *, count: int, size: int, sessions: int,
                   reuse: bool, round_no: int, warmup: int) -> IntakeResult:
    if warmup:
        smtp_source(source, server.port, count=warmup, size=size, sessions=min(sessions, 4),
                    reuse=reuse)
        if isinstance(server, GatewayServe) and server.worker:
            server.wait_processed(warmup)  # steady state: the warm-up's jobs are done
    cpu_before, busy_before, own_before = server.cpu(), system_busy_seconds(), time.process_time()
    seconds, client_cpu = smtp_source(source, server.port, count=count, size=size,
                                      sessions=sessions, reuse=reuse)
    server_cpu = server.cpu() - cpu_before
    others = (system_busy_seconds() - busy_before - server_cpu - client_cpu
              - (time.process_time() - own_before))
    result = IntakeResult(server.label, size, "reuse" if reuse else "new", round_no, count,
                          seconds, count / seconds, server_cpu / count * 1000,
                          client_cpu / count * 1000, max(0.0, others) / seconds)
    if isinstance(server, GatewayServe):
        spool = server.spool()
        result.spool = spool
        expected = count + warmup
        if spool["rows"] != expected or spool["distinct_message_ids"] != expected:
            raise BenchError(f"gateway spool holds {spool['rows']} rows "
                             f"({spool['distinct_message_ids']} distinct Message-IDs) after "
                             f"{expected} accepted messages: not every message was stored")
        if spool["journal_mode"] != "wal":
            raise BenchError(f"gateway database is not in WAL mode: {spool['journal_mode']}")
    return result


# -- end to end -----------------------------------------------------------------------
class SmtpClient:
    """A minimal asyncio SMTP client: one connection, many transactions, no pipelining."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> SmtpClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client = cls(reader, writer)
        await client.expect(220)
        await client.command(b"EHLO bench.client.example", 250)
        return client

    async def expect(self, code: int) -> None:
        lines = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise BenchError(f"connection closed while waiting for {code}")
            lines.append(line.decode(errors="replace").rstrip())
            if line[3:4] != b"-":
                break
        if not line.startswith(str(code).encode()):
            raise BenchError(f"expected {code}, server said: {' / '.join(lines)}")

    async def command(self, line: bytes, code: int) -> None:
        self.writer.write(line + b"\r\n")
        await self.expect(code)

    async def send(self, mail_from: str, rcpt_to: str, raw: bytes) -> None:
        await self.command(f"MAIL FROM:<{mail_from}>".encode(), 250)
        await self.command(f"RCPT TO:<{rcpt_to}>".encode(), 250)
        await self.command(b"DATA", 354)
        data = re.sub(rb"(?m)^\.", b"..", raw)
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        self.writer.write(data + b".\r\n")
        await self.expect(250)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.command(b"QUIT", 221)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


FILLER = ("The desktop client stops syncing after the update; restarting it does not help "
          "and the log shows a timeout talking to the server.\n")


def e2e_message(index: int, run: str, sender: str, size: int) -> tuple[str, bytes]:
    message = EmailMessage(policy=SMTP_POLICY)
    message_id = f"<e2e.{run}.{index}@client.example>"
    message["From"] = sender
    message["To"] = SUPPORT_ADDRESS
    message["Subject"] = f"Sync fails on workstation {index}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id
    body = "Hello support,\n\n" + FILLER * max(1, size // len(FILLER)) + "\nThanks\n"
    message.set_content(body)
    return message_id.strip("<>"), message.as_bytes()


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return ordered[int(rank) - 1]


@dataclass
class E2EResult:
    rate: float
    seconds: float
    sent: int
    warmup: int
    acked: int
    send_window_s: float
    achieved_send_rate: float
    ack_rate: float
    smtp_p50_ms: float
    smtp_p99_ms: float
    e2e_p50_ms: float
    e2e_p95_ms: float
    e2e_p99_ms: float
    e2e_max_ms: float
    sched_p50_ms: float
    sched_p99_ms: float
    client_lag_max_ms: float
    server_cpu_share: float
    background_cores: float
    spool: dict[str, Any] = field(default_factory=dict)


class AckWatcher:
    """Finds acknowledgements in the maildir and maps In-Reply-To to the landing time."""

    def __init__(self, maildir_new: Path) -> None:
        self.maildir_new = maildir_new
        self.seen: set[str] = set()
        self.landed: dict[str, float] = {}  # Message-ID -> mtime (wall clock seconds)
        self.parser = BytesHeaderParser()

    def scan(self) -> None:
        try:
            entries = list(os.scandir(self.maildir_new))
        except FileNotFoundError:
            return
        for entry in entries:
            if entry.name in self.seen:
                continue
            self.seen.add(entry.name)
            mtime = entry.stat().st_mtime_ns / 1e9  # written in tmp/, then renamed
            with open(entry.path, "rb") as handle:
                headers = self.parser.parsebytes(handle.read(65536))
            in_reply_to = str(headers.get("In-Reply-To") or "").strip().strip("<>")
            if in_reply_to:
                self.landed.setdefault(in_reply_to, mtime)

    async def wait_for(self, message_ids: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.scan()
            if all(mid in self.landed for mid in message_ids):
                return
            await asyncio.sleep(0.05)


async def run_e2e(server: GatewayServe, *, rate: float, seconds: float, size: int,
                  connections: int, warmup: int, drain_timeout: float) -> E2EResult:
    run = uuid.uuid4().hex[:8]
    pool: asyncio.Queue[SmtpClient] = asyncio.Queue()
    clients = [await SmtpClient.connect(server.port) for _ in range(connections)]
    for client in clients:
        pool.put_nowait(client)
    watcher = AckWatcher(server.maildir_new)

    # Warm-up (not measured): templates, caches and connection pools of the gateway.
    warm_ids = []
    for index in range(warmup):
        sender = e2e_sender(-1 - index)
        message_id, raw = e2e_message(-1 - index, run, sender, size)
        warm_ids.append(message_id)
        client = await pool.get()
        await client.send(sender, SUPPORT_ADDRESS, raw)
        pool.put_nowait(client)
    await watcher.wait_for(warm_ids, 60)
    if not all(mid in watcher.landed for mid in warm_ids):
        raise BenchError("the warm-up messages were not acknowledged within 60 s; "
                         f"log {server.log_path}:\n{server.log_tail()}")

    count = int(rate * seconds)
    messages = []
    for index in range(count):
        sender = e2e_sender(index)
        messages.append((sender, *e2e_message(index, run, sender, size)))
    send_start: dict[str, float] = {}  # wall clock, comparable with file mtimes
    scheduled_at: dict[str, float] = {}  # the same, when the open-loop schedule said "send"
    smtp_ms: list[float] = []
    lags: list[float] = []

    async def one(sender: str, message_id: str, raw: bytes, scheduled: float) -> None:
        client = await pool.get()
        try:
            lag = time.perf_counter() - scheduled
            lags.append(lag)
            send_start[message_id] = time.time()
            scheduled_at[message_id] = send_start[message_id] - lag
            began = time.perf_counter()
            await client.send(sender, SUPPORT_ADDRESS, raw)
            smtp_ms.append((time.perf_counter() - began) * 1000)
        finally:
            pool.put_nowait(client)

    cpu_before, busy_before, own_before = server.cpu(), system_busy_seconds(), time.process_time()
    origin = time.perf_counter() + 0.2
    tasks = []
    for index, (sender, message_id, raw) in enumerate(messages):
        scheduled = origin + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(sender, message_id, raw, scheduled)))
        if index % 50 == 0:
            watcher.scan()  # keep the directory scan incremental while sending
    await asyncio.gather(*tasks)
    send_window = time.perf_counter() - origin
    ids = [message_id for _sender, message_id, _raw in messages]
    await watcher.wait_for(ids, drain_timeout)
    cpu_used = server.cpu() - cpu_before
    busy = system_busy_seconds() - busy_before - cpu_used - (time.process_time() - own_before)
    for client in clients:
        await client.close()

    latencies = [(watcher.landed[mid] - send_start[mid]) * 1000 for mid in ids
                 if mid in watcher.landed]
    missing = count - len(latencies)
    # A missing acknowledgement counts as infinitely late: percentiles stay honest.
    all_latencies = latencies + [float("inf")] * missing
    from_schedule = [(watcher.landed[mid] - scheduled_at[mid]) * 1000 for mid in ids
                     if mid in watcher.landed] + [float("inf")] * missing
    first_send = min(send_start.values())
    last_landing = max((watcher.landed[mid] for mid in ids if mid in watcher.landed),
                       default=first_send)
    elapsed = max(1e-9, last_landing - first_send)
    return E2EResult(
        rate=rate, seconds=seconds, sent=count, warmup=warmup, acked=len(latencies),
        send_window_s=send_window, achieved_send_rate=count / send_window,
        ack_rate=len(latencies) / elapsed,
        smtp_p50_ms=percentile(smtp_ms, 50), smtp_p99_ms=percentile(smtp_ms, 99),
        e2e_p50_ms=percentile(all_latencies, 50), e2e_p95_ms=percentile(all_latencies, 95),
        e2e_p99_ms=percentile(all_latencies, 99), e2e_max_ms=max(all_latencies),
        sched_p50_ms=percentile(from_schedule, 50), sched_p99_ms=percentile(from_schedule, 99),
        client_lag_max_ms=max(lags) * 1000,
        server_cpu_share=cpu_used / elapsed, background_cores=max(0.0, busy) / elapsed,
    )


# -- report ---------------------------------------------------------------------------
SERVER_ORDER = ("smtp-sink", "bare aiosmtpd", "gateway serve", "gateway --no-worker")
MODE_TEXT = {"new": "new connection per message (smtp-source default)",
             "reuse": "connection reused, smtp-source -d"}


def kb(size: int) -> str:
    return f"{size // 1024} KB" if size % 1024 == 0 else f"{size} B"


def summarise(results: list[IntakeResult]) -> dict[tuple[str, int, str], dict[str, Any]]:
    groups: dict[tuple[str, int, str], list[IntakeResult]] = {}
    for result in results:
        groups.setdefault((result.server, result.size, result.mode), []).append(result)
    summary = {}
    for key, group in groups.items():
        rates = [r.rate for r in group]
        summary[key] = {
            "median": statistics.median(rates), "min": min(rates), "max": max(rates),
            "runs": len(rates), "count": group[0].count,
            "server_cpu": statistics.median(r.server_cpu_ms_per_msg for r in group),
            "client_cpu": statistics.median(r.client_cpu_ms_per_msg for r in group),
            "background": max(r.background_cores for r in group),
            "processed": [sum(v for k, v in (r.spool or {}).get("states", {}).items()
                              if k != "received") for r in group if r.spool],
        }
    return summary


def report(args: argparse.Namespace, results: list[IntakeResult], e2e: E2EResult | None,
           started: str, wall: float, quiet: float, fingerprint: str) -> str:
    summary = summarise(results)
    lines = [
        "Support gateway benchmark (bench/intake.py)",
        f"started {started}, took {wall:.0f} s; {os.cpu_count()} CPUs, "
        f"{platform.platform()}, Python {platform.python_version()}",
        f"gateway code {fingerprint}",
        f"other processes kept {quiet:.2f} cores busy just before the run"
        + ("  ** machine not quiet: figures are depressed **" if quiet > 0.25 else ""),
        f"load: smtp-source -s {args.sessions}, {args.rounds} round(s), median msgs/s "
        "(min-max); warm-up messages not timed; every gateway message checked in its spool",
        "CPU columns: ms of CPU per message of the server process (gateway: intake and worker)"
        " and of smtp-source; 'other' = cores used by other processes meanwhile (max)",
        "",
    ]
    verdicts = []
    for mode in args.modes:
        lines.append(f"SMTP intake, {MODE_TEXT[mode]}")
        lines.append(f"  {'server':<20}{'size':>7}{'msgs':>6}{'msgs/s':>8}  {'min-max':<11}"
                     f"{'srv CPU':>8}{'src CPU':>8}{'other':>6}")
        for size in args.sizes:
            for server in SERVER_ORDER:
                s = summary.get((server, size, mode))
                if s is None:
                    continue
                extra = ""
                if server == "gateway serve" and s["processed"]:
                    extra = (f"  worker done {min(s['processed'])}-{max(s['processed'])}"
                             f"/{s['count'] + WARMUP} when intake ended")
                lines.append(f"  {server:<20}{kb(size):>7}{s['count']:>6}{s['median']:>8.0f}  "
                             f"{s['min']:>5.0f}-{s['max']:<5.0f}{s['server_cpu']:>8.2f}"
                             f"{s['client_cpu']:>8.2f}{s['background']:>6.2f}{extra}")
        lines.append("  ratios of the medians:")
        for size in args.sizes:
            sink = summary.get(("smtp-sink", size, mode))
            bare = summary.get(("bare aiosmtpd", size, mode))
            gate = summary.get(("gateway serve", size, mode))
            lone = summary.get(("gateway --no-worker", size, mode))
            parts = []
            if gate and bare:
                ratio = gate["median"] / bare["median"]
                met = "MET" if ratio >= 0.80 else "MISSED"
                parts.append(f"gateway/bare-aiosmtpd {ratio:6.1%} (target >= 80 %: {met})")
                verdicts.append(f"intake {kb(size)} {ratio:.1%} of bare aiosmtpd: {met}")
            if bare and sink:
                parts.append(f"bare-aiosmtpd/smtp-sink {bare['median'] / sink['median']:6.1%}")
            if lone and bare:
                parts.append(f"no-worker/bare {lone['median'] / bare['median']:6.1%}")
            lines.append(f"    {kb(size):>6}: " + ";  ".join(parts))
        lines.append("")
    if e2e is not None:
        met = "MET" if e2e.e2e_p99_ms < 1000 and e2e.acked == e2e.sent else "MISSED"
        lines += [
            f"Sustained end to end into gateway serve: {e2e.rate:.0f} msgs/s for "
            f"{e2e.seconds:.0f} s, {kb(args.e2e_size)} messages, "
            f"{args.e2e_connections} client connections, {e2e.warmup} warm-up messages not timed",
            f"  sent {e2e.sent} in {e2e.send_window_s:.1f} s = {e2e.achieved_send_rate:.1f} msgs/s "
            f"(client behind schedule by up to {e2e.client_lag_max_ms:.0f} ms)",
            f"  acks in maildir {e2e.acked}/{e2e.sent}, {e2e.ack_rate:.1f} acks/s from first "
            "send to last ack",
            f"  SMTP send -> 250          p50 {e2e.smtp_p50_ms:9.1f} ms  "
            f"p99 {e2e.smtp_p99_ms:9.1f} ms",
            f"  send start -> ack landed  p50 {e2e.e2e_p50_ms:9.1f} ms  "
            f"p95 {e2e.e2e_p95_ms:9.1f} ms  p99 {e2e.e2e_p99_ms:9.1f} ms  "
            f"max {e2e.e2e_max_ms:9.1f} ms",
            f"  scheduled -> ack landed   p50 {e2e.sched_p50_ms:9.1f} ms  "
            f"p99 {e2e.sched_p99_ms:9.1f} ms  (includes waiting for a free client connection)",
            f"  gateway CPU {e2e.server_cpu_share:.2f} cores, other processes "
            f"{e2e.background_cores:.2f} cores; spool states {e2e.spool.get('states')}",
            f"  target p99 < 1 s at a steady {e2e.rate:.0f} msgs/s: {met}",
            "",
        ]
        verdicts.append(f"end-to-end p99 {e2e.e2e_p99_ms / 1000:.3f} s: {met}")
    lines.append("Targets: " + "; ".join(verdicts))
    return "\n".join(lines) + "\n"


# -- main -----------------------------------------------------------------------------
GATEWAY_SETTINGS: dict[str, str] = {}
"""Settings for the measured ``gateway serve`` (``--set processing_processes=0``)."""
WARMUP = 40  # messages sent (and stored) before each timed intake run


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: small counts, one round, 5 s end to end")
    parser.add_argument("--rounds", type=int, default=2, help="intake rounds (default 2)")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent SMTP sessions")
    parser.add_argument("--count-5k", type=int, default=2000, help="messages per 5 KB run")
    parser.add_argument("--count-100k", type=int, default=400, help="messages per 100 KB run")
    parser.add_argument("--modes", default="new",
                        help="new (connection per message, default), reuse (smtp-source -d), "
                        "or new,reuse")
    parser.add_argument("--servers", default="sink,bare,gateway,no-worker",
                        help="intake servers (default sink,bare,gateway,no-worker; no-worker is "
                        "the diagnostic `gateway serve --no-worker`)")
    parser.add_argument("--e2e-rate", type=float, default=50.0, help="messages per second")
    parser.add_argument("--e2e-seconds", type=float, default=30.0)
    parser.add_argument("--e2e-size", type=int, default=5 * 1024)
    parser.add_argument("--e2e-connections", type=int, default=20)
    parser.add_argument("--e2e-drain", type=float, default=300.0,
                        help="seconds to wait for the last acks (missing ones count as late)")
    parser.add_argument("--skip-intake", action="store_true")
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to this long for other processes to leave the CPUs idle")
    parser.add_argument("--keep", action="store_true",
                        help="keep the gateways' working directories under bench/out/")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting of the measured gateway, e.g. processing_processes=0")
    args = parser.parse_args()
    for item in args.set:
        name, _, value = item.partition("=")
        GATEWAY_SETTINGS[f"GATEWAY_{name.strip().upper()}"] = value
    if args.quick:
        args.rounds, args.count_5k, args.count_100k, args.e2e_seconds = 1, 300, 60, 5.0
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(args.modes) <= {"new", "reuse"}:
        parser.error("--modes takes new, reuse or new,reuse")
    args.servers = {s.strip() for s in args.servers.split(",") if s.strip()}
    if not args.servers <= {"sink", "bare", "gateway", "no-worker"}:
        parser.error("--servers takes sink, bare, gateway and/or no-worker")
    args.sizes = [5 * 1024, 100 * 1024]
    return args


def intake_round(args: argparse.Namespace, source: str, sinks: list[Server], round_no: int,
                 results: list[IntakeResult]) -> None:
    counts = {5 * 1024: args.count_5k, 100 * 1024: args.count_100k}
    for size in args.sizes:
        for mode in args.modes:
            common: dict[str, Any] = dict(
                count=counts[size], size=size, sessions=args.sessions, reuse=mode == "reuse",
                round_no=round_no, warmup=WARMUP)
            for server in sinks:
                result = measure_intake(server, source, **common)
                results.append(result)
                log(f"round {round_no} {kb(size):>6} {mode:<5} {server.label:<20}"
                    f" {result.rate:7.0f} msgs/s  (other processes {result.background_cores:.2f}"
                    " cores)")
            for kind in ("gateway", "no-worker"):
                if kind not in args.servers:
                    continue
                result = measure_gateway(args, kind, f"r{round_no}-{size // 1024}k-{mode}",
                                         source, common)
                results.append(result)
                spool = result.spool or {}
                log(f"round {round_no} {kb(size):>6} {mode:<5} {result.server:<20}"
                    f" {result.rate:7.0f} msgs/s  (other processes {result.background_cores:.2f}"
                    f" cores; spool {spool.get('rows')} rows {spool.get('states')})")


def measure_gateway(args: argparse.Namespace, kind: str, tag: str, source: str,
                    common: dict[str, Any]) -> IntakeResult:
    """One intake measurement on a fresh gateway; measured again once if something outside
    this script stopped the gateway mid-run.  A failed gateway's working dir is kept."""
    for attempt in (1, 2):
        gateway = GatewayServe(f"{kind}-{tag}" + ("-retry" if attempt > 1 else ""),
                               worker=kind == "gateway")
        ok = False
        try:
            with running(gateway):
                try:
                    result = measure_intake(gateway, source, **common)
                except BenchError:
                    if attempt == 1 and gateway.stopped_by_someone_else():
                        log(f"{gateway.label} (pid {gateway.proc and gateway.proc.pid}) was "
                            "stopped by another process during the run; measuring again "
                            f"(log {gateway.log_path})")
                        continue
                    raise
            ok = True
            return result
        finally:
            gateway.cleanup(args.keep or not ok)
    raise AssertionError("unreachable")


def run_e2e_phase(args: argparse.Namespace) -> E2EResult:
    for attempt in (1, 2):
        gateway = GatewayServe("gateway-e2e" + ("-retry" if attempt > 1 else ""),
                               with_directory=True)
        ok = False
        try:
            with running(gateway):
                log(f"end to end: {args.e2e_rate:.0f} msgs/s for {args.e2e_seconds:.0f} s")
                try:
                    e2e = asyncio.run(run_e2e(
                        gateway, rate=args.e2e_rate, seconds=args.e2e_seconds,
                        size=args.e2e_size, connections=args.e2e_connections, warmup=10,
                        drain_timeout=args.e2e_drain))
                except (BenchError, OSError) as error:
                    if attempt == 1 and gateway.stopped_by_someone_else():
                        log(f"{gateway.label} was stopped by another process during the run; "
                            f"measuring again (log {gateway.log_path})")
                        continue
                    raise BenchError(f"end-to-end run failed: {error}") from error
                e2e.spool = gateway.spool()
                expected = e2e.sent + e2e.warmup
                if e2e.spool["rows"] != expected or e2e.spool["distinct_message_ids"] != expected:
                    raise BenchError(f"gateway spool holds {e2e.spool['rows']} rows after "
                                     f"{expected} accepted messages")
                log(f"end to end: p50 {e2e.e2e_p50_ms:.0f} ms, p99 {e2e.e2e_p99_ms:.0f} ms, "
                    f"{e2e.acked}/{e2e.sent} acks")
                ok = True
                return e2e
        finally:
            gateway.cleanup(args.keep or not ok)
    raise AssertionError("unreachable")


def main() -> int:
    args = parse_args()

    def _terminate(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _terminate)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    t0 = time.monotonic()
    results: list[IntakeResult] = []
    e2e: E2EResult | None = None
    try:
        source, sink_binary = ensure_postfix_tools()
        fingerprint = code_fingerprint()
        quiet = background_cores()
        deadline = time.monotonic() + args.wait_quiet
        while quiet > 0.25 and time.monotonic() < deadline:
            log(f"other processes keep {quiet:.2f} cores busy; waiting for a quiet machine")
            time.sleep(10)
            quiet = background_cores()
        log(f"other processes keep {quiet:.2f} of {os.cpu_count()} cores busy"
            + (" -- the machine is not quiet, figures will be depressed" if quiet > 0.25 else ""))
        if not args.skip_intake:
            sinks: list[Server] = []
            if "sink" in args.servers:
                sinks.append(SmtpSink("smtp-sink", sink_binary).start())
            if "bare" in args.servers:
                sinks.append(BareAiosmtpd("bare-aiosmtpd").start())
            for round_no in range(1, args.rounds + 1):
                intake_round(args, source, sinks, round_no, results)
            for server in sinks:
                server.stop()
        if not args.skip_e2e:
            e2e = run_e2e_phase(args)
    except BenchError as error:
        stop_all()
        log(f"BENCHMARK FAILED: {error}")
        return 1
    finally:
        stop_all()
    after = code_fingerprint()
    if after.split()[0] != fingerprint.split()[0]:
        fingerprint += f"; ** the code changed during the run: now {after} **"
    table = report(args, results, e2e, started, time.monotonic() - t0, quiet, fingerprint)
    (OUT / "results.txt").write_text(table)
    (OUT / "results.json").write_text(json.dumps(
        {"started": started, "background_cores_before": quiet, "code": fingerprint,
         "args": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()},
         "intake": [asdict(r) for r in results], "e2e": asdict(e2e) if e2e else None},
        indent=2, default=str))
    print()
    print(table, end="")
    print(f"(written to {OUT / 'results.txt'} and results.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
