"""Deliver through an SMTP smarthost and sort every answer into sent / retry / give up.

2xx is delivered.  4xx, connection trouble and timeouts are temporary.  A 5xx at any
stage (greeting, MAIL FROM, RCPT TO, DATA, end of data) is permanent, 552 included:
RFC 5321 §4.5.3.1.10 lets a client retry a 552 at RCPT, but a smarthost answers 552 for
its size limit, which no retry passes, so retrying only delays telling anyone by hours.
The server's answer, with the stage it came at, is kept as the reason.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from gateway.errors import PermanentFailure, TemporaryFailure

__all__ = ["SmtpTransport", "classify"]


def classify(code: int, text: str, stage: str = "") -> TemporaryFailure | PermanentFailure:
    """4xx: temporary; anything else that is no success (5xx): permanent."""
    answer = f"{code} {text}".strip()
    if stage:
        answer = f"{stage}: {answer}"
    if 400 <= code < 500:
        return TemporaryFailure(answer)
    return PermanentFailure(answer)


def _stage(error: smtplib.SMTPResponseException) -> str:
    """The command a refusal answered, for the reason kept on the outbox row."""
    if isinstance(error, smtplib.SMTPSenderRefused):
        return "MAIL FROM"
    if isinstance(error, smtplib.SMTPDataError):
        return "DATA"
    return ""


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class SmtpTransport:
    host: str
    port: int
    mode: str = "plain"  # plain | starttls | tls
    username: str = ""
    password: str = ""
    timeout: float = 60.0
    ca_file: str | None = None

    @classmethod
    def from_url(cls, url: str, timeout: float = 60.0,
                 ca_file: str | None = None) -> SmtpTransport:
        parts = urlsplit(url)
        mode = {"smtp": "plain", "smtps": "tls", "smtp+starttls": "starttls"}[parts.scheme]
        default_port = {"plain": 25, "tls": 465, "starttls": 587}[mode]
        return cls(parts.hostname or "127.0.0.1", parts.port or default_port, mode,
                   unquote(parts.username or ""), unquote(parts.password or ""), timeout,
                   ca_file)

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.mode == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                    context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        client.ehlo_or_helo_if_needed()
        if self.mode == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if self.username:
            client.login(self.username, self.password)
        return client

    def send(self, mail_from: str, rcpt_to: str, raw: bytes) -> str:
        try:
            client = self._connect()
        except smtplib.SMTPAuthenticationError as error:
            raise classify(error.smtp_code, _text(error.smtp_error)) from error
        except smtplib.SMTPResponseException as error:
            raise classify(error.smtp_code, _text(error.smtp_error)) from error
        except (OSError, smtplib.SMTPException, ssl.SSLError) as error:
            raise TemporaryFailure(f"cannot reach {self.host}:{self.port}: {error}") from error
        options: list[str] = []
        if not (mail_from.isascii() and rcpt_to.isascii()):
            if not client.has_extn("smtputf8"):
                client.close()
                raise PermanentFailure(f"{self.host} does not offer SMTPUTF8, needed for "
                                       f"{rcpt_to}")
            options.append("SMTPUTF8")
        try:
            refused = client.sendmail(mail_from, [rcpt_to], raw, mail_options=options)
            if refused:
                code, text = refused[rcpt_to]
                raise classify(code, _text(text), "RCPT TO")
            return "250 accepted"
        except smtplib.SMTPRecipientsRefused as error:
            code, text = error.recipients[rcpt_to]
            raise classify(code, _text(text), "RCPT TO") from error
        except smtplib.SMTPResponseException as error:
            raise classify(error.smtp_code, _text(error.smtp_error), _stage(error)) from error
        except (TimeoutError, OSError, smtplib.SMTPException) as error:
            raise TemporaryFailure(f"connection to {self.host}:{self.port} failed: "
                                   f"{error}") from error
        finally:
            try:
                client.quit()
            except (OSError, smtplib.SMTPException):
                client.close()
