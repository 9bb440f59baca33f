"""Step ``notify``: the mail a message calls for, queued in the outbox: acknowledgement and
team copies of a new request, duplicate notice, refusal, colleague's reply, an agent's
relayed reply or status notice (to the requester and everyone copied on the ticket),
reopen notice, the agents' notice; and nothing for notes, automatic mail, imported history
or copies from our Sent folder; the "was this helpful?" link in the mail that solves a
ticket."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.models import OutboxItem, SatisfactionLink, SatisfactionRating, utcnow
from gateway.pipeline.steps import notify
from gateway.runtime.app import Gateway
from tests.corpus import corpus_bytes
from tests.mail import make_mail
from tests.pipeline.build import (
    AUTHSERV,
    SENT_FOLDER,
    SUPPORT,
    context_before,
    origin_of,
    outbox_of,
    passed,
    processed,
    trace_of,
)

ANNA, MAX, OLGA = "anna@acme.example", "max@acme.example", "olga@acme.example"
KENJI = "kenji@support.example"
AGENTS = "agents@team.support.example"


def _ticket(gw: Gateway, sender: str = ANNA) -> int:
    return processed(gw, make_mail(sender=sender, subject="Sync fails", headers=passed(sender)))


def _reply(gw: Gateway, number: int, sender: str, body: str = "It fails again.", *,
           verified: bool = True) -> bytes:
    return make_mail(sender=sender, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                     body=body, headers=passed(sender) if verified else None)


def _notify(gw: Gateway, raw: bytes, **envelope: object) -> tuple[list[tuple[str, str]],
                                                                   list[tuple[str, str]]]:
    """Run the step on ``raw``; the outbox rows it queued and its trace lines."""
    with context_before(gw, notify.name, raw, **envelope) as ctx:
        notify.run(ctx)
        ids, lines = list(ctx.outbox_ids), trace_of(ctx, notify.name)
    return outbox_of(gw, ids), lines


def test_a_verified_members_request_is_acknowledged_and_copied_to_the_admin(
        gw: Gateway) -> None:
    sent, lines = _notify(gw, make_mail(sender=MAX, subject="VPN drops", headers=passed(MAX)))
    assert sent == [("acknowledgement", MAX), ("team_ticket_copy", OLGA)]
    assert [o for o, _ in lines] == ["queued", "queued"]
    assert lines[0][1].startswith(f"acknowledgement to {MAX} (outbox ")


def test_an_unverified_member_is_acknowledged_but_no_admin_is_told(gw: Gateway) -> None:
    sent, lines = _notify(gw, make_mail(sender=MAX, subject="VPN drops"))
    assert sent == [("acknowledgement", MAX)]
    assert ("skip", "copy to the team's admins: the sender is not verified") in lines


def test_a_failed_dmarc_gets_no_acknowledgement(gw: Gateway) -> None:
    raw = make_mail(sender=MAX, subject="VPN drops", headers={
        "Authentication-Results": f"{AUTHSERV}; dmarc=fail header.from=acme.example"})
    sent, lines = _notify(gw, raw)
    assert sent == []
    assert lines[0][0] == "skip" and lines[0][1].startswith(
        "acknowledgement: the sender's DMARC failed")


def test_a_duplicate_request_gets_a_notice_naming_the_original(gw: Gateway) -> None:
    _ticket(gw)
    sent, _ = _notify(gw, make_mail(subject="Sync fails", body="Again!", headers=passed(ANNA)))
    assert sent == [("duplicate_notice", ANNA)]


def test_a_ticket_an_agent_opens_gets_no_acknowledgement(gw: Gateway) -> None:
    raw = make_mail(sender=KENJI, to=ANNA, subject="Your licence", headers=passed(KENJI))
    sent, lines = _notify(gw, raw)
    assert sent == [] and lines == [("skip", "opened by a support agent: no acknowledgement")]


def test_a_refused_reply_gets_a_refusal(gw: Gateway) -> None:
    number = _ticket(gw)
    sent, lines = _notify(gw, _reply(gw, number, MAX))
    assert sent == [("reply_refused", MAX)]
    assert lines[0][1].startswith(f"refusal (not_admin) to {MAX}")


def test_a_colleagues_reply_is_passed_on_to_the_requester(gw: Gateway) -> None:
    number = _ticket(gw, MAX)
    sent, _ = _notify(gw, _reply(gw, number, ANNA, "Max, restart the client please."))
    assert sent == [("colleague_reply", MAX)]


def test_an_agents_reply_is_relayed_to_the_requester(gw: Gateway) -> None:
    number = _ticket(gw)
    sent, _ = _notify(gw, _reply(gw, number, KENJI, "Please update to 4.2."))
    assert sent == [("agent_reply", ANNA)]


def test_an_agents_bare_status_command_is_a_status_notice(gw: Gateway) -> None:
    number = _ticket(gw)
    sent, _ = _notify(gw, _reply(gw, number, KENJI, "#status solved"))
    assert sent == [("status_notice", ANNA)]


def test_an_internal_note_is_never_sent(gw: Gateway) -> None:
    number = _ticket(gw)
    sent, lines = _notify(gw, _reply(gw, number, KENJI, "#note\nAsk Lena."))
    assert sent == [] and lines == [("skip", "internal note: never sent")]


def test_a_reply_that_reopens_the_ticket_tells_the_requester(gw: Gateway) -> None:
    number = _ticket(gw)
    processed(gw, _reply(gw, number, KENJI, "#status solved\nFixed."))
    sent, _ = _notify(gw, _reply(gw, number, ANNA, "No, it still fails."))
    assert sent == [("reopened", ANNA)]


def test_a_plain_follow_up_sends_nothing(gw: Gateway) -> None:
    number = _ticket(gw)
    sent, lines = _notify(gw, _reply(gw, number, ANNA, "Here are the logs."))
    assert sent == [] and lines == [("skip", "a reply: nothing to send")]


def test_automatic_mail_is_never_answered(gw: Gateway) -> None:
    raw = corpus_bytes("threads", "notmuch-default/bar__baz__23.eml")  # mailing-list mail
    sent, lines = _notify(gw, raw)
    assert sent == [] and lines == [("skip", "automatic mail (bulk): never answered nor relayed")]


def test_imported_history_sends_nothing(gw: Gateway) -> None:
    sent, lines = _notify(gw, make_mail(subject="Old request"), options={"history": True})
    assert sent == [] and lines == [("skip", "imported history: nothing is sent")]


def test_a_copy_from_our_sent_folder_sends_nothing(gw: Gateway) -> None:
    number = _ticket(gw)
    raw = make_mail(sender=SUPPORT, to=ANNA, subject="Re: Sync fails", body="Try 4.2.",
                    in_reply_to=origin_of(gw, number))
    sent, lines = _notify(gw, raw, source="imap:support/Sent", options=SENT_FOLDER)
    assert sent == [] and lines == [
        ("skip", "copy from the shared Sent folder: already sent by the agent")]


@pytest.mark.parametrize("settings", [{"agents_address": AGENTS}], indirect=True)
def test_the_agents_hear_of_a_new_request_and_a_follow_up(gw: Gateway) -> None:
    sent, _ = _notify(gw, make_mail(subject="Sync fails", headers=passed(ANNA)))
    assert sent == [("acknowledgement", ANNA), ("team_ticket_copy", OLGA),
                    ("agents_notice", AGENTS)]
    number = _ticket(gw, "giulia@globex.example")
    sent, lines = _notify(gw, _reply(gw, number, "giulia@globex.example", "More logs."))
    assert sent == [("agents_notice", AGENTS)]
    assert lines[0][1].startswith(f"agents' notice (follow-up) to {AGENTS}")


@pytest.mark.parametrize("settings", [{"agents_address": AGENTS}], indirect=True)
def test_the_agents_get_no_notice_of_their_own_mail(gw: Gateway) -> None:
    number = _ticket(gw)
    sent, _ = _notify(gw, _reply(gw, number, KENJI, "Please update to 4.2."))
    assert sent == [("agent_reply", ANNA)]


def test_a_forward_on_behalf_is_acknowledged_to_the_customer(gw: Gateway) -> None:
    body = ("Please take this one.\n\n---------- Forwarded message ---------\n"
            f"From: Max Member <{MAX}>\nSubject: VPN drops\n\nThe VPN drops every hour.")
    sent, _ = _notify(gw, make_mail(sender=KENJI, subject="Fwd: VPN drops", body=body,
                                    headers=passed(KENJI)))
    assert sent[0] == ("acknowledgement", MAX)
    assert KENJI not in [to for _, to in sent]


# -- "was this helpful?" (DESIGN §13) ---------------------------------------------------

def _links(gw: Gateway, number: int) -> list[str]:
    with gw.db.reading() as session:
        return list(session.scalars(select(SatisfactionLink.email).where(
            SatisfactionLink.ticket_number == number)))


def _raw(gw: Gateway, kind: str, rcpt: str) -> bytes:
    """The stored (redacted) bytes of the newest outbox row of ``kind`` to ``rcpt``."""
    with gw.db.reading() as session:
        raw = session.scalar(select(OutboxItem.raw).where(
            OutboxItem.kind == kind, OutboxItem.rcpt_to == rcpt).order_by(
            OutboxItem.id.desc()).limit(1))
    assert raw is not None
    return raw


@pytest.mark.parametrize(("body", "kind"), [("#status solved\nFixed in 4.2.", "agent_reply"),
                                            ("#status solved", "status_notice")])
def test_the_mail_that_solves_a_ticket_asks_the_requester_whether_it_helped(
        gw: Gateway, body: str, kind: str) -> None:
    number = _ticket(gw)
    sent, lines = _notify(gw, _reply(gw, number, KENJI, body))
    assert sent == [(kind, ANNA)]
    assert ("satisfaction", "solved: the requester is asked whether it helped") in lines
    assert _links(gw, number) == [ANNA]  # one link, bound to the ticket and its requester
    assert b"/satisfaction/REDACTED" in _raw(gw, kind, ANNA)  # the secret is sealed apart


@pytest.mark.parametrize("body", ["Please update to 4.2.", "#status pending\nWhich version?",
                                  "#status closed", "#note\n#status solved\nAsk Lena."])
def test_mail_that_does_not_solve_the_ticket_asks_nothing(gw: Gateway, body: str) -> None:
    number = _ticket(gw)
    _notify(gw, _reply(gw, number, KENJI, body))
    assert _links(gw, number) == []
    assert not any(b"/satisfaction/" in raw for raw in _all_raw(gw))


def test_a_rated_ticket_solved_again_asks_nothing_more(gw: Gateway) -> None:
    number = _ticket(gw)
    with gw.db.transaction() as session:
        session.add(SatisfactionRating(ticket_number=number, email=ANNA, rating="good",
                                       comment="", rated_at=utcnow()))
    sent, lines = _notify(gw, _reply(gw, number, KENJI, "#status solved\nDone again."))
    assert sent == [("agent_reply", ANNA)]
    assert ("satisfaction", "solved: the ticket was rated already, nobody is asked "
            "again") in lines
    assert _links(gw, number) == [] and b"/satisfaction/" not in _raw(gw, "agent_reply", ANNA)


def _all_raw(gw: Gateway) -> list[bytes]:
    with gw.db.reading() as session:
        return list(session.scalars(select(OutboxItem.raw)))


# -- people copied on the ticket ----------------------------------------------------------

BOB, CARLA = "bob@partner.example", "carla@partner.example"


def _copied(gw: Gateway) -> int:
    return processed(gw, make_mail(subject="Sync fails",
                                   headers={**passed(ANNA), "Cc": f"{BOB}, {CARLA}"}))


def test_support_answers_go_to_the_requester_and_everyone_copied(gw: Gateway) -> None:
    number = _copied(gw)
    sent, lines = _notify(gw, _reply(gw, number, KENJI, "Please update to 4.2."))
    assert sent == [("agent_reply", ANNA), ("agent_reply", BOB), ("agent_reply", CARLA)]
    assert lines[1][1].startswith(f"agent reply (cc) to {BOB}")
    processed(gw, _reply(gw, number, KENJI, f"#cc remove {CARLA}\nOne more thing."))
    sent, _ = _notify(gw, _reply(gw, number, KENJI, "#status solved"))
    assert sent == [("status_notice", ANNA), ("status_notice", BOB)]


def test_the_new_request_is_acknowledged_to_the_requester_only(gw: Gateway) -> None:
    sent, _ = _notify(gw, make_mail(subject="Sync fails",
                                    headers={**passed(ANNA), "Cc": BOB}))
    assert sent == [("acknowledgement", ANNA), ("team_ticket_copy", OLGA)]


@pytest.mark.parametrize("settings", [{"agents_address": AGENTS}], indirect=True)
def test_a_cc_reply_goes_to_the_agents_only(gw: Gateway) -> None:
    number = _copied(gw)
    with context_before(gw, notify.name, _reply(gw, number, BOB, "Same on my laptop.")) as ctx:
        notify.run(ctx)
        assert ctx.role == "cc"
        ids = list(ctx.outbox_ids)
    assert outbox_of(gw, ids) == [("agents_notice", AGENTS)]
    with gw.db.reading() as session:
        notice = session.get(OutboxItem, ids[0])
        assert notice is not None
        assert b"copied on the ticket (cc)" in bytes(notice.raw)


def test_a_cc_whose_reply_reopens_the_ticket_is_told(gw: Gateway) -> None:
    number = _copied(gw)
    processed(gw, _reply(gw, number, KENJI, "#status solved\nFixed."))
    sent, _ = _notify(gw, _reply(gw, number, BOB, "Not for me."))
    assert sent == [("reopened", BOB)]
