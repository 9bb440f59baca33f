"""Run the ordered pipeline (``gateway.pipeline.steps.ORDER``) on one message's context.

``run_pipeline`` calls the steps in order and stops at the first disposition (ignored or
quarantined).  Exceptions are bugs or outages, never outcomes.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from gateway.pipeline.context import MailContext
from gateway.pipeline.steps import ORDER, STEPS

__all__ = ["PIPELINE", "StepFailed", "run_pipeline"]

log = logging.getLogger(__name__)

PIPELINE: tuple[str, ...] = tuple(step.name for step in ORDER)
"""The step names in order (a prefix of it runs the pipeline up to a step)."""


class StepFailed(Exception):
    """A step raised; carries the step name so the quarantine reason can say where."""

    def __init__(self, step: str, error: Exception) -> None:
        super().__init__(f"step {step} failed: {type(error).__name__}: {error}")
        self.step = step
        self.error = error


def run_pipeline(ctx: MailContext, names: tuple[str, ...] = PIPELINE) -> None:
    # Asked once, not per step: the debug line's arguments are ORM attribute reads, and
    # the loop runs inside the write transaction (SQLite's one writer lane).
    debug = log.isEnabledFor(logging.DEBUG)
    for name in names:
        step = STEPS[name]
        try:
            step.run(ctx)
        except SQLAlchemyError:
            raise  # an outage: the job is retried, the message stays received
        except Exception as error:
            raise StepFailed(name, error) from error
        if debug:
            log.debug("spool %s message-id %s: step %s done", ctx.spool.id,
                      ctx.spool.message_id, name)
        if ctx.stopped:
            log.info("spool %s message-id %s: %s by %s: %s", ctx.spool.id, ctx.spool.message_id,
                     ctx.disposition, name, ctx.reason)
            return
