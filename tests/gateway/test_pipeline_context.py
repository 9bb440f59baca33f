"""The pipeline context's stages, the command registry, and steps that never import steps."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.models import SpoolEntry
from gateway.pipeline.commands import AGENT_COMMANDS, NEW_MAIL_COMMANDS, leading_commands
from gateway.pipeline.context import MailContext, PipelineOrderError, context_for
from gateway.pipeline.flow import PIPELINE, StepFailed, run_pipeline
from gateway.pipeline.steps import STEPS
from gateway.runtime.app import Gateway
from inbound.parsing.analysis import analyze
from inbound.spool import store_message
from tests.mail import make_mail

STEPS_DIR = Path(__file__).resolve().parents[2] / "gateway" / "pipeline" / "steps"


def _with_context(gateway: Gateway, check: Callable[[MailContext], None]) -> None:
    raw = make_mail(subject="Printer offline", message_id="<ctx-1@acme.example>")
    stored = store_message(gateway.db, raw, source="smtp", mail_from="anna@acme.example",
                           rcpt_tos=["support@support.example"])
    with gateway.db.transaction() as session:
        entry = session.get(SpoolEntry, stored.spool_id)
        assert entry is not None
        ctx = context_for(entry, session, gateway.services, analyze(raw, entry.mail_from))
        check(ctx)


def test_what_a_step_sets_cannot_be_read_before_it_ran(gateway: Gateway) -> None:
    def check(ctx: MailContext) -> None:
        assert ctx.parsed.subject == "Printer offline"  # the message: known from the start
        assert ctx.reply.visible.strip()
        for read, set_by in ((lambda: ctx.sender, "identify-sender"),
                             (lambda: ctx.sender_trust, "authenticate"),
                             (lambda: ctx.ticket, "thread"),
                             (lambda: ctx.terms, "apply-rules")):
            with pytest.raises(PipelineOrderError, match=set_by):
                read()
        run_pipeline(ctx, PIPELINE[:PIPELINE.index("thread") + 1])
        assert ctx.sender.email == "anna@acme.example"
        assert ctx.sender_trust is not None and ctx.new_ticket
        with pytest.raises(PipelineOrderError, match="record"):
            _ = ctx.ticket  # a new ticket exists once record made it
    _with_context(gateway, check)


def test_a_step_run_out_of_order_fails_with_the_field_it_read(gateway: Gateway) -> None:
    def check(ctx: MailContext) -> None:
        with pytest.raises(StepFailed, match="step authorize failed: PipelineOrderError: "
                           "ctx.sender was read before identify-sender set it"):
            run_pipeline(ctx, ("authorize",))
    _with_context(gateway, check)


def test_agent_commands_are_read_through_the_registry() -> None:
    assert set(AGENT_COMMANDS) == {"note", "status", "assign", "merge", "cc"}
    assert [c.word for c in NEW_MAIL_COMMANDS] == ["tickets"]
    assert leading_commands("#Note\n#status solved\nDone.") == (
        [("note", ""), ("status", "solved")], "Done.")
    assert leading_commands("#tickets\nhello") == ([], "#tickets\nhello")  # not an agent's


def test_the_pipeline_order_and_no_step_imports_another() -> None:
    assert PIPELINE == (
        "parse", "unsubscribe", "guard-loop", "guard-auto-reply", "guard-bounce",
        "identify-sender", "authenticate", "bounce-clear", "thread", "sent-copy",
        "ticket-list", "authorize", "access-request", "on-behalf", "commands", "lifecycle",
        "duplicates", "apply-rules", "record", "notify", "assign", "merge")
    assert set(PIPELINE) == set(STEPS)
    modules = {path.stem for path in STEPS_DIR.glob("*.py")} - {"__init__"}
    assert modules == {name.replace("-", "_") for name in PIPELINE}  # one module per step
    for path in STEPS_DIR.glob("*.py"):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and node.module}
        assert not {m for m in imported if m.startswith("gateway.pipeline.steps")}, path.name
