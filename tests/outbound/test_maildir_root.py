"""An existing but empty maildir root (made by an installer, a volume mount or ``mkdir``)
takes mail: the transport makes the missing ``tmp``/``new``/``cur`` itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.models import OutboxItem, OutboxStatus
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import wait_for
from tests.mail import maildir_messages, make_mail, send


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    root = tmp_path / "empty-sent"
    root.mkdir()
    return settings_factory(outbound_url=f"maildir:{root}")


def test_an_empty_existing_maildir_root_receives_the_acknowledgement(
        settings: Settings, gateway: Gateway, running: GatewayServer) -> None:
    root = Path(settings.outbound_url.removeprefix("maildir:"))
    assert list(root.iterdir()) == []
    send(settings.smtp_listen, make_mail(subject="Printer on fire"))
    (ack,) = wait_for(lambda: maildir_messages(root), timeout=60,
                      message="acknowledgement in the maildir")
    assert "Printer on fire" in str(ack["Subject"])
    assert sorted(p.name for p in root.iterdir()) == ["cur", "new", "tmp"]

    def statuses() -> list[OutboxStatus]:
        with gateway.db.reading() as session:
            return list(session.scalars(select(OutboxItem.status)))
    wait_for(lambda: statuses() == [OutboxStatus.SENT], message="the outbox row sent")
