"""Page latency of the support hub with 10,000 tickets in a team, against 100 (issue 17).

Not a timed test: a measurement to read.  One run loads two teams into a fresh database
(``bench/hub_dataset.py``: a ``big`` team with ``--big`` tickets and a ``small`` one with
``--small``, bulk inserts through the models), starts the real ``gateway serve`` in its
own process (web front end on a real socket, in-process worker delivering mail to a
maildir, no periodic jobs), signs a member and an admin of each team in through the hub's
own sign-in flow (the form, the mailed link read from the maildir, the link's button),
then asks for

- ``/hub/tickets`` as the member (my tickets),
- ``/hub/tickets?scope=team`` as the admin (team tickets, cut-off honoured), and the same
  filtered to open tickets (the index on the last update no longer finds a page at once),
- ``/hub/insights`` as the admin,

``--requests`` times each after ``--warm-up`` requests, one keep-alive connection per
visitor, the pages and sizes interleaved so that a busy moment of the machine falls on all
of them alike; then ``--requests`` more of each in blocks, reading the server process's CPU
time around each block.  Printed: p50 / p95 / max per page and size, the server's CPU ms per
request (the figure other load on a shared machine does not move), the page's bytes, the
ratio of the big team's p95 to the small team's ("growth well below linear": far below
the ratio of tickets, 100) and the target (p95 < 100 ms).

    .venv/bin/python bench/hub_pages.py                       # SQLite in a temporary dir
    .venv/bin/python bench/hub_pages.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/hub_pages.py --requests 50 --big 2000   # quicker

With a PostgreSQL URL a fresh database is made on that server and dropped afterwards.
Figures go to ``bench/out/hub_pages.json`` too.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from hub_client import HubClient, sign_in_link  # noqa: E402
from hub_dataset import TeamData, fill, team_people  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from gateway.db import Database, normalise_url  # noqa: E402
from gateway.models import utcnow  # noqa: E402

CUTOFF = date(2024, 12, 11)
TARGET_MS = 100.0
PAGES = (("my tickets", "member", "/hub/tickets"),
         ("team tickets", "admin", "/hub/tickets?scope=team"),
         ("team open", "admin", "/hub/tickets?scope=team&status=open"),
         ("insights", "admin", "/hub/insights"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_database(url: str, work: Path) -> Iterator[str]:
    """SQLite in ``work`` when no URL is given; else a new database on that PostgreSQL
    server, dropped at the end."""
    if not url:
        yield f"sqlite:///{work / 'gateway.db'}"
        return
    admin_url = normalise_url(url)
    name = f"gw_hub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def serving(database_url: str, work: Path) -> Iterator[tuple[str, int]]:
    """``gateway serve`` in its own process (so the client's work never shares its GIL);
    yields the web base URL and the process id."""
    web = f"127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({
        "GATEWAY_DATABASE_URL": database_url, "GATEWAY_SECRET_KEY": "bench-" + "x" * 32,
        "GATEWAY_SMTP_LISTEN": f"127.0.0.1:{_free_port()}", "GATEWAY_WEB_LISTEN": web,
        "GATEWAY_PUBLIC_URL": f"http://{web}", "GATEWAY_VAR_DIR": str(work / "var"),
        "GATEWAY_OUTBOUND_URL": f"maildir:{work / 'sent'}", "GATEWAY_LOG_LEVEL": "WARNING",
        "GATEWAY_COLLEAGUE_CUTOFF": CUTOFF.isoformat(),
        # No periodic jobs: the escalation job would otherwise work through the data set's
        # thousand overdue tickets during the measurement (in production it runs on the
        # scheduler's leader, and would have done so long ago).
        "GATEWAY_SCHEDULER_ENABLED": "false",
    })
    log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=env, cwd=work,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_for_web(web, server, work)
        yield f"http://{web}", server.pid
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def _wait_for_web(web: str, server: subprocess.Popen[bytes], work: Path) -> None:
    host, port = web.rsplit(":", 1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gateway serve exited; see {work / 'serve.log'}:\n"
                             + (work / "serve.log").read_text(errors="replace")[-2000:])
        try:
            with socket.create_connection((host, int(port)), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gateway serve did not listen within 120 s")


def signed_in(base: str, email: str, maildir: Path) -> HubClient:
    """A client with the session of ``email``, signed in as a person does it."""
    client = HubClient(base)
    client.submit_form("/hub/sign-in", {"email": email})
    link = sign_in_link(maildir, email)
    client.submit_form(link, {})
    assert client.has_session(), f"no session cookie after signing {email} in"
    return client


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    """Nearest rank: the smallest value with at least ``share`` of them at or below."""
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]


def measure(clients: dict[tuple[str, str], HubClient], teams: list[TeamData],
            pages: list[tuple[str, str, str]], requests: int, warm_up: int
            ) -> dict[str, dict[str, object]]:
    """Every (page, team) pair, interleaved; times in ms per request."""
    times: dict[tuple[str, str], list[float]] = {(p[0], t.id): [] for p in pages for t in teams}
    sizes: dict[tuple[str, str], int] = {}
    for round_ in range(warm_up + requests):
        for label, who, path in pages:
            for team in teams:
                client = clients[(team.id, who)]
                started = time.perf_counter()
                status, body = client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                if status != 200:
                    raise SystemExit(f"{path} as {who} of {team.id}: HTTP {status}")
                sizes[(label, team.id)] = len(body)
                if round_ >= warm_up:
                    times[(label, team.id)].append(elapsed)
    return {f"{label}|{team}": {"page": label, "team": team, "p50_ms": percentile(v, 0.5),
                                "p95_ms": percentile(v, 0.95), "max_ms": max(v),
                                "bytes": sizes[(label, team)], "requests": len(v)}
            for (label, team), v in times.items()}


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far, all its threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_cpu(clients: dict[tuple[str, str], HubClient], teams: list[TeamData],
                pages: list[tuple[str, str, str]], requests: int, pid: int
                ) -> dict[str, float]:
    """The server's CPU ms per request of each (page, team), one block after another: the
    figure that other processes on the machine do not change (the database server's own
    CPU is not in it)."""
    used: dict[str, float] = {}
    for label, who, path in pages:
        for team in teams:
            client = clients[(team.id, who)]
            before = cpu_seconds(pid)
            for _ in range(requests):
                client.get(path)
            used[f"{label}|{team.id}"] = (cpu_seconds(pid) - before) * 1000 / requests
    return used


def report(results: dict[str, dict[str, object]], teams: list[TeamData],
           pages: list[tuple[str, str, str]], database: str) -> str:
    small, big = teams[1], teams[0]
    lines = [f"Hub pages on {database}: p50/p95/max in ms over "
             f"{next(iter(results.values()))['requests']} requests each "
             f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)",
             f"  {'page':<13} {'tickets':>7} {'p50':>7} {'p95':>7} {'max':>7} "
             f"{'cpu/req':>8} {'bytes':>8}"]
    verdicts = []
    for label, _, _ in pages:
        for team in (small, big):
            r = results[f"{label}|{team.id}"]
            lines.append(f"  {label:<13} {team.tickets:>7} {r['p50_ms']:>7.1f} "
                         f"{r['p95_ms']:>7.1f} {r['max_ms']:>7.1f} {r['cpu_ms']:>8.2f} "
                         f"{r['bytes']:>8}")
        p95_big = float(str(results[f"{label}|{big.id}"]["p95_ms"]))
        p95_small = float(str(results[f"{label}|{small.id}"]["p95_ms"]))
        verdicts.append(f"  {label:<13} p95 ratio {big.tickets:,} vs {small.tickets:,}: "
                        f"{p95_big / p95_small:.2f} (tickets x{big.tickets / small.tickets:.0f}); "
                        f"target p95 < {TARGET_MS:.0f} ms: "
                        f"{'met' if p95_big < TARGET_MS and p95_small < TARGET_MS else 'NOT met'}")
    return "\n".join(lines + verdicts)


def run(args: argparse.Namespace, work: Path) -> tuple[str, dict[str, dict[str, object]]]:
    teams = [team_people("big", args.big), team_people("small", args.small)]
    with fresh_database(args.database_url, work) as url:
        database = Database(url)
        database.upgrade()
        started = time.perf_counter()
        written = fill(database, work, teams, cutoff=CUTOFF, now=utcnow())
        if database.engine.dialect.name == "postgresql":
            # What autovacuum does within a minute of such a load; done now so that every
            # run plans with the same statistics.
            with database.engine.connect() as connection:
                connection.execute(text("ANALYZE"))
                connection.commit()
        database.dispose()
        print(f"data: {written} in {time.perf_counter() - started:.1f} s", flush=True)
        with serving(url, work) as (base, pid):
            maildir = work / "sent"
            clients = {(team.id, who): signed_in(base, getattr(team, who), maildir)
                       for team in teams for who in ("member", "admin")}
            pages = [p for p in PAGES if p[0] in args.pages]
            results = measure(clients, teams, pages, args.requests, args.warm_up)
            for key, cpu in measure_cpu(clients, teams, pages, args.requests, pid).items():
                results[key]["cpu_ms"] = cpu
            for client in clients.values():
                client.close()
    name = "PostgreSQL" if make_url(url).get_backend_name().startswith("postgres") else "SQLite"
    return report(results, teams, pages, name), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL server URL (a fresh database is made); default SQLite")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warm-up", type=int, default=20)
    parser.add_argument("--big", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=100)
    parser.add_argument("--pages", type=lambda v: v.split(","),
                        default=[p[0] for p in PAGES],
                        help="comma-separated: " + ", ".join(p[0] for p in PAGES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gw-hub-bench-") as tmp:
        table, results = run(args, Path(tmp))
    print(table)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    (out / "hub_pages.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
