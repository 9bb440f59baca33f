"""Pipeline steps, one per module, and :data:`ORDER`: the pipeline, in order.

Each step module defines ``name`` (kebab-case), ``description`` (one line) and
``run(ctx) -> None`` (the :class:`Step` protocol, checked by mypy below); its docstring
says which context fields it reads and writes.  Steps never import each other: what two
steps share lives on the context (:mod:`gateway.pipeline.context`) or in a domain module.
"""

from __future__ import annotations

from typing import Protocol

from gateway.pipeline.context import MailContext
from gateway.pipeline.steps import (
    access_request,
    apply_rules,
    assign,
    authenticate,
    authorize,
    bounce_clear,
    commands,
    duplicates,
    guard_auto_reply,
    guard_bounce,
    guard_loop,
    identify_sender,
    lifecycle,
    merge,
    notify,
    on_behalf,
    parse,
    record,
    sent_copy,
    thread,
    ticket_list,
    unsubscribe,
)

__all__ = ["ORDER", "STEPS", "Step"]


class Step(Protocol):
    name: str
    description: str

    def run(self, ctx: MailContext) -> None: ...


ORDER: tuple[Step, ...] = (
    parse,
    unsubscribe,
    guard_loop,
    guard_auto_reply,
    guard_bounce,
    identify_sender,
    authenticate,
    bounce_clear,
    thread,
    sent_copy,
    ticket_list,
    authorize,
    access_request,
    on_behalf,
    commands,
    lifecycle,
    duplicates,
    apply_rules,
    record,
    notify,
    assign,
    merge,
)
"""Every message runs through these steps in this order (``gateway.pipeline.flow``)."""
STEPS: dict[str, Step] = {step.name: step for step in ORDER}
