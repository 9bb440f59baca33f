"""Step ``commands``: a verified agent's ``#note``, ``#status`` and ``#cc`` lines at the top
of a reply (and mail to the ticket's ``+note`` address); anybody else's are plain text."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from gateway.models import Participant, Ticket
from gateway.pipeline.steps import commands
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import (
    context_before,
    origin_of,
    passed,
    processed,
    reply_address,
    trace_of,
)

ANNA, KENJI = "anna@acme.example", "kenji@support.example"


def _reply(gw: Gateway, body: str, *, sender: str = KENJI, verified: bool = True) -> bytes:
    number = processed(gw, make_mail(subject="Sync fails"))
    return make_mail(sender=sender, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                     body=body, headers=passed(sender) if verified else None)


def test_status_command_is_read_and_taken_out_of_the_text(gw: Gateway) -> None:
    raw = _reply(gw, "#status solved\n\nFixed in 4.2, please update.")
    with context_before(gw, commands.name, raw) as ctx:
        commands.run(ctx)
        assert ctx.reply is not None
        assert (ctx.set_status, ctx.kind) == ("solved", "public")
        assert ctx.reply.visible.strip() == "Fixed in 4.2, please update."
        assert trace_of(ctx, commands.name) == [("status", "#status solved")]


def test_note_command_makes_an_internal_note(gw: Gateway) -> None:
    raw = _reply(gw, "#note\n#status pending\nWaiting for the customer's logs.")
    with context_before(gw, commands.name, raw) as ctx:
        commands.run(ctx)
        assert ctx.reply is not None
        assert (ctx.kind, ctx.set_status) == ("note", "pending")
        assert ctx.reply.visible.strip() == "Waiting for the customer's logs."
        assert [o for o, _ in trace_of(ctx, commands.name)] == ["note", "status"]


def test_an_unknown_status_is_flagged_and_ignored(gw: Gateway) -> None:
    with context_before(gw, commands.name, _reply(gw, "#status bogus\nHi")) as ctx:
        commands.run(ctx)
        assert ctx.set_status == ""
        assert ctx.flags == ["unknown status in '#status bogus' (ignored)"]


def test_mail_to_the_note_address_is_an_internal_note(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    processed(gw, make_mail(sender=KENJI, subject="Re: Sync fails", body="Looking into it.",
                            in_reply_to=origin_of(gw, number), headers=passed(KENJI)))
    address = reply_address(gw, number, KENJI, note=True)
    raw = make_mail(sender=KENJI, to=address, subject="Re: Sync fails",
                    body="Customer is on 4.1.", headers=passed(KENJI))
    with context_before(gw, commands.name, raw, rcpt_tos=[address]) as ctx:
        commands.run(ctx)
        assert ctx.kind == "note"
        assert trace_of(ctx, commands.name) == [
            ("note", "sent to the ticket's +note address: internal note")]


def test_a_customers_command_lines_are_plain_text(gw: Gateway) -> None:
    raw = _reply(gw, "#status closed\nThanks, all good.", sender=ANNA)
    with context_before(gw, commands.name, raw) as ctx:
        commands.run(ctx)
        assert ctx.reply is not None
        assert (ctx.set_status, ctx.kind) == ("", "public")
        assert ctx.reply.visible.startswith("#status closed")


def test_an_unverified_agents_command_lines_are_plain_text(gw: Gateway) -> None:
    with context_before(gw, commands.name, _reply(gw, "#status closed", verified=False)) as ctx:
        commands.run(ctx)
        assert (ctx.role, ctx.set_status) == ("requester", "")
        assert trace_of(ctx, commands.name) == []


# -- #assign and #merge: checked here, applied by the steps ``assign`` and ``merge`` -----

LENA = "lena@support.example"


def test_assign_me_names_the_writing_agent(gw: Gateway) -> None:
    with context_before(gw, commands.name, _reply(gw, "#assign me\nMine.")) as ctx:
        commands.run(ctx)
        assert (ctx.set_owner, ctx.flags) == (KENJI, [])
        assert ctx.reply.visible.strip() == "Mine."
        assert trace_of(ctx, commands.name) == [
            ("assign", f"#assign me: the owner is to be {KENJI}")]


def test_assign_names_another_agent_in_any_form(gw: Gateway) -> None:
    with context_before(gw, commands.name, _reply(gw, f"#assign <{LENA.upper()}>")) as ctx:
        commands.run(ctx)
        assert ctx.set_owner == LENA


def test_assigning_a_customer_or_nobody_is_flagged_and_ignored(gw: Gateway) -> None:
    with context_before(gw, commands.name, _reply(gw, f"#assign {ANNA}")) as ctx:
        commands.run(ctx)
        assert ctx.set_owner == ""
        assert ctx.flags == [f"'#assign {ANNA}': {ANNA} is not an agent of the directory "
                             "(ignored)"]
    with context_before(gw, commands.name, _reply(gw, "#assign\nHm.")) as ctx:
        commands.run(ctx)
        assert ctx.set_owner == ""
        assert ctx.flags == ["'#assign': no agent named (EMAIL, me or none) (ignored)"]


def test_merge_names_another_existing_ticket(gw: Gateway) -> None:
    target = processed(gw, make_mail(sender="giulia@globex.example", subject="Sync broken"))
    with context_before(gw, commands.name, _reply(gw, f"#merge [#{target}]")) as ctx:
        commands.run(ctx)
        assert (ctx.merge_into, ctx.flags) == (target, [])
        assert trace_of(ctx, commands.name)[0][0] == "merge"


def test_a_merge_into_nothing_itself_or_a_merged_ticket_is_flagged_and_ignored(
        gw: Gateway) -> None:
    merged = processed(gw, make_mail(sender="giulia@globex.example", subject="Sync broken"))
    with gw.db.transaction() as session:
        found = session.get(Ticket, merged)
        assert found is not None
        found.merged_into = 1
    raw = _reply(gw, "#merge 9999")
    with context_before(gw, commands.name, raw) as ctx:
        commands.run(ctx)
        this = ctx.ticket.number
        assert ctx.merge_into is None
        assert ctx.flags == ["'#merge 9999': there is no ticket #9999 (ignored)"]
    for argument, problem in ((str(this), f"ticket #{this} is this ticket"),
                              (str(merged), f"ticket #{merged} was itself merged into #1"),
                              ("soon", "no ticket number")):
        with context_before(gw, commands.name, _reply_on(gw, this, f"#merge {argument}")
                            ) as ctx:
            commands.run(ctx)
            assert ctx.merge_into is None
            assert ctx.flags == [f"'#merge {argument}': {problem} (ignored)"]


def test_a_customers_or_unverified_agents_assign_and_merge_stay_text(gw: Gateway) -> None:
    for raw in (_reply(gw, "#assign me\n#merge 1", sender=ANNA),
                _reply(gw, "#assign me\n#merge 1", verified=False)):
        with context_before(gw, commands.name, raw) as ctx:
            commands.run(ctx)
            assert (ctx.set_owner, ctx.merge_into) == ("", None)
            assert ctx.reply.visible.startswith("#assign me\n#merge 1")


def _reply_on(gw: Gateway, number: int, body: str) -> bytes:
    return make_mail(sender=KENJI, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                     body=body, headers=passed(KENJI))


# -- #cc add | remove ---------------------------------------------------------------

BOB = "bob@partner.example"


def _cc_roles(gw: Gateway, number: int) -> dict[str, str]:
    with gw.db.reading() as session:
        return {p.email: p.role for p in session.scalars(select(Participant).where(
            Participant.ticket_number == number))}


def test_cc_add_copies_someone_on_the_ticket_and_leaves_the_text(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    raw = make_mail(sender=KENJI, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                    body="#cc add Bob@Partner.example\n\nBob, please check the proxy.",
                    headers=passed(KENJI))
    with context_before(gw, commands.name, raw) as ctx:
        commands.run(ctx)
        assert ctx.reply.visible.strip() == "Bob, please check the proxy."
        assert trace_of(ctx, commands.name) == [
            ("cc", f"#cc add: {BOB} is copied on ticket #{number}")]
        assert ctx.flags == []
    assert _cc_roles(gw, number)[BOB] == "cc"


def test_cc_remove_ends_it(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    processed(gw, _agent_reply(gw, number, f"#cc add {BOB}\nHello Bob."))
    with context_before(gw, commands.name, _agent_reply(gw, number, f"#cc remove {BOB}")
                        ) as ctx:
        commands.run(ctx)
        assert trace_of(ctx, commands.name) == [
            ("cc", f"#cc remove: {BOB} is no longer copied on ticket #{number}")]
    assert _cc_roles(gw, number)[BOB] == "cc_removed"


@pytest.mark.parametrize(("line", "flag"), [
    ("#cc add support@support.example",
     "#cc add support@support.example: support@support.example not copied: one of "
     "support's own addresses (ignored)"),
    ("#cc add lena@support.example",
     "#cc add lena@support.example: lena@support.example not copied: one of support's own "
     "addresses (ignored)"),
    ("#cc add mailer-daemon@partner.example",
     "#cc add mailer-daemon@partner.example: mailer-daemon@partner.example not copied: an "
     "automatic sender's address (ignored)"),
    (f"#cc add {ANNA}", f"#cc add {ANNA}: {ANNA} not copied: the ticket's requester (ignored)"),
    (f"#cc remove {BOB}", "#cc remove bob@partner.example: not copied on ticket #{n} "
     "(ignored)"),
    ("#cc invite bob", "unknown '#cc invite bob': use '#cc add EMAIL' or '#cc remove EMAIL' "
     "(ignored)"),
    ("#cc", "unknown '#cc': use '#cc add EMAIL' or '#cc remove EMAIL' (ignored)"),
])
def test_a_cc_line_that_cannot_be_done_is_flagged(gw: Gateway, line: str, flag: str) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    with context_before(gw, commands.name, _agent_reply(gw, number, line + "\nHi")) as ctx:
        commands.run(ctx)
        assert ctx.flags == [flag.replace("{n}", str(number))]
        assert ctx.reply.visible.strip() == "Hi"
    assert set(_cc_roles(gw, number).values()) <= {"requester", "agent"}


def test_a_cc_line_with_more_words_is_text(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    body = f"#cc add {BOB} please\nHi"
    with context_before(gw, commands.name, _agent_reply(gw, number, body)) as ctx:
        commands.run(ctx)
        assert ctx.reply.visible.startswith("#cc add") and trace_of(ctx, commands.name) == []
    assert BOB not in _cc_roles(gw, number)


def test_an_unverified_agent_copies_nobody(gw: Gateway) -> None:
    number = processed(gw, make_mail(subject="Sync fails"))
    raw = _agent_reply(gw, number, f"#cc add {BOB}\nHi", verified=False)
    with context_before(gw, commands.name, raw) as ctx:
        commands.run(ctx)
        assert ctx.role == "requester" and ctx.reply.visible.startswith("#cc add")
    assert BOB not in _cc_roles(gw, number)


def _agent_reply(gw: Gateway, number: int, body: str, *, verified: bool = True) -> bytes:
    return make_mail(sender=KENJI, subject="Re: Sync fails", in_reply_to=origin_of(gw, number),
                     body=body, headers=passed(KENJI) if verified else None)
