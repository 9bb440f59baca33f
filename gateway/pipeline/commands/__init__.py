"""Mail commands, one module per command, and the registry the command steps read.

Adding a command is one module here (``word`` and ``apply`` for an agent command,
``word`` and ``handle`` for a new-mail command: see :mod:`.base`), one line in the
registry below, its templates (when it sends mail) and its tests.  The ``commands``
step runs the agent commands, the ``ticket-list`` step the new-mail commands.
"""

from __future__ import annotations

import re

from gateway.pipeline.commands import assign, cc, merge, note, status, tickets
from gateway.pipeline.commands.base import AgentCommand, Handled, NewMailCommand, Noted

__all__ = ["AGENT_COMMANDS", "NEW_MAIL_COMMANDS", "AgentCommand", "Handled",
           "NewMailCommand", "Noted", "leading_commands"]

_AGENT: tuple[AgentCommand, ...] = (note, status, assign, merge, cc)
AGENT_COMMANDS: dict[str, AgentCommand] = {command.word: command for command in _AGENT}
"""``#note``, ``#status``, ``#assign``, ``#merge``, ``#cc``: at the top of a verified agent's
reply on a ticket."""
_WORDS: dict[str, int] = {command.word: int(getattr(command, "arguments", 1))
                          for command in _AGENT}
"""How many words may follow ``#word``: one, unless the module says ``arguments``
(``#cc add EMAIL``); a line with more is text, not a command."""
NEW_MAIL_COMMANDS: tuple[NewMailCommand, ...] = (tickets,)
"""``#tickets``: the first line of a new mail, answered instead of opening a ticket."""

_LINE = re.compile(r"^#(" + "|".join(map(re.escape, sorted(AGENT_COMMANDS)))
                   + r")\b[ \t]*(.*?)[ \t]*$", re.IGNORECASE)


def leading_commands(text: str) -> tuple[list[tuple[str, str]], str]:
    """The agent command lines at the top (blank lines between them allowed), as
    (word, argument) in lower case, and the rest of the text."""
    lines = text.splitlines()
    found: list[tuple[str, str]] = []
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        match = _LINE.match(line)
        if match and len(match[2].split()) <= _WORDS[match[1].lower()]:
            found.append((match[1].lower(), " ".join(match[2].split()).lower()))
        elif line:
            break
        index += 1
    return found, "\n".join(lines[index:]).strip("\n")
