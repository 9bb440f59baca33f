"""What an operator reads in the log of ``gateway serve`` (and ``gateway worker``): each
message's outcome, written by the processing child that handled it in the parent's format,
and no library's traceback for mail anyone can send."""

from __future__ import annotations

import re
import smtplib

from gateway.config import Settings
from gateway.runtime.app import Gateway
from tests.conftest import Processes, wait_for
from tests.mail import make_mail

_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


def test_each_message_outcome_is_in_the_log_in_the_parents_format(
        gateway: Gateway, settings: Settings, processes: Processes) -> None:
    processes.serve()
    host, port = settings.smtp_listen.rsplit(":", 1)
    with smtplib.SMTP(host, int(port), timeout=30) as client:
        client.sendmail("max@acme.example", ["support@support.example"],
                        make_mail(sender="max@acme.example", subject="Printer jams"))
        # anyone can send mail without a From (a bounce-looking one reaches flufl.bounce)
        client.sendmail("", ["support@support.example"],
                        b"To: support@support.example\r\nSubject: Undelivered Mail\r\n\r\n"
                        b"It could not be delivered.\r\n")
    wait_for(lambda: len(re.findall(r"spool \d+ (processed|quarantined|ignored)",
                                    processes.logs())) >= 2,
             timeout=60, message="both outcomes in the log")
    logs = processes.logs()
    assert re.search(r"INFO gateway\.pipeline\.processing: spool \d+ processed: new ticket #\d+",
                     logs)
    assert "Traceback" not in logs and "Exception in detector" not in logs
    records = [line for line in logs.splitlines() if line and not line.startswith(" ")]
    assert records and all(_LINE.match(line) for line in records), [
        line for line in records if not _LINE.match(line)][:3]
