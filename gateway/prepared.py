"""Hot statements of the writer lane, run on the database driver's own cursor: compiled
once, then plain calls.

Why: processing a message runs about ten small indexed reads and eight writes while it
holds SQLite's one writer lane (``gateway/db.py``), and SQLAlchemy's execution path
(execution context, parameter and result processing, events) costs 15 to 40 µs for each,
where ``sqlite3`` answers an indexed read in about 2 µs.  The lane is the embedded
gateway's bottleneck, so those microseconds are throughput.  On PostgreSQL the same read
costs 76 µs of client CPU through SQLAlchemy and 43 µs on psycopg's cursor.

A :class:`Prepared` is a Core statement (a SELECT, or an INSERT/UPDATE, with or without
RETURNING) built once at import (as the call sites already had them).  Its first use on a
dialect compiles it, notes each parameter's and each result column's type conversion
(datetimes are text in SQLite, JSON, enums, booleans), and every use after that is one
``cursor.execute`` on the session's own connection, in its transaction (parameters by
position for ``sqlite3``, by name for psycopg, which prepares a statement on the server
after a few runs).  Errors come back as SQLAlchemy's (``DBAPIError.instance``; a lost
connection is invalidated, as SQLAlchemy does), so a busy or broken database is an outage
to the pipeline (the job is retried), as it is on the normal path.  What SQLAlchemy would
work out per call is refused at the first run on SQLite: an expanding ``IN`` (bind one
``literal()`` per value), a column default of an INSERT (give every column); on PostgreSQL
such a statement runs through SQLAlchemy.

Like ``Session.execute`` of a Core statement, nothing is flushed first: a caller whose
answer depends on rows still pending in the session flushes them itself
(``gateway.db.flush_if_pending``).
"""

from __future__ import annotations

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
    """The parameters' bind names, in the statement's order."""
    fixed: Mapping[str, Any]
    """Values the statement binds itself (literals), by bind name."""
    to_database: tuple[_Convert, ...]
    from_database: tuple[_Convert, ...] | None
    """One conversion per result column; None when no column needs one."""
    named: bool
    """Parameters by name (PostgreSQL's ``%(name)s``), else by position (SQLite's ``?``)."""

    def parameters(self, given: Mapping[str, Any]) -> list[Any] | dict[str, Any]:
        values = []
        for name, convert in zip(self.names, self.to_database, strict=True):
            value = given[name] if name in given else self.fixed[name]
            values.append(value if convert is None else convert(value))  # None too: JSON
        return dict(zip(self.names, values, strict=True)) if self.named else values

    def converted(self, found: list[Any]) -> list[tuple[Any, ...]]:
        if self.from_database is None:  # both drivers' rows are tuples already
            return found
        return [tuple(value if convert is None else convert(value)
                      for value, convert in zip(row, self.from_database, strict=True))
                for row in found]


_UNPLANNED: Any = object()
"""Not compiled for that dialect yet."""


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
        self._plans: dict[str, _Plan | None] = {}
        """The compiled plan per dialect (None: that dialect runs it through SQLAlchemy)."""

    def rows(self, session: Session, params: Mapping[str, Any] | None = None
             ) -> list[tuple[Any, ...]]:
        """Every row of the answer (a DML statement's: what it returns, or none), as tuples
        in the statement's column order."""
        connection = session.connection()
        dialect = connection.dialect
        plan: _Plan | None = self._plans.get(dialect.name, _UNPLANNED)
        if plan is _UNPLANNED:
            plan = self._prepare(dialect)
        if plan is None:  # PostgreSQL, a statement SQLAlchemy must render per call
            result = connection.execute(self.statement, params or {})
            return [tuple(row) for row in result] if self._result else []
        values = plan.parameters(params or {})
        dbapi_connection = connection.connection.driver_connection
        try:  # sqlite3's and psycopg's connections both execute on a cursor of their own
            cursor = dbapi_connection.execute(plan.sql, values)  # type: ignore[union-attr]
            found = cursor.fetchall() if cursor.description is not None else []
        except dialect.loaded_dbapi.Error as error:
            gone = dialect.is_disconnect(error, dbapi_connection, None)
            if gone:  # as SQLAlchemy does: the pool replaces the connection
                connection.invalidate(error)
            raise DBAPIError.instance(plan.sql, values, error, dialect.loaded_dbapi.Error,
                                      connection_invalidated=gone) from error
        return plan.converted(found)

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

    def _prepare(self, dialect: Dialect) -> _Plan | None:
        compiled = self.statement.compile(dialect=dialect, column_keys=self.columns)
        named = dialect.name != "sqlite"
        names = (tuple(compiled.bind_names.values()) if named
                 else tuple(compiled.positiontup or ()))
        binds = [compiled.binds[name] for name in names]  # a name may come twice (UNION)
        refused = ""
        if compiled.insert_prefetch or compiled.update_prefetch:
            refused = ("a column default is computed per call; give every column's value "
                       "(columns=)")
        elif any(bind.expanding for bind in binds) or "POSTCOMPILE" in compiled.string:
            refused = "an expanding IN is rendered per call; bind one literal() per value instead"
        elif named and (compiled.escaped_bind_names
                        or set(names) != set(compiled.binds)):
            refused = "its parameters are renamed when rendered"
        if refused:
            if named:  # PostgreSQL: through SQLAlchemy, as any other statement
                self._plans[dialect.name] = None
                return None
            raise TypeError(f"Prepared: {refused}")
        fixed = {name: bind.effective_value for name, bind in zip(names, binds, strict=True)
                 if not bind.required and bind.callable is None}
        to_database = tuple(bind.type.dialect_impl(dialect).bind_processor(dialect)
                            for bind in binds)
        from_database = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None)
                              for column in self._result)
        plan = _Plan(compiled.string, names, fixed, to_database,
                     from_database if any(from_database) else None, named)
        self._plans[dialect.name] = plan
        return plan
