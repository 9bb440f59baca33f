"""Threading under load: how many replies end on their parent's ticket, beside throughput.

The benchmark corpus (``../shared/bench/make_corpus.py --n 1000 --seed 42``: its manifest
says which message replies to which) is sent over SMTP by many clients at once, in corpus
order and shuffled, to ``gateway serve`` in embedded mode (SQLite, in-process worker) and,
with ``--postgres URL --redis URL``, in scale-out mode (PostgreSQL, Redis, ``--workers``
separate ``gateway worker`` processes).  For each run it prints the time until every
message was spooled and processed, and the replies on their parent's ticket.

    .venv/bin/python bench/thread_order.py --n 1000
    .venv/bin/python bench/thread_order.py --postgres postgresql://postgres@127.0.0.1/test \\
        --redis redis://127.0.0.1:6379/0 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from imap_intake import counts as spool_counts  # bench/ is this script's folder
from sqlalchemy import create_engine, make_url, text

from gateway.db import Database, normalise_url

REPO = Path(__file__).resolve().parent.parent
SUPPORT = "support@support.example"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def generate(script: Path, n: int, seed: int, out: Path) -> list[dict[str, Any]]:
    subprocess.run([sys.executable, str(script), "--n", str(n), "--seed", str(seed),
                    "--out", str(out)], check=True, capture_output=True)
    manifest: list[dict[str, Any]] = json.loads((out / "manifest.json").read_text())
    return manifest


def send_all(host_port: str, mails: list[bytes], clients: int) -> None:
    host, port = host_port.rsplit(":", 1)
    failures: list[BaseException] = []

    def client(share: list[bytes]) -> None:
        try:
            with smtplib.SMTP(host, int(port), timeout=120) as session:
                for raw in share:
                    session.sendmail("bench@client.example", [SUPPORT], raw)
        except BaseException as error:  # noqa: BLE001 - reported after the run
            failures.append(error)

    threads = [threading.Thread(target=client, args=(mails[i::clients],))
               for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} SMTP clients failed: {failures[:3]}")


def _placement(url: str) -> tuple[dict[str, int], int, int]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT message_id, ticket_number FROM messages")).all()
            live, joined = connection.execute(text(
                "SELECT sum(CASE WHEN merged_into IS NULL THEN 1 ELSE 0 END), "
                "sum(CASE WHEN merged_into IS NULL THEN 0 ELSE 1 END) FROM tickets")).one()
    finally:
        engine.dispose()
    return ({str(m): int(t) for m, t in rows if m}, int(live or 0), int(joined or 0))


def on_parent(manifest: list[dict[str, Any]], placed: dict[str, int]) -> int:
    by_index = {m["index"]: m for m in manifest}
    count = 0
    for entry in manifest:
        if not entry["parent"]:
            continue
        mine = placed.get(entry["message_id"].strip("<>"))
        theirs = placed.get(by_index[entry["parent"]]["message_id"].strip("<>"))
        count += mine is not None and mine == theirs
    return count


def run_once(database_url: str, broker_url: str, workers: int, mails: list[bytes],
             manifest: list[dict[str, Any]], clients: int, work: Path) -> dict[str, Any]:
    Database(database_url).upgrade()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    listen = f"127.0.0.1:{_port()}"
    env.update({
        "GATEWAY_DATABASE_URL": database_url, "GATEWAY_SECRET_KEY": "bench-" + "x" * 32,
        "GATEWAY_SMTP_LISTEN": listen, "GATEWAY_WEB_LISTEN": f"127.0.0.1:{_port()}",
        "GATEWAY_VAR_DIR": str(work / "var"), "GATEWAY_OUTBOUND_URL": f"maildir:{work / 'sent'}",
        "GATEWAY_LOG_LEVEL": "WARNING",
    })
    if broker_url:
        env.update({"GATEWAY_BROKER_URL": broker_url,
                    "GATEWAY_BROKER_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}"})
    processes: list[subprocess.Popen[bytes]] = []
    log = open(work / "gateway.log", "wb")  # noqa: SIM115 - closed below
    try:
        if broker_url:
            for _ in range(workers):
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "gateway", "worker"], env=env, cwd=work,
                    stdout=log, stderr=subprocess.STDOUT))
        serve = [sys.executable, "-m", "gateway", "serve"] + (["--no-worker"] if broker_url
                                                              else [])
        processes.append(subprocess.Popen(serve, env=env, cwd=work, stdout=log,
                                          stderr=subprocess.STDOUT))
        host, port = listen.rsplit(":", 1)
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or processes[-1].poll() is not None:
                    raise SystemExit(f"gateway serve did not start; see {log.name}") from None
                time.sleep(0.2)
        started = time.monotonic()
        send_all(listen, mails, clients)
        spooled = time.monotonic() - started
        while spool_counts(database_url)[1]:
            time.sleep(0.25)
        processed = time.monotonic() - started
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        log.close()
    placed, live, joined = _placement(database_url)
    return {"messages": len(mails), "spooled_s": spooled, "processed_s": processed,
            "msgs_s": len(mails) / processed, "on_parent": on_parent(manifest, placed),
            "replies": sum(1 for m in manifest if m["parent"]),
            "threads": sum(1 for m in manifest if not m["parent"]),
            "tickets": live, "joined": joined}


def _postgres(admin_url: str) -> tuple[str, Any]:
    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"gw_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_url(admin_url)).set(database=name).render_as_string(
        hide_password=False)
    return url, (admin, name)


def _drop(admin: Any, name: str) -> None:
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _make_corpus() -> Path:
    """``shared/bench/make_corpus.py`` next to the checkout (or next to its worktrees)."""
    candidates = [REPO.parent / "shared", REPO.parent.parent / "shared"]
    if os.environ.get("GATEWAY_TEST_CORPUS"):
        candidates.insert(0, Path(os.environ["GATEWAY_TEST_CORPUS"]).parent)
    for shared in candidates:
        if (shared / "bench" / "make_corpus.py").is_file():
            return shared / "bench" / "make_corpus.py"
    return candidates[-1] / "bench" / "make_corpus.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--postgres", default="", help="admin URL; a fresh database per run")
    parser.add_argument("--redis", default="", help="broker URL for the scale-out runs")
    parser.add_argument("--workers", type=int, default=2, help="gateway worker processes")
    parser.add_argument("--make-corpus", type=Path, default=_make_corpus())
    args = parser.parse_args()
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="gw-thread-bench-") as tmp:
        root = Path(tmp)
        manifest = generate(args.make_corpus, args.n, args.seed, root / "corpus")
        ordered = [(root / "corpus" / "eml" / m["file"]).read_bytes()
                   .replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") for m in manifest]
        shuffled = list(ordered)
        random.Random(args.seed).shuffle(shuffled)
        modes = [("sqlite", "")] + ([("postgresql", args.redis)] if args.postgres else [])
        for database, broker in modes:
            for order, mails in (("corpus order", ordered), ("shuffled", shuffled)):
                work = root / f"{database}-{order.replace(' ', '-')}"
                work.mkdir()
                if database == "sqlite":
                    result = run_once(f"sqlite:///{work / 'gw.db'}", "", 0, mails, manifest,
                                      args.clients, work)
                else:
                    url, (admin, name) = _postgres(args.postgres)
                    try:
                        result = run_once(url, broker, args.workers, mails, manifest,
                                          args.clients, work)
                    finally:
                        _drop(admin, name)
                label = (f"{database}, {order}" + (f", {args.workers} workers" if broker
                                                   else ", in-process worker"))
                rows.append((label, result))
                print(label, json.dumps(result), flush=True)
    load = os.getloadavg()
    print(f"\n{args.n} messages (seed {args.seed}), {args.clients} SMTP clients at once, "
          f"{os.cpu_count()} CPUs, load average at the end {load[0]:.1f}")
    print(f"  {'run':<44} {'spooled':>8} {'processed':>10} {'msg/s':>6} "
          f"{'replies on parent':>18} {'tickets':>8} {'joined':>7}")
    for label, r in rows:
        print(f"  {label:<44} {r['spooled_s']:>7.1f}s {r['processed_s']:>9.1f}s "
              f"{r['msgs_s']:>6.1f} {r['on_parent']:>9}/{r['replies']:<8} "
              f"{r['tickets']:>8} {r['joined']:>7}")
    print(f"  ({rows[0][1]['threads']} conversations in the corpus)")


if __name__ == "__main__":
    main()
