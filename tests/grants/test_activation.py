"""Request → activation mail → confirmation page → grant, over real sockets.

The CLI runs as a subprocess (as the support tooling would run it), mail is
delivered into the maildir, the pages are served by ``gateway serve``'s web front
end, and requests go over a real socket.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.config import Settings
from gateway.models import AccessGrant, Person, utcnow
from gateway.runtime.app import Gateway
from tests.conftest import run_gateway
from tests.grants.conftest import activation_link, text_of, wait_for_mail
from tests.grants.http import request
from tests.uploads import private_tempdir, small_form_is_bounded


def _request(settings: Settings, *extra: str) -> None:
    done = run_gateway(settings, "grants", "request", "--team", "acme", *extra)
    assert done.returncode == 0, done.stderr.decode()


def _check(settings: Settings, agent: str, *extra: str) -> int:
    return run_gateway(settings, "grants", "check", "--team", "acme", "--agent", agent,
                       *extra).returncode


def _grants(gateway: Gateway) -> int:
    with gateway.db.reading() as session:
        return session.scalar(select(func.count()).select_from(AccessGrant)) or 0


def test_activation_mail_goes_to_every_authorised_user_in_their_language(
        web: str, settings: Settings) -> None:
    # When Kenji asks for access to Acme with a reason and the export right
    _request(settings, "--agent", "kenji@support.example", "--reason", "Sync fails, ticket 42",
             "--export")
    # Then Anna (German) and Bert (English), who may grant, each get a personal link
    anna = wait_for_mail(settings, 1, To="anna@acme.example")[0]
    bert = wait_for_mail(settings, 1, To="bert@acme.example")[0]
    assert "Zugriffsanfrage für Acme GmbH" in str(anna["Subject"])
    assert "Access request for Acme GmbH" in str(bert["Subject"])
    for mail in (anna, bert):
        text = text_of(mail)
        assert "Kenji <kenji@support.example>" in text and "Sync fails, ticket 42" in text
        assert mail["Auto-Submitted"] == "auto-generated"
        assert mail["From"] == "Example Support <support@support.example>"
        assert "/grants/overview/" in text
    assert activation_link(anna) != activation_link(bert)
    # and Max (no right) and nobody else gets one
    assert not [m for m in wait_for_mail(settings, 2) if "max@" in str(m["To"])]


def test_get_changes_nothing_then_post_grants_one_hour(
        web: str, settings: Settings, gateway: Gateway) -> None:
    _request(settings, "--agent", "kenji@support.example", "--reason", "Check <b>sync</b>")
    link = activation_link(wait_for_mail(settings, 1, To="bert@acme.example")[0])
    # When a mail scanner opens the link three times
    for _ in range(3):
        page = request("GET", link)
        assert page.status == 200 and "Grant support access" in page.body
        assert "Check &lt;b&gt;sync&lt;/b&gt;" in page.body  # user text is escaped
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
    # Then nothing is granted
    assert _grants(gateway) == 0
    assert _check(settings, "kenji@support.example") == 1
    # When the person confirms with the default (1 hour) and no export
    answer = request("POST", link, {"csrf": page.csrf(), "duration": "1h"})
    assert answer.status == 200 and "Access granted" in answer.body
    # Then Kenji is allowed now, not for export, and no longer after the hour
    assert _check(settings, "kenji@support.example") == 0
    assert _check(settings, "kenji@support.example", "--export") == 1
    later = (utcnow() + timedelta(hours=1, minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert _check(settings, "kenji@support.example", "--at", later) == 1
    # and the link is spent: a second use gets the "used" page and grants nothing more
    again = request("POST", link, {"csrf": page.csrf(), "duration": "1w"})
    assert again.status == 410 and "already been used" in again.body
    assert request("GET", link).status == 410
    assert _grants(gateway) == 1
    # and Kenji is told in his language
    granted = wait_for_mail(settings, 1, To="kenji@support.example")[0]
    assert "Access granted for Acme GmbH" in str(granted["Subject"])


def test_export_right_only_when_ticked(web: str, settings: Settings) -> None:
    _request(settings, "--agent", "kenji@support.example", "--reason", "Export the report",
             "--export")
    link = activation_link(wait_for_mail(settings, 1, To="bert@acme.example")[0])
    page = request("GET", link)
    assert 'name="export" value="1">' in page.body and "checked>" not in page.body.split(
        'name="export"')[1][:20]
    assert request("POST", link, {"csrf": page.csrf(), "duration": "2h",
                                  "export": "1"}).status == 200
    assert _check(settings, "kenji@support.example", "--export") == 0


def test_unknown_token_bad_form_and_expired_link(web: str, settings: Settings,
                                                gateway: Gateway) -> None:
    unknown = request("GET", f"{web}/grants/activate/{'A' * 43}")
    assert unknown.status == 404 and "Link not found" in unknown.body
    assert request("POST", f"{web}/grants/activate/x", {"csrf": "0", "duration": "1h"}
                   ).status == 404
    _request(settings, "--agent", "kenji@support.example", "--reason", "Check")
    link = activation_link(wait_for_mail(settings, 1, To="bert@acme.example")[0])
    # A forged or missing CSRF value grants nothing
    assert request("POST", link, {"csrf": "0" * 64, "duration": "1h"}).status == 403
    assert request("POST", link, {"duration": "1h"}).status == 403
    # An unknown duration grants nothing
    csrf = request("GET", link).csrf()
    assert request("POST", link, {"csrf": csrf, "duration": "forever"}).status == 400
    assert _grants(gateway) == 0
    # After 72 hours the link has expired (the server's clock moved on)
    gateway.services.now = lambda: utcnow() + timedelta(hours=72, seconds=1)
    expired = request("POST", link, {"csrf": csrf, "duration": "1h"})
    assert expired.status == 410 and "Link expired" in expired.body
    assert request("GET", link).status == 410
    assert _grants(gateway) == 0


def test_person_who_lost_the_right_cannot_use_the_link(web: str, settings: Settings,
                                                       gateway: Gateway) -> None:
    _request(settings, "--agent", "kenji@support.example", "--reason", "Check")
    link = activation_link(wait_for_mail(settings, 1, To="bert@acme.example")[0])
    csrf = request("GET", link).csrf()
    # Given Bert loses can_grant_access after the page was opened
    with gateway.db.transaction() as session:
        person = session.get(Person, "bert@acme.example")
        assert person is not None
        person.can_grant_access = False
    # Then his confirmation is refused and nothing is granted
    refused = request("POST", link, {"csrf": csrf, "duration": "1h"})
    assert refused.status == 403 and "not (or no longer) authorised" in refused.body
    assert _grants(gateway) == 0


def test_one_answer_per_request_and_department_grant(web: str, settings: Settings) -> None:
    _request(settings, "--department", "support", "--reason", "Migration weekend",
             "--by", "kenji@support.example")
    anna = activation_link(wait_for_mail(settings, 1, To="anna@acme.example")[0])
    bert = activation_link(wait_for_mail(settings, 1, To="bert@acme.example")[0])
    page = request("GET", anna)
    assert page.status == 200 and "Support-Zugriff gewähren" in page.body  # Anna reads German
    assert request("POST", anna, {"csrf": page.csrf(), "duration": "1w"}).status == 200
    # Bert's link of the same request is spent now
    assert request("GET", bert).status == 410
    # Every agent of the support department is allowed; Lena (development) is not
    assert _check(settings, "kenji@support.example") == 0
    assert _check(settings, "marco@support.example") == 0
    assert _check(settings, "lena@support.example") == 1
    assert run_gateway(settings, "grants", "check", "--team", "globex", "--agent",
                       "kenji@support.example").returncode == 1
    # Both agents of the department are told, each in their language
    assert wait_for_mail(settings, 1, To="marco@support.example", Subject="Accesso concesso")


def test_login_needs_a_live_grant_and_is_listed(web: str, settings: Settings) -> None:
    refused = run_gateway(settings, "grants", "login", "--team", "acme", "--agent",
                          "kenji@support.example", "--reason", "Look at sync")
    assert refused.returncode == 1 and b"login refused" in refused.stderr
    _request(settings, "--agent", "kenji@support.example", "--reason", "Check")
    link = activation_link(wait_for_mail(settings, 1, To="bert@acme.example")[0])
    assert request("POST", link, {"csrf": request("GET", link).csrf(),
                                  "duration": "4h"}).status == 200
    before = utcnow()
    done = run_gateway(settings, "grants", "login", "--team", "acme", "--agent",
                       "kenji@support.example", "--reason", "Look at sync")
    assert done.returncode == 0, done.stderr
    listed = json.loads(run_gateway(settings, "grants", "logins", "--team", "acme",
                                    "--json").stdout)
    assert [(x["agent"], x["reason"]) for x in listed] == [("kenji@support.example",
                                                             "Look at sync")]
    assert listed[0]["at"] >= before.isoformat().replace("+00:00", "Z")[:19]
    grants = json.loads(run_gateway(settings, "grants", "list", "--team", "acme",
                                    "--json").stdout)
    assert [(g["agent"], g["duration"], g["state"], g["granted_by"]) for g in grants] == [
        ("kenji@support.example", "4h", "live", "bert@acme.example")]


def test_concurrent_confirmations_grant_once(web: str, settings: Settings,
                                             gateway: Gateway) -> None:
    _request(settings, "--agent", "kenji@support.example", "--reason", "Check")
    links = [activation_link(wait_for_mail(settings, 1, To=to)[0])
             for to in ("anna@acme.example", "bert@acme.example")]
    forms = [(link, {"csrf": request("GET", link).csrf(), "duration": "1h"}) for link in links]
    # When both recipients confirm at once, each twice
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda job: request("POST", *job), forms * 2))
    # Then exactly one grant exists, and every other answer is the "used" page
    assert sorted(a.status for a in answers) == [200, 410, 410, 410]
    assert _grants(gateway) == 1


def test_an_oversized_or_file_carrying_form_is_refused_unread(
        web: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A declared 100 MB body answered unread (413), a chunked one cut off at 64 KB (413),
    # a file refused at once (400): nothing lands on disk, whatever the token
    private_tempdir(monkeypatch, tmp_path)
    small_form_is_bounded(f"{web}/grants/activate/nonexistent")
    small_form_is_bounded(f"{web}/grants/overview/nonexistent/revoke")
