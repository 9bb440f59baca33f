"""Step ``access-request``: a verified agent's ``#access`` line (on a ticket, or mail to the
grants address) becomes an access request and activation mails; nobody else starts one."""

from __future__ import annotations

from sqlalchemy import select

from gateway.models import AccessRequest
from gateway.pipeline.context import Disposition
from gateway.pipeline.steps import access_request
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import context_before, origin_of, outbox_of, passed, processed, trace_of

KENJI = "kenji@support.example"
GRANTS = "support+access@support.example"


def _requests(gw: Gateway) -> list[tuple[str, str | None, str | None, bool, str, str]]:
    with gw.db.reading() as session:
        return [(r.team_id, r.agent_email, r.department, r.export, r.reason, r.via)
                for r in session.scalars(select(AccessRequest))]


def _on_ticket(gw: Gateway, body: str, *, verified: bool = True) -> bytes:
    number = processed(gw, make_mail(subject="Sync fails"))
    return make_mail(sender=KENJI, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                     body=body, headers=passed(KENJI) if verified else None)


def test_an_access_line_on_a_ticket_requests_access_as_a_note(gw: Gateway) -> None:
    raw = _on_ticket(gw, "#access export\nI need to look at the logs.")
    with context_before(gw, access_request.name, raw) as ctx:
        access_request.run(ctx)
        assert ctx.kind == "note" and not ctx.stopped  # recorded on the ticket, never sent
        ids = list(ctx.outbox_ids)
        [(outcome, explanation)] = trace_of(ctx, access_request.name)
        assert outcome == "requested" and explanation == (
            f"access to team acme requested for {KENJI}: {len(ids)} activation mails queued")
    assert _requests(gw) == [("acme", KENJI, None, True, "I need to look at the logs.", "mail")]
    sent = outbox_of(gw, ids)
    assert sent and {kind for kind, _ in sent} == {"grant_activation"}
    assert ("grant_activation", "anna@acme.example") in sent


def test_mail_to_the_grants_address_opens_no_ticket(gw: Gateway) -> None:
    raw = make_mail(sender=KENJI, to=GRANTS, subject="#access team=acme department=development",
                    body="Database migration tonight.", headers=passed(KENJI))
    with context_before(gw, access_request.name, raw, rcpt_tos=[GRANTS]) as ctx:
        access_request.run(ctx)
        assert ctx.disposition == Disposition.IGNORED
        assert ctx.reason.startswith("access to team acme requested for development: ")
    assert _requests(gw) == [("acme", None, "development", False, "Database migration tonight.",
                              "mail")]


def test_a_request_naming_no_team_is_refused(gw: Gateway) -> None:
    raw = make_mail(sender=KENJI, to=GRANTS, subject="access please", body="Let me in.",
                    headers=passed(KENJI))
    with context_before(gw, access_request.name, raw, rcpt_tos=[GRANTS]) as ctx:
        access_request.run(ctx)
        assert (ctx.disposition, ctx.reason) == (
            Disposition.IGNORED, "access request names no team and its ticket has none")
    assert _requests(gw) == []


def test_a_request_the_grants_service_refuses_says_why(gw: Gateway) -> None:
    raw = _on_ticket(gw, "#access agent=nobody@support.example\nplease")
    with context_before(gw, access_request.name, raw) as ctx:
        access_request.run(ctx)
        assert trace_of(ctx, access_request.name) == [
            ("refused", "access request refused: nobody@support.example is not a support "
             "agent in the directory")]
        assert ctx.outbox_ids == [] and not ctx.stopped
    assert _requests(gw) == []


def test_an_unverified_agent_starts_nothing(gw: Gateway) -> None:
    raw = _on_ticket(gw, "#access\nlet me in", verified=False)  # a forged From: kenji
    with context_before(gw, access_request.name, raw) as ctx:
        access_request.run(ctx)
        assert ctx.kind == "public" and ctx.outbox_ids == []
        assert trace_of(ctx, access_request.name) == []
    assert _requests(gw) == []


def test_an_agents_reply_without_the_line_is_no_request(gw: Gateway) -> None:
    raw = _on_ticket(gw, "Please try again, we need access to the logs later.")
    with context_before(gw, access_request.name, raw) as ctx:
        access_request.run(ctx)
        assert ctx.kind == "public" and trace_of(ctx, access_request.name) == []
    assert _requests(gw) == []
