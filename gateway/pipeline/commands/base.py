"""What a mail command is, for the registry in ``gateway.pipeline.commands``.

Two kinds, by who may send them and where:

- an **agent command** (:class:`AgentCommand`): a line ``#WORD [ARGUMENT]`` at the top of a
  verified agent's reply on a ticket; several may stand together and they are taken out
  of the visible text.  Run by the ``commands`` step, which notes what it returns;
- a **new-mail command** (:class:`NewMailCommand`): the first line of a new mail (one that
  belongs to no ticket); when it is the command, the mail opens no ticket: it is answered
  and ignored with the reason.  Run by the ``ticket-list`` step.

A command module implements one of the two protocols with module-level names, as the
pipeline steps do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from gateway.pipeline.context import MailContext

__all__ = ["AgentCommand", "Handled", "NewMailCommand", "Noted"]

Noted = tuple[str, str]
"""One trace line for the running step: (outcome, explanation)."""


class AgentCommand(Protocol):
    word: str
    """The command line is ``#<word>`` (any case), optionally followed by one argument
    (a module may set ``arguments = N`` to take up to N words, as ``#cc add EMAIL``)."""

    def apply(self, ctx: MailContext, argument: str) -> Noted:
        """Act on the context (``argument`` lower case, its words joined by one space, may
        be empty); say what was done."""
        ...


@dataclass(frozen=True)
class Handled:
    """A new mail that was the command: the trace lines and the reason it ends ignored."""

    reason: str
    notes: tuple[Noted, ...] = ()


class NewMailCommand(Protocol):
    word: str

    def handle(self, ctx: MailContext, text: str) -> Handled | None:
        """None when ``text`` (the visible text) is not this command, else what was done."""
        ...
