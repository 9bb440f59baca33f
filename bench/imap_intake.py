"""IMAP intake benchmark: messages/second from a Dovecot mailbox into tickets.

A private Dovecot (the one the tests use, ``tests/imap/dovecot.py``) gets ``--count``
messages (default 5,000) built from the shared corpus's complete messages, each with
its own Message-ID so that none is de-duplicated.  Then ``gateway serve`` starts with
that mailbox as a backlog (``start = "since:2000-01-01"``: tickets, nothing sent) and
we time how long it takes until every message is spooled (IMAP intake) and until
every spool row is processed (into tickets), on SQLite and, with ``--postgres URL``,
on PostgreSQL (a fresh database that is dropped afterwards).

    .venv/bin/python bench/imap_intake.py
    .venv/bin/python bench/imap_intake.py --count 1000 --postgres postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gateway.db import Database, normalise_url  # noqa: E402
from tests.imap.dovecot import Dovecot  # noqa: E402

USER, PASSWORD = "support@support.example", "bench-secret"
FOLDERS = ("threads", "multilingual", "replies", "malformed", "autoreplies", "bounces")
_MESSAGE_ID = re.compile(rb"^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*", re.IGNORECASE | re.MULTILINE)


def corpus_messages(corpus: Path) -> list[bytes]:
    found: list[bytes] = []
    for folder in FOLDERS:
        index = json.loads((corpus / folder / "index.json").read_text(encoding="utf-8"))
        for entry in index["entries"]:
            if entry["format"] == "rfc822" and entry["bytes"] < 1_000_000:
                found.append((corpus / folder / entry["file"]).read_bytes())
    return found


def with_new_id(raw: bytes, number: int) -> bytes:
    """The message with a Message-ID of its own (the corpus is reused several times)."""
    raw = raw.replace(b"\r\n", b"\n")
    head, sep, body = raw.partition(b"\n\n")
    head = _MESSAGE_ID.sub(b"", head + b"\n").rstrip(b"\n")
    return f"Message-ID: <bench-{number}@bench.example>\n".encode() + head + sep + body


def mails(corpus: Path, count: int) -> Iterator[bytes]:
    source = corpus_messages(corpus)
    for number in range(count):
        yield with_new_id(source[number % len(source)], number)


def counts(url: str) -> tuple[int, int]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as connection:
            total, waiting = connection.execute(text(
                "SELECT count(*), sum(CASE WHEN state = 'received' THEN 1 ELSE 0 END) "
                "FROM spool")).one()
    finally:
        engine.dispose()
    return int(total or 0), int(waiting or 0)


def run_once(label: str, database_url: str, dovecot: Dovecot, count: int,
             work: Path) -> dict[str, float]:
    Database(database_url).upgrade()
    mailbox = {"name": "bench", "url": dovecot.url(USER), "start": "since:2000-01-01",
               "after": "flag:$Gateway", "batch_size": 100, "poll_interval": 5.0}
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({
        "GATEWAY_DATABASE_URL": database_url, "GATEWAY_SECRET_KEY": "bench-" + "x" * 32,
        "GATEWAY_SMTP_LISTEN": f"127.0.0.1:{_port()}",
        "GATEWAY_WEB_LISTEN": f"127.0.0.1:{_port()}", "GATEWAY_VAR_DIR": str(work / "var"),
        "GATEWAY_OUTBOUND_URL": f"maildir:{work / 'sent'}",
        "GATEWAY_MAILBOXES": json.dumps([mailbox]), "GATEWAY_LOG_LEVEL": "WARNING",
    })
    log = open(work / f"serve-{label}.log", "wb")  # noqa: SIM115 - closed below
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=env, cwd=work,
                              stdout=log, stderr=subprocess.STDOUT)
    spooled_at = processed_at = None
    try:
        while processed_at is None:
            if server.poll() is not None:
                raise SystemExit(f"gateway serve exited; see {log.name}")
            total, waiting = counts(database_url)
            now = time.monotonic()
            if spooled_at is None and total >= count:
                spooled_at = now
            if spooled_at is not None and waiting == 0:
                processed_at = now
            time.sleep(0.25)
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()
    assert spooled_at is not None
    return {"messages": count, "spooled_s": spooled_at - started,
            "processed_s": processed_at - started,
            "intake_msgs_s": count / (spooled_at - started),
            "tickets_msgs_s": count / (processed_at - started)}


def _port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fill(dovecot: Dovecot, corpus: Path, count: int) -> None:
    client = dovecot.client(USER)
    batch: list[bytes] = []
    for raw in mails(corpus, count):
        batch.append(raw)
        if len(batch) == 250:
            client.multiappend("INBOX", batch)
            batch = []
    if batch:
        client.multiappend("INBOX", batch)
    client.logout()


def reset_flags(dovecot: Dovecot) -> None:
    client = dovecot.client(USER)
    client.select_folder("INBOX")
    client.remove_flags(client.search(["ALL"]), [b"$Gateway"], silent=True)
    client.logout()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--postgres", default="", help="admin URL; a fresh database is made")
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get(
        "GATEWAY_TEST_CORPUS", REPO.parent / "shared" / "corpus")))
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="gw-imap-bench-") as tmp:
        root = Path(tmp)
        dovecot = Dovecot(root / "dovecot")
        dovecot.add_user(USER, PASSWORD)
        dovecot.start()
        try:
            fill(dovecot, args.corpus, args.count)
            (root / "sqlite").mkdir()
            results["sqlite"] = run_once("sqlite", f"sqlite:///{root / 'sqlite' / 'gw.db'}",
                                         dovecot, args.count, root / "sqlite")
            if args.postgres:
                reset_flags(dovecot)
                admin_url = normalise_url(args.postgres)
                name = f"gw_bench_{uuid.uuid4().hex[:8]}"
                admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
                with admin.connect() as connection:
                    connection.execute(text(f'CREATE DATABASE "{name}"'))
                try:
                    url = make_url(admin_url).set(database=name).render_as_string(
                        hide_password=False)
                    (root / "postgres").mkdir()
                    results["postgresql"] = run_once("postgres", url, dovecot, args.count,
                                                     root / "postgres")
                finally:
                    with admin.connect() as connection:
                        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                    admin.dispose()
        finally:
            dovecot.remove()
    print(f"IMAP intake, {args.count} corpus messages in one Dovecot INBOX, backlog import "
          f"(history: tickets, nothing sent), batch 100, in-process worker, {os.cpu_count()} CPUs")
    print(f"  {'database':<11} {'all spooled':>12} {'intake msg/s':>13} {'all tickets':>12} "
          f"{'tickets msg/s':>14}")
    for label, r in results.items():
        print(f"  {label:<11} {r['spooled_s']:>11.1f}s {r['intake_msgs_s']:>13.1f} "
              f"{r['processed_s']:>11.1f}s {r['tickets_msgs_s']:>14.1f}")


if __name__ == "__main__":
    main()
