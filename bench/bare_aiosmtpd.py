"""A bare aiosmtpd server that accepts every message and throws it away.

The "limit of our stack" baseline of ``bench/intake.py``: the same SMTP library,
controller thread and options as ``gateway serve`` (``inbound/smtp_server.py``),
but no recipient check, no spool and no worker.

    .venv/bin/python bench/bare_aiosmtpd.py --listen 127.0.0.1:2526

Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class DiscardHandler:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return "250 2.0.0 OK: discarded"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:2526",
                        help="HOST:PORT (default %(default)s)")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    controller = Controller(DiscardHandler(), hostname=host.strip("[]"), port=int(port),
                            ready_timeout=10.0, data_size_limit=25 * 1024 * 1024,
                            enable_SMTPUTF8=True, decode_data=False, timeout=300.0,
                            ident="bare-aiosmtpd ESMTP")
    done = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    controller.start()
    print(f"bare aiosmtpd listening on {args.listen}", flush=True)
    try:
        while not done.wait(1.0):
            pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
