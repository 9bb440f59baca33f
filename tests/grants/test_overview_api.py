"""Overview page (signed link, revoke with CSRF), the check API, expiring notices."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from gateway.config import Settings
from gateway.grants.expiry import notify_expiring
from gateway.grants.service import activate, request_access
from gateway.models import OutboxItem, Person, utcnow
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from outbound.sealing import live_bytes
from tests.conftest import run_gateway, wait_for_port
from tests.grants.conftest import (
    API_KEY,
    activation_link,
    overview_link,
    text_of,
    wait_for_mail,
)
from tests.grants.http import request


def _grant(settings: Settings, duration: str = "1w") -> str:
    """Request and activate through the real page; return Bert's overview link."""
    done = run_gateway(settings, "grants", "request", "--team", "acme", "--agent",
                       "kenji@support.example", "--reason", "Check sync")
    assert done.returncode == 0, done.stderr
    mail = wait_for_mail(settings, 1, To="bert@acme.example")[0]
    link = activation_link(mail)
    assert request("POST", link, {"csrf": request("GET", link).csrf(),
                                  "duration": duration}).status == 200
    return overview_link(mail)


def _allowed(settings: Settings) -> bool:
    return run_gateway(settings, "grants", "check", "--team", "acme", "--agent",
                       "kenji@support.example").returncode == 0


def test_revoke_from_the_overview_ends_access_at_once(web: str, settings: Settings) -> None:
    overview = _grant(settings)
    page = request("GET", overview)
    assert page.status == 200 and 'id="live"' in page.body and "Check sync" in page.body
    assert page.headers["x-frame-options"] == "DENY"
    assert _allowed(settings)
    grant_id = page.body.split('name="grant" value="')[1].split('"')[0]
    # A GET of the revoke address or a POST without CSRF changes nothing
    assert request("GET", f"{overview}/revoke").status == 405
    assert request("POST", f"{overview}/revoke", {"grant": grant_id}).status == 403
    # nor does a grant that is no number ("²" is a digit to str.isdigit(), none to int())
    for odd in ("\u00b2", "9" * 5000, "99999999999999999999"):
        assert request("POST", f"{overview}/revoke", {"csrf": page.csrf(), "grant": odd}
                       ).status == 400
    assert _allowed(settings)
    # When Bert revokes from the page
    answer = request("POST", f"{overview}/revoke", {"csrf": page.csrf(), "grant": grant_id})
    assert answer.status == 303
    # Then access ends at once, the page says so, and Kenji is told
    assert not _allowed(settings)
    after = request("GET", f"{overview}?done=revoked")
    assert 'id="no-live"' in after.body and "revoked" in after.body
    assert wait_for_mail(settings, 1, To="kenji@support.example", Subject="Access revoked")


def test_overview_link_is_signed_and_personal(web: str, settings: Settings,
                                              gateway: Gateway) -> None:
    overview = _grant(settings)
    forged = overview[:-3] + ("AAA" if not overview.endswith("AAA") else "BBB")
    assert request("GET", forged).status == 403
    with gateway.db.transaction() as session:
        person = session.get(Person, "bert@acme.example")
        assert person is not None
        person.can_grant_access = False
    gone = request("GET", overview)
    assert gone.status == 403 and "Overview link not valid" in gone.body


def test_check_api_needs_the_key(web: str, settings: Settings) -> None:
    url = f"{web}/api/grants/check?team=acme&agent=kenji@support.example"
    assert request("GET", url).status == 401
    assert request("GET", url, headers={"Authorization": "Bearer wrong"}).status == 401
    auth = {"Authorization": f"Bearer {API_KEY}"}
    denied = request("GET", url, headers=auth)
    assert denied.status == 200 and '"allowed":false' in denied.body
    _grant(settings)
    assert '"allowed":true' in request("GET", url, headers=auth).body
    assert '"allowed":false' in request("GET", url + "&export=1", headers=auth).body


