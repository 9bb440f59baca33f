"""What pipeline steps and actors need besides the database: settings, keys, renderer, clock."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from gateway.config import Settings
from gateway.models import utcnow
from outbound.render import Renderer

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from inbound.parsing.analysis import Analysis

__all__ = ["Services"]


@dataclass
class Services:
    settings: Settings
    secret: bytes
    renderer: Renderer
    now: Callable[[], datetime] = field(default=utcnow)
    analyzer: Callable[[bytes, str], Analysis] | None = None
    """Set by a running worker: analysis in a child process stopped at the processing
    budget (``gateway.pipeline.analysis_pool``); None: in the calling thread."""
    turn: Callable[[], AbstractContextManager[None]] = nullcontext
    """The processing lane of ``serve`` (``inbound.intake_priority``): held for the
    pipeline's transaction, not while a child analyses."""
    ride_along: Callable[[Session], None] | None = None
    """Writes that commit with the pipeline's transaction, after its last step (a
    processing child's deliveries staged for the previous message: one commit, not two,
    in SQLite's one writer lane); each must contain its own failures (a savepoint)."""
