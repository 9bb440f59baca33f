"""Look for a secret wherever the database keeps bytes: the SQLite files themselves (main
file, WAL, shared memory) and, in either database, every column of every table, with
mail bodies decoded (a token in a base64 or quoted-printable part is still a token)."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url

from gateway.models import Base
from gateway.runtime.app import Gateway


def sqlite_files(gateway: Gateway) -> list[Path]:
    """The database file and its -wal/-shm companions (none for PostgreSQL)."""
    url = make_url(gateway.db.url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return []
    main = Path(url.database)
    return [p for p in (main, Path(f"{main}-wal"), Path(f"{main}-shm")) if p.exists()]


def _decoded(value: bytes) -> bytes:
    """Every decoded part of ``value`` if it parses as mail, else nothing extra."""
    if b":" not in value[:200]:
        return b""
    try:
        message = message_from_bytes(value, policy=policy.default)
        payloads = [part.get_payload(decode=True) for part in message.walk()
                    if not part.is_multipart()]
        return b"\n".join(p for p in payloads if isinstance(p, bytes))
    except Exception:  # noqa: BLE001 - not mail after all
        return b""


def _holds(value: object, secret: str, needle: bytes) -> bool:
    if isinstance(value, str):
        return secret in value
    return isinstance(value, bytes) and (needle in value or needle in _decoded(value))


def rows_holding(gateway: Gateway, secret: str) -> list[str]:
    """``table.column`` of every value holding ``secret`` (as text, bytes or decoded mail)."""
    needle = secret.encode()
    found: list[str] = []
    with gateway.db.reading() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                found.extend(f"{table.name}.{column}" for column, value in row.items()
                             if _holds(value, secret, needle))
    return found


def files_holding(gateway: Gateway, secret: str) -> list[str]:
    """SQLite files whose bytes hold ``secret`` or a 16-character piece of either end."""
    pieces = {secret.encode(), secret[:16].encode(), secret[-16:].encode()}
    return [p.name for p in sqlite_files(gateway)
            if any(piece in p.read_bytes() for piece in pieces)]
