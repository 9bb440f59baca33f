"""Hot statements of the writer lane, run on SQLite's own cursor: compiled once, then plain
calls.

Why: processing a message runs about ten small indexed reads and eight writes while it
holds SQLite's one writer lane (``gateway/db.py``), and SQLAlchemy's execution path
(execution context, parameter and result processing, events) costs 15 to 40 µs for each,
where ``sqlite3`` answers an indexed read in about 2 µs.  The lane is the embedded
gateway's bottleneck, so those microseconds are throughput.

A :class:`Prepared` is a Core statement (a SELECT, or an INSERT/UPDATE, with or without
RETURNING) built once at import (as the call sites already had them).  On SQLite its first
use compiles it with the dialect, notes each parameter's and each result column's type
conversion (datetimes are text in SQLite, JSON, enums, booleans), and every use after that
is one ``cursor.execute`` on the session's own connection, in its transaction.  Errors come
back as SQLAlchemy's (``DBAPIError.instance``), so a busy or broken database is an outage to
the pipeline (the job is retried), as it is on the normal path.  What SQLAlchemy would work
out per call is refused at the first: an expanding ``IN`` (bind one ``literal()`` per
value), a column default of an INSERT (give every column).

On other databases the statement runs through the session as any other.  Like
``Session.execute`` of a Core statement, nothing is flushed first: a caller whose answer
depends on rows still pending in the session flushes them itself
(``gateway.db.flush_if_pending``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import CompoundSelect, Insert, Select, Update

__all__ = ["Prepared"]

_Convert = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    sql: str
    names: tuple[str, ...]
    """The positional parameters' bind names, in order."""
    fixed: Mapping[str, Any]
    """Values the statement binds itself (literals), by bind name."""
    to_database: tuple[_Convert, ...]
    from_database: tuple[_Convert, ...] | None
    """One conversion per result column; None when no column needs one."""


class Prepared:
    """A statement run many times per second with different parameters (see the module doc).

    ``columns``: for an INSERT without ``.values()``, the columns every call gives (the
    statement is compiled for exactly those)."""

    def __init__(self, statement: Select[Any] | CompoundSelect[Any] | Insert | Update, *,
                 columns: Sequence[str] | None = None) -> None:
        self.statement = statement
        self.columns = list(columns) if columns is not None else None
        result = (statement.selected_columns if isinstance(statement, Select | CompoundSelect)
                  else statement.exported_columns)  # a DML statement's RETURNING
        self._result = tuple(result)
        self.keys = tuple(str(column.key) for column in self._result)
        """The result columns' names, in order (a row is a plain tuple)."""
        self._plan: _Plan | None = None

    def rows(self, session: Session, params: Mapping[str, Any] | None = None
             ) -> list[tuple[Any, ...]]:
        """Every row of the answer (a DML statement's: what it returns, or none), as tuples
        in the statement's column order."""
        connection = session.connection()
        if connection.dialect.name != "sqlite":
            result = connection.execute(self.statement, params or {})
            return [tuple(row) for row in result] if self._result else []
        plan = self._plan or self._prepare(connection.dialect)
        given = params or {}
        values = []
        for name, convert in zip(plan.names, plan.to_database, strict=True):
            value = given[name] if name in given else plan.fixed[name]
            values.append(value if convert is None else convert(value))  # None too: JSON
        dbapi_connection = connection.connection.driver_connection
        assert isinstance(dbapi_connection, sqlite3.Connection)
        try:
            found = dbapi_connection.execute(plan.sql, values).fetchall()
        except sqlite3.Error as error:
            raise DBAPIError.instance(plan.sql, values, error, sqlite3.Error) from error
        if plan.from_database is None:
            return found
        return [tuple(value if convert is None else convert(value)
                      for value, convert in zip(row, plan.from_database, strict=True))
                for row in found]

    def first(self, session: Session, params: Mapping[str, Any] | None = None
              ) -> tuple[Any, ...] | None:
        found = self.rows(session, params)
        return found[0] if found else None

    def scalar(self, session: Session, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row, or None without a row."""
        row = self.first(session, params)
        return None if row is None else row[0]

    def scalars(self, session: Session, params: Mapping[str, Any] | None = None
                ) -> list[Any]:
        return [row[0] for row in self.rows(session, params)]

    def _prepare(self, dialect: Dialect) -> _Plan:
        compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
        if compiled.insert_prefetch or compiled.update_prefetch:
            raise TypeError("Prepared: a column default is computed per call; give every "
                            "column's value (columns=)")
        names = tuple(compiled.positiontup or ())
        binds = [compiled.binds[name] for name in names]  # a name may come twice (UNION)
        if any(bind.expanding for bind in binds) or "POSTCOMPILE" in compiled.string:
            raise TypeError("Prepared: an expanding IN is rendered per call; bind one "
                            "literal() per value instead")
        fixed = {name: bind.effective_value for name, bind in zip(names, binds, strict=True)
                 if not bind.required and bind.callable is None}
        to_database = tuple(bind.type.dialect_impl(dialect).bind_processor(dialect)
                            for bind in binds)
        from_database = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                              for column in self._result)
        self._plan = _Plan(compiled.string, names, fixed, to_database,
                           from_database if any(from_database) else None)
        return self._plan
