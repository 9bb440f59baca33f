"""``gateway usage import FILE.csv``: feature usage in bulk, streamed, upserted, all or nothing.

The CSV has a header line ``team,feature,count,period`` (any column order).  Rows are
read one at a time and written in batches with the database's own upsert (``INSERT …
ON CONFLICT (team_id, feature_id, period) DO UPDATE``), so a file of millions of rows
needs little memory and loading it twice changes nothing.  The first bad row stops the
import with its line number, and nothing of the file is kept (one transaction).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from gateway.directory import UsageEntry
from gateway.errors import DirectoryError
from gateway.models import Feature, FeatureUsage, Team

__all__ = ["BATCH_ROWS", "import_usage_csv"]

BATCH_ROWS = 1000
COLUMNS = ("team", "feature", "count", "period")


def _rows(path: Path, teams: set[str], features: set[str]) -> Iterator[dict[str, Any]]:
    try:
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise DirectoryError(f"{path}: no such file") from None
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [c for c in COLUMNS if c not in header]
        extra = [c for c in header if c not in COLUMNS]
        if missing or extra:
            raise DirectoryError(f"{path}: line 1: the header must name the columns "
                                 f"{', '.join(COLUMNS)}"
                                 + (f"; missing {', '.join(missing)}" if missing else "")
                                 + (f"; unknown {', '.join(extra)}" if extra else ""))
        try:
            for record in reader:
                where = f"{path}: line {reader.line_num}"
                if None in record or any(v is None for v in record.values()):
                    raise DirectoryError(f"{where}: expected {len(COLUMNS)} columns")
                try:
                    entry = UsageEntry.model_validate(record)
                except ValidationError as error:
                    first = error.errors()[0]
                    column = ".".join(str(p) for p in first["loc"])
                    raise DirectoryError(f"{where}, column {column!r}: {first['msg']}") from None
                if entry.team not in teams:
                    raise DirectoryError(f"{where}, column 'team': unknown team {entry.team!r}")
                if entry.feature not in features:
                    raise DirectoryError(
                        f"{where}, column 'feature': unknown feature {entry.feature!r}")
                yield {"team_id": entry.team, "feature_id": entry.feature,
                       "period": entry.period, "count": entry.count}
        except (csv.Error, UnicodeDecodeError) as error:
            raise DirectoryError(f"{path}: line {reader.line_num}: not valid CSV: {error}") \
                from None


def _upsert(session: Session, batch: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(FeatureUsage).values(batch)
    session.execute(statement.on_conflict_do_update(
        index_elements=["team_id", "feature_id", "period"],
        set_={"count": statement.excluded.count}))


def import_usage_csv(session: Session, path: Path) -> int:
    """Upsert every row of ``path`` in the caller's transaction; returns the row count."""
    teams = set(session.scalars(select(Team.id)))
    features = set(session.scalars(select(Feature.id)))
    batch: dict[tuple[str, str, str], dict[str, Any]] = {}
    total = 0
    for row in _rows(path, teams, features):
        # The same key twice in one statement is an error for ON CONFLICT: last one wins.
        batch[(row["team_id"], row["feature_id"], row["period"])] = row
        total += 1
        if len(batch) >= BATCH_ROWS:
            _upsert(session, list(batch.values()))
            batch.clear()
    if batch:
        _upsert(session, list(batch.values()))
    return total
