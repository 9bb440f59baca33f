"""Step tests run behind an MTA that authenticates senders (``authres``): a message with
``passed(sender)`` comes from a verified sender, one without it from an unverified one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.config import Settings
from tests.pipeline.build import AUTHSERV


@pytest.fixture
def settings_factory(settings_factory: Callable[..., Settings]) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        overrides.setdefault("sender_authentication", "authres")
        overrides.setdefault("authserv_id", AUTHSERV)
        return settings_factory(**overrides)
    return make


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], request: pytest.FixtureRequest
             ) -> Settings:
    """The test's settings; ``@pytest.mark.parametrize("settings", [{…}], indirect=True)``
    changes some."""
    return settings_factory(**getattr(request, "param", {}))
