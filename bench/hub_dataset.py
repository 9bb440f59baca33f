"""The data set of ``bench/hub_pages.py``: a big team and a small one, with realistic tickets.

Loaded the fast way (the directory through its loader, tickets, messages and participants
as bulk inserts through the models), so that 10,000 tickets take seconds, not the hours
the pipeline would.  The mix is what a support desk of two years looks like: both
products, the three categories, every issue type, several members per team, old tickets
mostly solved or closed and recent ones mostly open, creation and update dates on both
sides of the colleague cut-off, a few duplicates, and one to four messages per ticket
(the request, agents' answers, a colleague's reply, an internal note).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from gateway.db import Database
from gateway.directory import load_directory_file
from gateway.models import MessageRecord, Participant, Ticket, TicketStatus

__all__ = ["SUPPORT", "TeamData", "fill", "team_people"]

SUPPORT = "support@support.example"
AGENTS = ("kenji@support.example", "lena@support.example")
MEMBERS_PER_TEAM = 7
PRODUCTS = ("files", "dash")
CATEGORIES = ("technical", "technical", "technical", "administrative", "commercial")
ISSUE_TYPES = ("sync", "login", "sharing", "billing", "licences", "performance",
               "data-loss", "dashboards", None)
_DONE = (TicketStatus.SOLVED, TicketStatus.CLOSED)
_BATCH = 2000


@dataclass(frozen=True)
class TeamData:
    """A team of the data set: its id, the admin and the members (the admin first)."""

    id: str
    tickets: int
    admin: str
    members: tuple[str, ...]

    @property
    def member(self) -> str:
        """The member whose own tickets the benchmark lists (the busiest one)."""
        return self.members[0]


def team_people(team_id: str, tickets: int) -> TeamData:
    domain = f"{team_id}.example"
    return TeamData(team_id, tickets, f"admin@{domain}",
                    tuple(f"member{n}@{domain}" for n in range(1, MEMBERS_PER_TEAM + 1)))


def _directory_toml(teams: list[TeamData]) -> str:
    lines = ['[support]', 'name = "Bench Support"', f'address = "{SUPPORT}"',
             'domains = ["support.example"]', '']
    for product in PRODUCTS:
        lines += ['[[products]]', f'id = "{product}"', f'name = "{product.title()}"', '']
    for team in teams:
        lines += ['[[teams]]', f'id = "{team.id}"', f'name = "{team.id.title()} Ltd"',
                  'licenses = 40', 'language = "en"',
                  'addons = [ { product = "files", tier = "enhanced", starts = "2024-01-01", '
                  'ends = "2099-01-01" } ]', '']
        for email in (team.admin, *team.members):
            role = "admin" if email == team.admin else "member"
            lines += ['[[people]]', f'email = "{email}"', f'name = "{email.split("@")[0]}"',
                      f'team = "{team.id}"', f'role = "{role}"', 'language = "en"', '']
    for agent in AGENTS:
        lines += ['[[agents]]', f'email = "{agent}"', f'name = "{agent.split("@")[0]}"',
                  'departments = ["support"]', 'languages = ["en"]', '']
    return "\n".join(lines)


def _status(rng: random.Random, age_days: float) -> TicketStatus:
    """Old tickets are mostly answered and done; recent ones mostly waiting."""
    weights = (1, 6, 3, 30, 60) if age_days > 30 else (30, 35, 15, 15, 5)
    return rng.choices(list(TicketStatus), weights=weights)[0]


def _requester(rng: random.Random, team: TeamData) -> str:
    """Members write most tickets, the first one most of all; the admin some."""
    people = (team.admin, *team.members)
    weights = (2, 4, *([1] * (len(team.members) - 1)))
    return rng.choices(people, weights=weights)[0]


def _ticket_row(rng: random.Random, team: TeamData, *, cutoff: date,
                now: datetime) -> dict[str, Any]:
    """One ticket, created between a year before the cut-off and now."""
    first = datetime.combine(cutoff, time(), tzinfo=UTC) - timedelta(days=365)
    created = first + (now - first) * rng.random() ** 0.8  # more of them recently
    age = (now - created).total_seconds() / 86400
    status = _status(rng, age)
    updated = min(now, created + timedelta(days=rng.expovariate(1 / 6)))
    requester = _requester(rng, team)
    answered = status != TicketStatus.NEW
    duplicate = rng.random() < 0.03
    return {
        "subject": f"{rng.choice(['Sync', 'Login', 'Sharing', 'Invoice', 'Dashboard'])} "
                   f"problem {rng.randrange(10_000)} on {rng.choice(['Monday', 'the laptop'])}",
        "status": TicketStatus.CLOSED if duplicate else status,
        "requester": requester, "requester_name": requester.split("@")[0],
        "team_id": team.id, "product": rng.choice(PRODUCTS),
        "category": rng.choice(CATEGORIES), "issue_type": rng.choice(ISSUE_TYPES),
        "language": "en", "queue": "en", "tier": rng.choice(("enhanced", "standard")),
        "first_response_due": created + timedelta(hours=1),
        "first_response_at": created + timedelta(minutes=rng.randrange(5, 300))
        if answered else None,
        "entitlement": "bench data", "created_at": created, "updated_at": updated,
        "resolved_at": updated if status in _DONE else None,
        "duplicate_of": 1 if duplicate else None,
    }


def _messages(rng: random.Random, number: int, ticket: dict[str, Any],
              admin: str) -> list[dict[str, Any]]:
    """The request, then for answered tickets agents' answers, a colleague or a note."""
    text = "Since the last update the client shows an error. " * rng.randrange(2, 12)
    request = {"ticket_number": number, "from_address": ticket["requester"],
               "from_name": ticket["requester_name"], "team_id": ticket["team_id"],
               "role": "requester", "kind": "public", "subject": ticket["subject"],
               "text": text, "full_text": text, "received_at": ticket["created_at"],
               "threaded_by": "new", "message_id": f"<bench-{number}@client.example>"}
    rows = [request]
    if ticket["first_response_at"] is None:
        return rows
    later = ticket["first_response_at"]
    for _ in range(rng.choice((1, 1, 2, 3))):
        kind, role, sender = rng.choices(
            [("public", "agent", rng.choice(AGENTS)), ("note", "agent", rng.choice(AGENTS)),
             ("public", "colleague", admin), ("public", "requester", ticket["requester"])],
            weights=(6, 1, 1, 2))[0]
        if role == "colleague" and sender == ticket["requester"]:
            role = "requester"
        answer = "Thank you, please try version 2.4.1 and tell us. " * rng.randrange(1, 6)
        rows.append({**request, "from_address": sender, "from_name": sender.split("@")[0],
                     "team_id": None if role == "agent" else ticket["team_id"],
                     "role": role, "kind": kind, "subject": f"Re: {ticket['subject']}",
                     "text": answer, "full_text": answer, "received_at": later,
                     "threaded_by": "token",
                     "message_id": f"<bench-{number}-{len(rows)}@support.example>"})
        later = min(ticket["updated_at"], later + timedelta(hours=rng.randrange(1, 48)))
    return rows


