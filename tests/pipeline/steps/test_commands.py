"""Step ``commands``: a verified agent's ``#note`` and ``#status`` lines at the top of a
reply (and mail to the ticket's ``+note`` address); anybody else's are plain text."""

from __future__ import annotations

from gateway.models import Ticket
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
        assert ctx.flags == ["'#assign': no agent named (EMAIL or me) (ignored)"]


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
