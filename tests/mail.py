"""Small synthetic mails for tests (big or real MIME comes from fixtures and the corpus)."""

from __future__ import annotations

import mailbox
import re
import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path


def make_mail(*, sender: str = "anna@acme.example", to: str = "support@support.example",
              subject: str = "Sync fails", body: str = "Hello, sync fails since Monday.",
              message_id: str | None = None, in_reply_to: str | None = None,
              references: str | None = None, headers: dict[str, str] | None = None,
              sender_name: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = f"{sender_name} <{sender}>" if sender_name else sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id or make_msgid(domain="client.example")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


def send(host_port: str, raw: bytes, *, mail_from: str = "anna@acme.example",
         rcpt_to: list[str] | str = "support@support.example", timeout: float = 30
         ) -> dict[str, tuple[int, bytes]]:
    """Send ``raw`` over SMTP; the recipients refused (none: ``{}``)."""
    host, port = host_port.rsplit(":", 1)
    recipients = [rcpt_to] if isinstance(rcpt_to, str) else rcpt_to
    with smtplib.SMTP(host, int(port), timeout=timeout) as client:
        return client.sendmail(mail_from, recipients, raw)


_MAILDIR_KEY = re.compile(r"^(\d+)\.M(\d+)P(\d+)Q(\d+)\.")


def delivery_order(key: str) -> tuple[int, int, int, str]:
    """Sort key of a stdlib maildir file name: seconds, microseconds, then the counter.

    The names are ``<seconds>.M<microseconds>P<pid>Q<count>.<host>`` with no zero padding,
    so a plain string sort puts ``M99`` after ``M123456`` of the same second.
    """
    found = _MAILDIR_KEY.match(key)
    if found is None:
        return (0, 0, 0, key)
    seconds, micros, _pid, count = (int(part) for part in found.groups())
    return (seconds, micros, count, key)


def maildir_messages(path: Path) -> list[mailbox.MaildirMessage]:
    """Every message of a maildir, in the order it was delivered."""
    if not (path / "cur").exists():  # absent, or being created right now (tmp, new, cur)
        return []
    box = mailbox.Maildir(path, create=False)
    return [box[key] for key in sorted(box.keys(), key=delivery_order)]
