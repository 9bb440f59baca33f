"""The announcements a person sees on the hub (gateway/bulk/announcements.py
``visible_announcements``): those meant for their audience, newest first, in their
language when translated."""

from __future__ import annotations

from datetime import date

from gateway.bulk.announcements import create_announcement, visible_announcements
from gateway.models import Person
from gateway.runtime.app import Gateway

TODAY = date(2026, 12, 7)


def _seen(gateway: Gateway, email: str) -> list[tuple[str, str]]:
    with gateway.db.reading() as session:
        person = session.get(Person, email)
        assert person is not None
        return [(a.subject, a.language) for a in visible_announcements(session, person, TODAY)]


def test_people_see_the_announcements_of_their_audiences_newest_first(gateway: Gateway) -> None:
    # Given three announcements: to all (with a German text), to premium teams (acme has a
    # live add-on, globex none), and to team globex
    with gateway.db.transaction() as session:
        for subject, audience, translations in [
                ("Maintenance on Saturday", "all",
                 {"de": {"subject": "Wartung am Samstag", "body": "Von 8 bis 10 Uhr."}}),
                ("Premium webinar", "premium", {}),
                ("Globex: new contact", "team:globex", {})]:
            create_announcement(session, subject=subject, body="Details.", audience=audience,
                                translations=translations, today=TODAY)

    # Then Anna (acme, German) sees the premium one and the German maintenance text
    assert _seen(gateway, "anna@acme.example") == [("Premium webinar", "en"),
                                                   ("Wartung am Samstag", "de")]
    # And Yuki (globex, Japanese: no translation) sees her team's and the English maintenance
    assert _seen(gateway, "yuki@globex.example") == [("Globex: new contact", "en"),
                                                     ("Maintenance on Saturday", "en")]


def test_an_announcement_once_received_stays_visible_after_moving_teams(
        gateway: Gateway) -> None:
    # Given an announcement to team acme while Max belongs to it
    with gateway.db.transaction() as session:
        create_announcement(session, subject="Acme only", body="x", audience="team:acme",
                            translations={}, today=TODAY)
    # When Max moves to globex
    with gateway.db.transaction() as session:
        person = session.get(Person, "max@acme.example")
        assert person is not None
        person.team_id = "globex"
    # Then he still sees what he was sent, and a new acme member would not
    assert _seen(gateway, "max@acme.example") == [("Acme only", "en")]
    assert _seen(gateway, "giulia@globex.example") == []
