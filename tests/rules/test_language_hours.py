"""Japanese hours decided once: queue, due time and the answer's language always agree.

MISSION §1: Japanese support Mon-Fri 09:00-17:00 JST, answered within one hour in those
hours; a Japanese request outside them is served in English.  The ja queue keeps a request
only when its hour fits inside those hours (arrival ≤ 16:00 JST on a business day), so a
ja ticket is always due while Japanese agents work; any later request goes to the English
queue with the entitlement's own due time (a premium "1 h, 24/7" is kept), and its
acknowledgement, in Japanese, says the answer comes in English.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.runtime.app import Gateway
from gateway.views import ticket_view
from rules.engine import Addon, Request, decide
from rules.policy import load_policy
from tests.conftest import run_gateway
from tests.rules.tickets import outbox_mail, plain_text, ticket_at

POLICY = load_policy()
TOKYO = ZoneInfo("Asia/Tokyo")
JAPANESE = POLICY.calendar("japanese")
ENHANCED = (Addon("files", "enhanced", date(2026, 1, 1), None),)

# (label, arrival in JST, the queue that must serve it); 2026-11-20 is a Friday.
BOUNDARIES = [
    ("Friday 16:00, the last hour that fits", "2026-11-20 16:00", "ja"),
    ("Friday 16:01", "2026-11-20 16:01", "en"),
    ("Friday 16:45 (the issue's case)", "2026-11-20 16:45", "en"),
    ("just before 17:00", "2026-11-20 16:59", "en"),
    ("17:00 sharp", "2026-11-20 17:00", "en"),
    ("just after 17:00", "2026-11-20 17:01", "en"),
    ("Friday evening", "2026-11-20 20:00", "en"),
    ("Saturday noon", "2026-11-21 12:00", "en"),
    ("Monday 08:59", "2026-11-23 08:59", "en"),
    ("Monday 09:00", "2026-11-23 09:00", "ja"),
    ("Tuesday 16:59", "2026-11-24 16:59", "en"),
]
TERMS = {"standard": (), "enhanced": ENHANCED}


def jst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TOKYO)


@pytest.mark.parametrize("tier", sorted(TERMS))
@pytest.mark.parametrize(("label", "when", "queue"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_queue_due_time_and_answer_language_agree(label: str, when: str, queue: str,
                                                   tier: str) -> None:
    # Given a Japanese request at a boundary of Japanese hours, standard or Enhanced
    request = Request(at=jst(when), sender="yuki@globex.example", kind="person", team="globex",
                      addons=TERMS[tier], product="files", language="ja")

    # When the engine decides it
    found = decide(request, POLICY)
    english = decide(Request(**{**request.__dict__, "language": "en"}), POLICY)

    # Then one decision names the queue, the language of the answer and the due time
    assert (found.queue, found.language, found.tier) == (queue, queue, tier), found.text
    if queue == "ja":
        # ... a ja ticket is due inside Japanese hours, open all the way from arrival
        assert JAPANESE.open_time_between(found.received_at, found.due) == \
            found.due - found.received_at
        assert found.due - found.received_at <= timedelta(hours=1)
        assert found.outside_hours_of == ""
        assert "inside japanese hours" in found.text
    else:
        # ... otherwise English answers it by the English due time, and says it was Japanese
        assert found.due == english.due
        assert found.outside_hours_of == "ja"
        assert "served in en from the en queue" in found.text
    assert found.text.endswith(f"answered in {queue} from the {queue} queue")
    if tier == "enhanced":
        # Enhanced is 1 h around the clock: no Japanese calendar may push it to Monday
        assert found.due == found.received_at + timedelta(hours=1)


@pytest.fixture
def hours_gateway(gateway: Gateway, tmp_path: Path) -> Gateway:
    directory = tmp_path / "japanese.toml"
    directory.write_text('[[people]]\nemail = "hiro@acme.example"\nname = "Hiro Sato"\n'
                         'team = "acme"\nrole = "member"\nlanguage = "ja"\n', encoding="utf-8")
    with gateway.db.transaction() as session:
        load_directory_file(session, directory)
    return gateway


@pytest.mark.parametrize(("when", "queue", "due", "promise"), [
    ("2026-11-20T16:45:00+09:00", "en", "2026-11-20T08:45:00Z", "1 時間以内にご回答いたします。"),
    ("2026-11-20T15:30:00+09:00", "ja", "2026-11-20T07:30:00Z", "1 時間以内にご回答いたします。"),
    ("2026-11-23T08:59:00+09:00", "en", "2026-11-23T00:59:00Z", "1 時間以内にご回答いたします。"),
])
def test_ticket_acknowledgement_and_explain_tell_the_same_decision(
        hours_gateway: Gateway, settings: Settings, when: str, queue: str, due: str,
        promise: str) -> None:
    # Given a Japanese-speaking member of an Enhanced team writing at ``when``
    ticket = ticket_at(hours_gateway, when, sender="hiro@acme.example", to="files@support.example")

    # Then the ticket's queue and due time are the decision's
    view = ticket_view(ticket, with_messages=False)
    assert (view["queue"], view["tier"], view["first_response_due"]) == (queue, "enhanced", due)
    assert view["language"] == "ja"  # the requester's language: what we write to them in

    # And the acknowledgement, in Japanese, promises that time and names the answer's language
    [ack] = outbox_mail(hours_gateway, ticket, "acknowledgement")
    text = plain_text(ack)
    assert promise in text
    assert ("英語でご回答いたします。" in text) == (queue == "en")

    # And `rules explain` shows the same decision, with the reason
    result = run_gateway(settings, "rules", "explain", "--from", "hiro@acme.example",
                         "--to", "files@support.example", "--at", when, "--json")
    assert result.returncode == 0, result.stderr
    explained = json.loads(result.stdout)
    assert (explained["queue"], explained["language"], explained["first_response_due"]) == (
        queue, queue, due)
    assert explained["outside_hours_of"] == ("ja" if queue == "en" else None)
    assert "; ".join(explained["explanation"]) == ticket.entitlement

