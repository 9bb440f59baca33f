"""The rules tests run behind an MTA that authenticates senders (``authres``): premium
terms, champions and reopening belong to verified senders only, and the helpers of
``tests/rules/tickets.py`` send mail as the genuine directory people they name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gateway.config import Settings
from tests.rules.tickets import AUTHSERV


@pytest.fixture
def settings_factory(settings_factory: Callable[..., Settings]) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        overrides.setdefault("sender_authentication", "authres")
        overrides.setdefault("authserv_id", AUTHSERV)
        return settings_factory(**overrides)
    return make
