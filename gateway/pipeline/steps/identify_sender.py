"""Look the sender up in the directory: person (with team), agent, or unknown.

Reads ``ctx.parsed`` and the envelope; writes ``ctx.sender`` and ``ctx.language``.
The From header is only a claim here; how far we trust it is the next step's job.

Most senders are strangers: one plain statement asks both tables whether they know the
address, and only a row that exists is loaded as an ORM object (later steps use it).
"""

from __future__ import annotations

from sqlalchemy import bindparam, literal_column, select, union_all

from gateway.models import Agent, Person, SenderKind, Team
from gateway.pipeline.context import Disposition, MailContext, Sender
from gateway.prepared import Prepared

name = "identify-sender"
description = "find the sender in the directory"

_KNOWN = Prepared(union_all(
    select(literal_column("'agent'")).where(Agent.__table__.c.email == bindparam("email")),
    select(literal_column("'person'")).where(Person.__table__.c.email == bindparam("email"))))
"""Which of the two directory tables hold the address (no ORM objects, no autoflush:
nothing in the transaction writes people or agents)."""


def run(ctx: MailContext) -> None:
    email = ctx.parsed.from_address or ctx.spool.mail_from.strip("<>").lower() or ""
    if not email:
        ctx.stop(Disposition.QUARANTINED, "no sender address in From or envelope")
        return
    sender = Sender(email=email, name=ctx.parsed.from_name)
    known = set(_KNOWN.scalars(ctx.session, {"email": email}))
    sender.agent = ctx.session.get(Agent, email) if "agent" in known else None
    sender.person = ctx.session.get(Person, email) if "person" in known else None
    if sender.person is not None and sender.person.team_id:
        sender.team = ctx.session.get(Team, sender.person.team_id)
    ctx.sender = sender
    if sender.person is not None:
        ctx.language = sender.person.language
    elif sender.team is not None:
        ctx.language = sender.team.language
    else:
        ctx.language = ctx.services.settings.ack_language_default
    team = f", team {sender.team.id}" if sender.team else ""
    article = "an" if sender.kind == SenderKind.AGENT else "a"
    ctx.note(name, sender.kind, f"{email} is {article} {sender.kind}{team}")
