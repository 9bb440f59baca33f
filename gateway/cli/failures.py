"""One line about an error for stderr, shared by ``main`` and by ``ingest``'s 75 answer.

A module of its own so that ``ingest`` can say why a message was not stored without
importing the root group that registers it.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError

__all__ = ["describe"]


def describe(error: BaseException) -> str:
    """One line about ``error``: the driver's message for database errors, no SQL, no URL."""
    if isinstance(error, SQLAlchemyError):
        orig = getattr(error, "orig", None)
        text = str(orig) if orig is not None else str(error)
    elif isinstance(error, OSError) and error.strerror:
        text = f"{error.strerror}: {error.filename}" if error.filename else error.strerror
    else:
        text = str(error)
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line or type(error).__name__
