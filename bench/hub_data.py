"""The data behind the hub's insights, recommendations and announcements pages, with 100 and
with 10,000 tickets in one team: p50 and p95 of each function (``gateway/insights.py``,
``gateway/recommendations.py`` ``recommend_for``, ``gateway/bulk/announcements.py``
``visible_announcements``), to show the queries stay fast and grow well below linearly.

    .venv/bin/python bench/hub_data.py                      # SQLite (embedded mode)
    .venv/bin/python bench/hub_data.py --postgres postgresql://postgres@127.0.0.1:5432/test

Each size gets a fresh database (a temporary SQLite file, or a new PostgreSQL database that
is dropped afterwards) with the test directory, its articles and 20 announcements.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, make_url, select, text

from gateway.bulk.announcements import create_announcement, visible_announcements
from gateway.db import Database, normalise_url
from gateway.directory import load_directory_file
from gateway.insights import team_insights
from gateway.models import MessageRecord, Person, SatisfactionRating, Ticket, TicketStatus
from gateway.recommendations import recommend_for

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
TYPES = ["sync", "billing", "restore", "sharing", "links", None]
STATUSES = list(TicketStatus)
START = datetime(2026, 1, 5, 9, tzinfo=UTC)


@contextmanager
def fresh_database(postgres: str | None, folder: Path) -> Iterator[Database]:
    if postgres is None:
        database = Database(f"sqlite:///{folder / f'{uuid.uuid4().hex}.db'}")
        database.upgrade()
        yield database
        database.dispose()
        return
    admin_url = normalise_url(postgres)
    name = f"gw_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(make_url(admin_url).set(database=name)
                        .render_as_string(hide_password=False))
    try:
        database.upgrade()
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def fill(database: Database, tickets: int) -> None:
    """The directory, 20 announcements, ``tickets`` tickets of team acme (one message each,
    a third of them answered and rated) and as many of globex."""
    rng = random.Random(42)
    with database.transaction() as session:
        load_directory_file(session, FIXTURES / "directory.toml")
        load_directory_file(session, FIXTURES / "bulk_directory.toml")
        for n in range(20):
            create_announcement(session, subject=f"News {n}", body="Details.",
                                audience=rng.choice(["all", "team:acme", "team:globex"]),
                                translations={}, today=date(2026, 12, 1))
    for team, requester in (("acme", "max@acme.example"), ("globex", "yuki@globex.example")):
        rows: list[dict[str, Any]] = []
        for n in range(tickets):
            created = START + timedelta(minutes=37 * n)
            rows.append({
                "subject": f"Ticket {n} about {rng.choice(['sync', 'invoice', 'a file'])}",
                "requester": requester, "team_id": team,
                "product": rng.choice(["files", "dash", None]),
                "issue_type": rng.choice(TYPES), "status": rng.choice(STATUSES),
                "category": rng.choice(["technical", "administrative", "commercial"]),
                "created_at": created, "updated_at": created,
                "first_response_at": created + timedelta(minutes=rng.randint(5, 900))
                if n % 3 == 0 else None,
                "duplicate_of": 1 if n % 50 == 49 else None})
        with database.transaction() as session:
            session.execute(insert(Ticket), rows)
            numbers = list(session.scalars(select(Ticket.number).where(Ticket.team_id == team)))
            session.execute(insert(MessageRecord), [{
                "ticket_number": number, "role": "requester", "threaded_by": "new",
                "from_address": requester, "text": "Hello, the sync of our folder fails.",
                "received_at": START} for number in numbers])
            session.execute(insert(SatisfactionRating), [{
                "ticket_number": number, "email": requester,
                "rating": rng.choice(["good", "good", "bad"]), "comment": "",
                "rated_at": START} for number in numbers[::3]])
    if database.engine.dialect.name == "postgresql":
        with database.transaction() as session:  # what autovacuum does after a bulk load
            session.execute(text("ANALYZE"))


def timed(call: Callable[[], object], rounds: int) -> tuple[float, float]:
    """p50 and p95 of ``rounds`` calls, in milliseconds (after one warm-up call)."""
    call()
    laps = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        laps.append((time.perf_counter() - started) * 1000)
    laps.sort()
    return statistics.median(laps), laps[int(len(laps) * 0.95) - 1]


def measure(database: Database, rounds: int) -> dict[str, tuple[float, float]]:
    def insights() -> object:
        with database.reading() as session:
            return team_insights(session, "acme")

    def recommendations() -> object:
        with database.reading() as session:
            return recommend_for(session, "anna@acme.example", "acme", "de")

    def announcements() -> object:
        with database.reading() as session:
            person = session.get(Person, "anna@acme.example")
            assert person is not None
            return visible_announcements(session, person, date(2026, 12, 7))

    return {"insights": timed(insights, rounds),
            "recommendations": timed(recommendations, rounds),
            "announcements": timed(announcements, rounds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default=None, help="PostgreSQL admin URL (else SQLite)")
    parser.add_argument("--sizes", default="100,10000", help="tickets per team, comma-separated")
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[int, dict[str, tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            with fresh_database(args.postgres, Path(folder)) as database:
                fill(database, size)
                results[size] = measure(database, args.rounds)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{backend}, {args.rounds} rounds; p50 / p95 in ms")
    print(f"{'tickets per team':<18}" + "".join(f"{name:>22}" for name in results[sizes[0]]))
    for size, row in results.items():
        print(f"{size:<18}" + "".join(f"{p50:>12.1f} / {p95:<7.1f}" for p50, p95 in row.values()))


if __name__ == "__main__":
    main()
