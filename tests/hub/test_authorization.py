"""Every authorization edge of the hub, over a real socket: decided on the server from the
session and the directory for every page and form, never from what a page shows."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update

from gateway.config import Settings
from gateway.models import SpoolEntry, Ticket
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from inbound.spool import HUB_SOURCE
from tests.e2e.test_conversations import open_ticket, passed
from tests.hub.conftest import ANNA, GIULIA, MAX, signed_in
from tests.hub.http import Browser


def hub_rows(gateway: Gateway) -> int:
    with gateway.db.reading() as session:
        return int(session.scalar(select(func.count()).select_from(SpoolEntry).where(
            SpoolEntry.source == HUB_SOURCE)) or 0)


def test_without_a_session_pages_send_to_sign_in_and_posts_are_refused(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    number, _ = open_ticket(settings, gateway, sender=MAX, headers=passed("acme.example"))
    stranger = Browser()
    for path in ("/tickets", f"/tickets/{number}", "/tickets?scope=team", "/new"):
        page = stranger.get(f"{hub}{path}")
        assert page.status == 303 and page.location == f"{hub}/sign-in", path
    # A forged session cookie is no session either
    stranger.cookies["hub_session"] = "x" * 43
    assert stranger.get(f"{hub}/tickets").status == 303
    refused = stranger.post(f"{hub}/tickets/{number}/reply", {"csrf": "0" * 64, "text": "hi"})
    assert refused.status == 403 and 'data-kind="signed_out"' in refused.body
    assert stranger.post(f"{hub}/new", {"subject": "s", "text": "t"}).status == 403
    assert hub_rows(gateway) == 0


def test_a_member_cannot_open_a_colleagues_ticket_nor_the_team_view(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    annas, _ = open_ticket(settings, gateway, sender=ANNA, subject="Admin's own",
                           headers=passed("acme.example"))
    max_browser = signed_in(settings, hub, MAX)
    hidden = max_browser.get(f"{hub}/tickets/{annas}")
    missing = max_browser.get(f"{hub}/tickets/999999")
    # 404, and word for word the page of a ticket that does not exist
    assert hidden.status == missing.status == 404
    assert hidden.body == missing.body
    assert "Admin's own" not in hidden.body
    csrf = max_browser.get(f"{hub}/tickets").csrf()
    assert max_browser.post(f"{hub}/tickets/{annas}/reply",
                            {"csrf": csrf, "text": "let me in"}).status == 404
    team = max_browser.get(f"{hub}/tickets?scope=team")
    assert team.status == 403 and "Admin's own" not in team.body
    assert 'id="nav-team"' not in max_browser.get(f"{hub}/tickets").body
    assert hub_rows(gateway) == 0


def test_an_admin_of_another_team_sees_nothing_of_it(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    number, _ = open_ticket(settings, gateway, sender=MAX, subject="Acme only",
                            headers=passed("acme.example"))
    giulia = signed_in(settings, hub, GIULIA)
    assert giulia.get(f"{hub}/tickets/{number}").status == 404
    team = giulia.get(f"{hub}/tickets?scope=team")
    assert team.status == 200 and "Acme only" not in team.body
    csrf = team.csrf()
    assert giulia.post(f"{hub}/tickets/{number}/reply",
                       {"csrf": csrf, "text": "hello"}).status == 404
    assert hub_rows(gateway) == 0


def test_an_admins_team_view_honours_the_cut_off(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    old, _ = open_ticket(settings, gateway, sender=MAX, subject="From last year",
                         headers=passed("acme.example"))
    new, _ = open_ticket(settings, gateway, sender=MAX, subject="From this week",
                         headers=passed("acme.example"))
    before_cutoff = datetime(2024, 12, 10, 23, 59, tzinfo=UTC)  # cut-off: 2024-12-11
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == old).values(
            created_at=before_cutoff, updated_at=before_cutoff))
    anna = signed_in(settings, hub, ANNA)
    team = anna.get(f"{hub}/tickets?scope=team")
    assert team.status == 200
    assert f'data-number="{new}"' in team.body and f'data-number="{old}"' not in team.body
    assert anna.get(f"{hub}/tickets/{new}").status == 200
    assert anna.get(f"{hub}/tickets/{old}").status == 404
    # Updated on the cut-off day: a team ticket again
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == old).values(
            updated_at=datetime(2024, 12, 11, tzinfo=UTC)))
    assert f'data-number="{old}"' in anna.get(f"{hub}/tickets?scope=team").body
    assert anna.get(f"{hub}/tickets/{old}").status == 200
    # Max still sees both of his own, whatever the cut-off
    mine = signed_in(settings, hub, MAX).get(f"{hub}/tickets").body
    assert f'data-number="{old}"' in mine and f'data-number="{new}"' in mine


def test_a_post_without_or_with_a_wrong_csrf_value_changes_nothing(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    number, _ = open_ticket(settings, gateway, sender=MAX, headers=passed("acme.example"))
    max_browser = signed_in(settings, hub, MAX)
    other = signed_in(settings, hub, MAX)  # a second session: its value is not this one's
    foreign = other.get(f"{hub}/tickets").csrf()
    for form in ({"text": "no token"}, {"text": "wrong", "csrf": "0" * 64},
                 {"text": "foreign", "csrf": foreign}):
        page = max_browser.post(f"{hub}/tickets/{number}/reply", form)
        assert page.status == 403 and 'data-kind="csrf"' in page.body
        new = max_browser.post(f"{hub}/new", {**form, "subject": "s", "category": "technical"})
        assert new.status == 403
    signed_out = max_browser.post(f"{hub}/sign-out", {"csrf": foreign})
    assert signed_out.status == 403
    assert max_browser.get(f"{hub}/tickets").status == 200  # still signed in
    assert hub_rows(gateway) == 0


def test_numbers_no_page_can_read_are_a_404_or_the_first_page_never_an_error(
        web: GatewayServer, gateway: Gateway, settings: Settings, hub: str) -> None:
    number, _ = open_ticket(settings, gateway, sender=MAX, headers=passed("acme.example"))
    browser = signed_in(settings, hub, MAX)
    first = browser.get(f"{hub}/tickets")
    # "²" is a digit to str.isdigit() and none to int(); 5,000 digits are too many for int()
    for page in ("%C2%B2", "1" * 5000, "0", "-1"):
        listed = browser.get(f"{hub}/tickets?page={page}")
        assert listed.status == 200 and f"#{number}" in listed.body, page
    for path in ("9" * 30, "9" * 5000, "%C2%B2", "abc", "2147483648"):
        assert browser.get(f"{hub}/tickets/{path}").status == 404, path
        assert browser.post(f"{hub}/tickets/{path}/reply",
                            {"csrf": first.csrf(), "text": "hello"}).status == 404, path
    assert hub_rows(gateway) == 0