@pytest.fixture
def keyless_web(settings_factory: Callable[..., Settings], gateway: Gateway
                ) -> Iterator[str]:
    """A second front end on the same database with no API key configured."""
    settings = settings_factory(database_url=gateway.settings.database_url)
    other = Gateway(settings)
    server = GatewayServer(other, run_worker=False, run_web=True)
    server.start()
    host, port = settings.web_listen.rsplit(":", 1)
    wait_for_port(host, int(port))
    yield f"http://{settings.web_listen}"
    server.stop()


def test_check_api_without_a_configured_key_is_closed(keyless_web: str) -> None:
    answer = request("GET", f"{keyless_web}/api/grants/check?team=acme&agent=a@b.example",
                     headers={"Authorization": "Bearer "})
    assert answer.status == 503


def _token_from_outbox(gateway: Gateway, outbox_id: int) -> str:
    """The activation token as its recipient will read it: the queued mail's live copy
    (sealed under the gateway key; the stored ``raw`` has it redacted)."""
    with gateway.db.reading() as session:
        item = session.get(OutboxItem, outbox_id)
        assert item is not None
        mail = message_from_bytes(live_bytes(gateway.services.secret, item),
                                  policy=policy.default)
    return activation_link(mail).rsplit("/", 1)[1]


def test_expiring_notice_once_and_only_for_grants_longer_than_a_day(gateway: Gateway) -> None:
    services = gateway.services
    start = utcnow()
    tokens: dict[str, str] = {}
    for agent in ("kenji@support.example", "lena@support.example"):
        with gateway.db.transaction() as session:
            outbox_ids = request_access(session, services, "acme", agent_email=agent,
                                        reason="r")
        tokens[agent] = _token_from_outbox(gateway, outbox_ids[0])
    # Given Kenji was granted a week and Lena 4 hours
    with gateway.db.transaction() as session:
        activate(session, services, tokens["kenji@support.example"], duration="1w",
                 export=False, now=start)
        activate(session, services, tokens["lena@support.example"], duration="4h",
                 export=False, now=start)
    # Two days in: nothing is due
    assert notify_expiring(gateway.db, services, start + timedelta(days=2)) == []
    # Just before Lena's 4 hours end: no notice, her grant is not longer than a day
    assert notify_expiring(gateway.db, services, start + timedelta(hours=3, minutes=59)) == []
    # Six and a half days in: both authorised users are told about Kenji's grant, once
    due = notify_expiring(gateway.db, services, start + timedelta(days=6, hours=12))
    assert len(due) == 2
    assert notify_expiring(gateway.db, services, start + timedelta(days=6, hours=13)) == []
    with gateway.db.reading() as session:
        rows = [session.get(OutboxItem, i) for i in due]
        assert sorted(r.rcpt_to for r in rows if r) == ["anna@acme.example",
                                                       "bert@acme.example"]
        for row in rows:
            assert row is not None and row.kind == "grant_expiring"
            mail = message_from_bytes(row.raw, policy=policy.default)
            assert "/grants/overview/" in text_of(mail)
            assert "kenji@support.example" in text_of(mail)


def test_serve_tells_authorised_users_of_a_grant_ending_soon(
        gateway: Gateway, settings: Settings, running: GatewayServer) -> None:
    # Given Kenji was granted a week six and a half days ago (it ends in 12 hours)
    with gateway.db.transaction() as session:
        outbox_ids = request_access(session, gateway.services, "acme",
                                    agent_email="kenji@support.example", reason="r")
    token = _token_from_outbox(gateway, outbox_ids[0])
    with gateway.db.transaction() as session:
        activate(session, gateway.services, token, duration="1w", export=False,
                 now=utcnow() - timedelta(days=6, hours=12))
    # Then the scheduler of the running serve mails both authorised users (Anna in German)
    for person, subject in (("anna@acme.example", "endet bald"),
                            ("bert@acme.example", "ends soon")):
        [mail] = wait_for_mail(settings, 1, To=person, Subject=subject)
        assert "kenji@support.example" in text_of(mail)
    # … once each, however many passes run
    time.sleep(2.5)
    with gateway.db.reading() as session:
        assert sorted(session.scalars(select(OutboxItem.rcpt_to).where(
            OutboxItem.kind == "grant_expiring"))) == ["anna@acme.example", "bert@acme.example"]
