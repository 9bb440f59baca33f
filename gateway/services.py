"""What pipeline steps and actors need besides the database: settings, keys, renderer, clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from gateway.config import Settings
from gateway.models import utcnow
from outbound.render import Renderer

__all__ = ["Services"]


@dataclass
class Services:
    settings: Settings
    secret: bytes
    renderer: Renderer
    now: Callable[[], datetime] = field(default=utcnow)
