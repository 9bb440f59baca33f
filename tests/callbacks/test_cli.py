"""``gateway callbacks list [--json] [--all]`` and ``gateway callbacks done ID``, run as the
real command against the database the bookings were written to."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from gateway.config import Settings
from gateway.runtime.app import Gateway
from tests.callbacks.conftest import book
from tests.conftest import run_gateway


def _list(settings: Settings, *flags: str) -> list[dict[str, Any]]:
    result = run_gateway(settings, "callbacks", "list", "--json", *flags)
    assert result.returncode == 0, result.stderr.decode()
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_agents_list_open_call_backs_earliest_first_and_mark_one_done(
        clocked: Gateway, settings: Settings) -> None:
    # Given Anna booked Wednesday and Max Tuesday (both Berlin time)
    anna, _ = book(clocked, day=date(2026, 12, 9), topic="Quarterly review")
    max_, _ = book(clocked, "max@acme.example", hours=(9, 10))

    # When an agent lists the open call-backs
    rows = _list(settings)

    # Then both are there, the earliest window first, with what an agent needs to call
    assert [r["id"] for r in rows] == [max_, anna]
    assert rows[0] == {
        "id": max_, "status": "open", "person": "max@acme.example", "team": "acme",
        "phone": "+49 (0)221 123-4567", "topic": "Sync conflicts",
        "starts_at": "2026-12-08T08:00:00Z", "ends_at": "2026-12-08T09:00:00Z",
        "timezone": "Europe/Berlin",
        "window": "Tue 2026-12-08 09:00–10:00 Europe/Berlin (08:00–09:00 UTC)",
        "created_at": rows[0]["created_at"], "done_at": None, "done_by": ""}
    text = run_gateway(settings, "callbacks", "list")
    assert text.returncode == 0 and b"max@acme.example (acme)  Sync conflicts" in text.stdout

    # When the agent marks Max's call done
    done = run_gateway(settings, "callbacks", "done", str(max_), "--by", "kenji@support.example")

    # Then it says so, the open list holds Anna's only, and --all shows both
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == f"call-back {max_} marked done"
    assert [r["id"] for r in _list(settings)] == [anna]
    everything = _list(settings, "--all")
    assert [(r["id"], r["status"], r["done_by"]) for r in everything] == [
        (anna, "open", ""), (max_, "done", "kenji@support.example")]
    assert everything[1]["done_at"] is not None

    # And marking it again changes nothing and says so
    again = run_gateway(settings, "callbacks", "done", str(max_))
    assert again.returncode == 0
    assert again.stdout.decode().strip() == f"call-back {max_} was done already"


def test_done_with_an_unknown_id_fails_with_one_sentence(clocked: Gateway,
                                                         settings: Settings) -> None:
    result = run_gateway(settings, "callbacks", "done", "999")
    assert result.returncode == 1
    assert result.stderr.decode().strip() == "error: there is no call-back 999"
    empty = run_gateway(settings, "callbacks", "list")
    assert empty.returncode == 0 and empty.stdout.decode().strip() == "no open call-backs"
