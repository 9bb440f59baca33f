"""The ``access-request`` pipeline step: only authenticated agents start a request by mail.

The context is built by running the real pipeline up to ``authorize`` on a real
spooled mail and then setting the sender authority's answer (``ctx.sender_trust``)
for an authenticated or a non-authenticated agent.
"""

from __future__ import annotations

from sqlalchemy import select

from gateway.models import AccessRequest, OutboxItem, SpoolEntry
from gateway.pipeline.context import MailContext
from gateway.pipeline.flow import PIPELINE, run_pipeline
from gateway.pipeline.processing import process_spool_entry
from gateway.pipeline.steps import STEPS
from gateway.pipeline.steps.access_request import parse_command
from gateway.runtime.app import Gateway
from gateway.trust.sender_auth import SenderTrust, Trust
from inbound.parsing.analysis import analyze
from inbound.spool import store_message
from tests.mail import make_mail


def _context_after_authorize(gateway: Gateway, raw: bytes, rcpt: str, verified: bool
                             ) -> list[int]:
    stored = store_message(gateway.db, raw, source="smtp", mail_from="kenji@support.example",
                           rcpt_tos=[rcpt])
    with gateway.db.transaction() as session:
        entry = session.get(SpoolEntry, stored.spool_id)
        assert entry is not None
        ctx = MailContext(spool=entry, session=session, services=gateway.services,
                          analysis=analyze(raw, entry.mail_from))
        run_pipeline(ctx, PIPELINE[:PIPELINE.index("authorize") + 1])
        # what the sender authority would decide for a (non-)authenticated agent
        ctx.sender_trust = SenderTrust(Trust.VERIFIED if verified else Trust.UNVERIFIED,
                                       "authres", "set by the test")
        STEPS["access-request"].run(ctx)
        return list(ctx.outbox_ids)


def _ticket_of_anna(gateway: Gateway) -> str:
    mail = make_mail(subject="Sync fails", message_id="<anna-1@acme.example>")
    stored = store_message(gateway.db, mail, source="smtp", mail_from="anna@acme.example",
                           rcpt_tos=["support@support.example"])
    assert process_spool_entry(gateway.db, gateway.services, stored.spool_id).state == "processed"
    return "<anna-1@acme.example>"


def test_access_line_on_a_ticket_from_an_authenticated_agent(gateway: Gateway) -> None:
    parent = _ticket_of_anna(gateway)
    reply = make_mail(sender="kenji@support.example", subject="Re: Sync fails",
                      in_reply_to=parent, body="#access export\nI need to look at the logs.")
    ids = _context_after_authorize(gateway, reply, "support@support.example", verified=True)
    assert len(ids) == 2  # Anna and Bert
    with gateway.db.reading() as session:
        request = session.scalars(select(AccessRequest)).one()
        assert (request.team_id, request.agent_email, request.export, request.via) == (
            "acme", "kenji@support.example", True, "mail")
        assert request.reason == "I need to look at the logs."
        assert {session.get(OutboxItem, i).rcpt_to for i in ids} == {  # type: ignore[union-attr]
            "anna@acme.example", "bert@acme.example"}


def test_unauthenticated_agent_mail_starts_nothing(gateway: Gateway) -> None:
    parent = _ticket_of_anna(gateway)
    # A forged From: kenji with "#access" and no sender authentication
    reply = make_mail(sender="kenji@support.example", subject="Re: Sync fails",
                      in_reply_to=parent, body="#access\nlet me in")
    assert _context_after_authorize(gateway, reply, "support@support.example",
                                    verified=False) == []
    # and through the whole pipeline as it runs today, nothing is requested either
    stored = store_message(gateway.db, make_mail(sender="kenji@support.example",
                                                 subject="Re: Sync fails", in_reply_to=parent,
                                                 body="#access\nlet me in"),
                           source="smtp", mail_from="kenji@support.example",
                           rcpt_tos=["support@support.example"])
    assert process_spool_entry(gateway.db, gateway.services, stored.spool_id).state == "processed"
    with gateway.db.reading() as session:
        assert session.scalars(select(AccessRequest)).all() == []


def test_mail_to_the_grants_address_names_team_and_department(gateway: Gateway) -> None:
    raw = make_mail(sender="kenji@support.example", to="support+access@support.example",
                    subject="#access team=acme department=development",
                    body="Database migration tonight.")
    ids = _context_after_authorize(gateway, raw, "support+access@support.example",
                                   verified=True)
    assert len(ids) == 2
    with gateway.db.reading() as session:
        request = session.scalars(select(AccessRequest)).one()
        assert (request.team_id, request.agent_email, request.department) == (
            "acme", None, "development")
        assert request.reason == "Database migration tonight."


def test_parse_command() -> None:
    assert parse_command("hello", required=True) is None
    command = parse_command("#access team=acme agent=x@y.example export urgent\nwhy", required=True)
    assert command is not None
    assert (command.team, command.agent, command.department, command.export, command.reason) == (
        "acme", "x@y.example", None, True, "urgent\nwhy")
