"""One logging set-up for every gateway process: the command line's and its children's.

Why: the processing and analysis children start from a forkserver, a fresh interpreter
that inherits no logging configuration.  Without this their INFO lines (each message's
outcome: ``spool 12 processed: new ticket #7``) were lost and their warnings went out
unformatted through logging's last-resort handler; a child now logs as its parent does,
at its parent's level, to the same stderr.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["FORMAT", "configure_logging", "current_level"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str) -> None:
    """Log ``level`` and above to stderr; the chattiest libraries only when debugging."""
    level = level.upper()
    logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT)
    if level != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
        # mail-parser warns about every part it does not render (images, reports).
        logging.getLogger("mailparser").setLevel(logging.ERROR)
        # aiosmtpd logs a dozen INFO lines per SMTP session: noise, and CPU at volume.
        logging.getLogger("mail.log").setLevel(logging.WARNING)


def current_level() -> str:
    """The level this process logs at (what its children should log at)."""
    return logging.getLevelName(logging.getLogger().getEffectiveLevel())