def fill(database: Database, work: Path, teams: list[TeamData], *, cutoff: date,
         now: datetime, seed: int = 17) -> dict[str, int]:
    """Load the directory of ``teams`` and their tickets; returns rows written per table."""
    directory = work / "bench-directory.toml"
    directory.write_text(_directory_toml(teams), encoding="utf-8")
    with database.transaction() as session:
        load_directory_file(session, directory)
    rng = random.Random(seed)
    tickets = [_ticket_row(rng, team, cutoff=cutoff, now=now)
               for team in teams for _ in range(team.tickets)]
    tickets.sort(key=lambda t: t["created_at"])  # numbers grow with time, as in real life
    admins = {team.id: team.admin for team in teams}
    written = {"tickets": 0, "messages": 0, "participants": 0}
    for start in range(0, len(tickets), _BATCH):
        batch = tickets[start:start + _BATCH]
        with database.transaction() as session:
            numbers = list(session.scalars(
                insert(Ticket).returning(Ticket.number, sort_by_parameter_order=True), batch))
            messages = [m for number, t in zip(numbers, batch, strict=True)
                        for m in _messages(rng, number, t, admins[t["team_id"]])]
            session.execute(insert(MessageRecord), messages)
            participants = {(m["ticket_number"], m["from_address"]): m["role"]
                            for m in messages}
            session.execute(insert(Participant), [
                {"ticket_number": n, "email": e, "role": r}
                for (n, e), r in participants.items()])
        written["tickets"] += len(batch)
        written["messages"] += len(messages)
        written["participants"] += len(participants)
    return written
