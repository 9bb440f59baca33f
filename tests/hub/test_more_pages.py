"""The hub's insights, recommendations, announcements and call-back pages over a real socket:
insights only for admins and only of their own team; a call-back booked once, refused the
second time and without a CSRF token, the refusals worded in the visitor's language."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

from sqlalchemy import select

from gateway.bulk.announcements import create_announcement
from gateway.config import Settings
from gateway.models import Callback, OutboxItem, Ticket, TicketStatus
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.conftest import wait_for
from tests.hub.conftest import ANNA, GIULIA, MAX, YUKI, signed_in
from tests.hub.http import Page


def _tickets(gateway: Gateway) -> None:
    """acme: 2 open files/sync tickets and a solved dash/billing one; globex: 1 open restore."""
    created = datetime(2026, 11, 2, 9, tzinfo=UTC)
    with gateway.db.transaction() as session:
        session.add_all(Ticket(subject=f"t{n}", requester=requester, team_id=team,
                               product=product, issue_type=kind, status=status,
                               created_at=created, updated_at=created)
                        for n, (requester, team, product, kind, status) in enumerate([
                            (MAX, "acme", "files", "sync", TicketStatus.OPEN),
                            (ANNA, "acme", "files", "sync", TicketStatus.NEW),
                            (MAX, "acme", "dash", "billing", TicketStatus.SOLVED),
                            (YUKI, "globex", "files", "restore", TicketStatus.OPEN)]))


def _cell(page: Page, cell_id: str) -> str:
    found = re.search(rf'id="{cell_id}">([^<]*)<', page.body)
    assert found, page.body
    return unescape(found.group(1))


def _rows(page: Page, table: str) -> dict[str, str]:
    found = re.search(rf'<table id="{table}".*?</table>', page.body, re.S)
    assert found, page.body
    return dict(re.findall(r'<tr data-key="([^"]+)"><td>[^<]*</td><td>(\d+)</td>',
                           found.group(0)))


def test_insights_are_for_admins_and_show_only_their_own_team(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    _tickets(gateway)
    # Given Max (member of acme): no insights link, and the page is refused
    max_browser = signed_in(settings, hub, MAX)
    assert 'id="nav-insights"' not in max_browser.get(f"{hub}/tickets").body
    refused = max_browser.get(f"{hub}/insights")
    assert refused.status == 403 and 'data-kind="admins_only"' in refused.body
    assert 'id="open-tickets"' not in refused.body

    # When Anna (admin of acme, German) opens insights
    anna = signed_in(settings, hub, ANNA)
    page = anna.get(f"{hub}/insights")

    # Then she sees acme's numbers, in German
    assert page.status == 200 and '<html lang="de">' in page.body
    assert "Einblicke" in page.body and 'id="nav-insights" aria-current="page"' in page.body
    assert (_cell(page, "open-tickets"), _cell(page, "total-requests")) == ("2", "3")
    assert _rows(page, "issue-types") == {"sync": "2", "billing": "1"}
    assert _rows(page, "products") == {"files": "2", "dash": "1"}
    assert _cell(page, "satisfaction") == "Noch keine Antwort bewertet"

    # And Giulia (admin of globex) sees globex's only, whatever the query asks for
    giulia = signed_in(settings, hub, GIULIA).get(f"{hub}/insights?team=acme")
    assert giulia.status == 200 and '<html lang="it">' in giulia.body
    assert (_cell(giulia, "open-tickets"), _cell(giulia, "total-requests")) == ("1", "1")
    assert _rows(giulia, "issue-types") == {"restore": "1"}
    assert "sync" not in giulia.body and "billing" not in giulia.body


def _weekday_ahead(days: int) -> date:
    day = datetime.now(UTC).date() + timedelta(days=days)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def _callbacks(gateway: Gateway) -> list[tuple[str, str]]:
    with gateway.db.reading() as session:
        return [(c.person_email, c.topic) for c in session.scalars(
            select(Callback).order_by(Callback.id))]


def test_a_call_back_is_booked_once_refused_twice_and_never_without_csrf(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    anna = signed_in(settings, hub, ANNA)
    form = anna.get(f"{hub}/callback")
    assert form.status == 200 and 'id="callback-form"' in form.body
    assert '<option value="Europe/Berlin" selected>' in form.body  # proposed for German
    day = _weekday_ahead(2).isoformat()
    booking = {"topic": "Sync <script>conflicts</script>", "phone": "+49 221 1234567",
               "day": day, "start": "14", "end": "16", "timezone": "Europe/Berlin"}

    # A POST without the CSRF token, or with another, books nothing
    missing = anna.post(f"{hub}/callback", booking)
    wrong = anna.post(f"{hub}/callback", {**booking, "csrf": "0" * 64})
    assert missing.status == wrong.status == 403
    assert 'data-kind="csrf"' in missing.body and 'data-kind="csrf"' in wrong.body
    assert _callbacks(gateway) == []

    # A refused booking says why in Anna's language and books nothing
    bad = anna.post(f"{hub}/callback", {**booking, "phone": "call me", "csrf": form.csrf()})
    assert bad.status == 400 and 'data-problem="callback_refused_phone"' in bad.body
    assert "Bitte geben Sie eine Telefonnummer" in bad.body
    assert 'value="Sync &lt;script&gt;conflicts&lt;/script&gt;"' in bad.body  # kept, escaped
    assert _callbacks(gateway) == []

    # When she books with the form's token
    done = anna.post(f"{hub}/callback", {**booking, "csrf": form.csrf()})

    # Then she is sent back to the page, which shows her booking
    assert done.status == 303 and done.location == f"{hub}/callback?notice=callback_booked"
    shown = anna.get(done.location)
    assert 'data-notice="callback_booked"' in shown.body and 'id="booked"' in shown.body
    assert f"{day} 14:00–16:00 Europe/Berlin" in shown.body
    assert "&lt;script&gt;" in shown.body and "<script>" not in shown.body
    assert 'id="callback-form"' not in shown.body
    assert _callbacks(gateway) == [(ANNA, "Sync <script>conflicts</script>")]
    # And the agents of the directory got the mail (no agents_address in these tests)
    wait_for(lambda: _agents_mail(gateway), message="callback_requested delivered")

    # When she posts a second booking (an old tab)
    second = anna.post(f"{hub}/callback", {**booking, "topic": "Another",
                                           "csrf": form.csrf()})
    # Then it is refused naming the open one, and nothing more is stored
    assert second.status == 409
    assert 'data-problem="callback_refused_already_booked"' in second.body
    [callback_id] = [c for c in re.findall(r'data-callback="(\d+)"', second.body)]
    assert f"(#{callback_id})" in second.body
    assert len(_callbacks(gateway)) == 1

    # And another admin may still book their own
    giulia = signed_in(settings, hub, GIULIA)
    token = giulia.get(f"{hub}/callback").csrf()
    assert giulia.post(f"{hub}/callback", {**booking, "csrf": token}).status == 303
    assert [who for who, _ in _callbacks(gateway)] == [ANNA, GIULIA]

    # But a member has no live support (MISSION §1): neither the form nor a booking,
    # even with a valid CSRF value of their own session
    max_browser = signed_in(settings, hub, MAX)
    assert max_browser.get(f"{hub}/callback").status == 403
    token = max_browser.get(f"{hub}/tickets").csrf()
    assert max_browser.post(f"{hub}/callback", {**booking, "csrf": token}).status == 403
    assert 'id="nav-callback"' not in max_browser.get(f"{hub}/tickets").body
    assert [who for who, _ in _callbacks(gateway)] == [ANNA, GIULIA]


def _agents_mail(gateway: Gateway) -> bool:
    with gateway.db.reading() as session:
        return bool(session.scalars(select(OutboxItem).where(
            OutboxItem.kind == "callback_requested", OutboxItem.status == "sent",
            OutboxItem.rcpt_to == "kenji@support.example")).first())


def test_members_see_recommendations_and_their_announcements(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    with gateway.db.transaction() as session:
        create_announcement(session, subject="Wartung <b>Samstag</b>", body="Zeile 1\nZeile 2",
                            audience="team:acme", translations={},
                            today=datetime.now(UTC).date())
        create_announcement(session, subject="Globex only", body="x", audience="team:globex",
                            translations={}, today=datetime.now(UTC).date())
    max_browser = signed_in(settings, hub, MAX)
    page = max_browser.get(f"{hub}/announcements")
    assert page.status == 200 and "Wartung &lt;b&gt;Samstag&lt;/b&gt;" in page.body
    assert "Zeile 1\nZeile 2" in page.body and "Globex only" not in page.body
    recommendations = max_browser.get(f"{hub}/recommendations")
    assert recommendations.status == 200 and "Empfehlungen" in recommendations.body
    assert 'id="no-articles"' in recommendations.body  # the test directory has no articles
