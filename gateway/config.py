"""Typed settings: a TOML file overridden by ``GATEWAY_*`` environment variables.

Read once at start and passed explicitly, so that tests can run several gateways
with different settings in one process.  Errors name the file and the key.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gateway.errors import ConfigError

__all__ = ["MIN_SECRET_KEY_LENGTH", "MailboxConfig", "Settings", "load_settings", "parse_listen"]


#: DESIGN section 11: a shorter ``GATEWAY_SECRET_KEY`` is a configuration error.
MIN_SECRET_KEY_LENGTH = 32


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:25`` for IPv6) into its parts, or raise ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


class MailboxConfig(BaseModel):
    """One shared mailbox polled over IMAP (DESIGN section 5)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    url: str
    inbox: str = "INBOX"
    sent: str | None = None
    after: str = "flag:$Gateway"
    start: str = "new"
    # Additions to the DESIGN section 5 keys (see docs/architecture.md, "Shared mailboxes").
    username: str | None = None
    """Login name; default: the user part of ``url``."""
    password: str | None = None
    """Default: the password part of ``url``."""
    oauth2_token_command: list[str] | None = None
    """argv of a command that prints an OAuth 2 access token: XOAUTH2 instead of a password."""
    ca_file: Path | None = None
    """CA bundle the server's certificate must chain to (default: the system store)."""
    poll_interval: float = Field(default=60.0, gt=0)
    """Seconds between polls; with IDLE, the longest wait before the folders are re-checked."""
    idle: bool = True
    """Use IDLE when the server advertises it."""
    batch_size: int = Field(default=50, gt=0)
    batch_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    """Bytes (by RFC822.SIZE) one FETCH may download; a batch is fetched in several, and a
    bigger message alone, so that a batch of large mail cannot exhaust memory."""
    timeout: float = Field(default=60.0, gt=0)
    """Socket timeout of the IMAP connection, seconds."""
    backoff_min: float = Field(default=1.0, gt=0)
    backoff_max: float = Field(default=300.0, gt=0)
    """Reconnect delays after an error: doubled from min up to max."""
    lease_ttl: float = Field(default=60.0, gt=0)
    """Seconds the single-poller lease lasts; renewed every third of it."""

    @field_validator("url")
    @classmethod
    def _imap_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"imap", "imaps"}:
            raise ValueError("must start with imap:// or imaps://")
        if not parts.hostname:
            raise ValueError("names no host")
        return value

    @field_validator("start")
    @classmethod
    def _start(cls, value: str) -> str:
        mode, sep, since = value.partition(":")
        if value == "new":
            return value
        if mode == "since" and sep:
            try:
                date.fromisoformat(since)
            except ValueError:
                pass
            else:
                return value
        raise ValueError('must be "new" or "since:YYYY-MM-DD"')

    @field_validator("after")
    @classmethod
    def _after(cls, value: str) -> str:
        action, sep, arg = value.partition(":")
        if action not in {"flag", "move"} or not sep or not arg:
            raise ValueError('must be "flag:KEYWORD" or "move:FOLDER"')
        return value


def nameserver_address(text: str) -> tuple[str, int]:
    """``host``, ``host:port``, an IPv6 address, or ``[v6]:port`` as (IP address, port)."""
    host, port = text.strip(), 53
    if host.startswith("["):
        host, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(text)
        if rest:
            port = int(rest[1:])
    elif host.count(":") == 1:
        host, _, number = host.partition(":")
        port = int(number)
    ipaddress.ip_address(host)
    if not 0 < port < 65536:
        raise ValueError(text)
    return host, port


class Settings(BaseSettings):
    """Every tunable of the gateway; defaults give the embedded mode."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="forbid", frozen=True)

    database_url: str = "sqlite:///var/gateway.db"
    broker_url: str = ""
    broker_namespace: str = "gateway"
    """Prefix of the Redis keys, so several gateways can share one Redis."""
    smtp_listen: str = "127.0.0.1:2525"
    lmtp_listen: str = ""
    """Empty: no LMTP; ``host:port``: ``serve`` also takes mail by LMTP (RFC 2033) there."""
    web_listen: str = "127.0.0.1:8025"
    public_url: str = "http://127.0.0.1:8025"
    outbound_url: str = "maildir:var/sent"
    secret_key: str = ""
    var_dir: Path = Path("var")
    templates_dir: Path | None = None
    directory: list[Path] = Field(default_factory=list)
    """Directory files loaded (upserted) every time ``serve`` starts."""

    max_message_size: int = Field(default=25 * 1024 * 1024, gt=0)
    max_recipients: int = Field(default=100, gt=0)
    smtp_timeout: float = Field(default=300.0, gt=0)
    """Seconds an SMTP client may stay idle before it is disconnected."""
    smtp_hostname: str = ""
    # -- SMTP transport security and limits (DESIGN section 11) --
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None
    """PEM certificate (chain) and key; both set: STARTTLS is offered."""
    smtp_require_tls: bool = False
    """Nothing but EHLO, NOOP, STARTTLS and QUIT before STARTTLS (``530 5.7.0``)."""
    smtp_max_connections: int = Field(default=200, gt=0)
    smtp_max_connections_per_ip: int = Field(default=20, gt=0)
    """Beyond either cap a new connection gets ``421 4.7.0`` and is closed."""
    smtp_transaction_timeout: float = Field(default=900.0, gt=0)
    """Seconds from a connection's first MAIL to the end of a DATA, however steadily the
    client sends; RSET, HELO and EHLO do not restart it."""
    smtp_data_timeout: float = Field(default=600.0, gt=0)
    """Seconds from DATA's 354 to the end of the message (25 MB in 10 minutes: 42 KB/s)."""
    smtp_junk_command_limit: int = Field(default=100, gt=0)
    """Commands that move no message forward (NOOP, RSET, VRFY, EXPN, HELP, HELO/EHLO, and
    every refused or unknown one) a connection may send between accepted messages; the
    next gets ``421 4.7.0`` and the connection is closed.  Postfix's
    ``smtpd_junk_command_limit`` default: no real client comes near it."""
    smtp_connection_seconds: float = Field(default=600.0, gt=0)
    """Seconds a connection may stay open, however busy: then ``421 4.4.2`` and closed, but
    never in the middle of a message (that one ends at its own deadline and is answered
    first).  Ten minutes hold three 25 MB messages at 1 Mbit/s; Postfix's own client stops
    reusing a connection after five (``smtp_connection_reuse_time_limit``), and a client
    cut off between messages simply reconnects, so only a slot holder notices."""

    worker_threads: int = Field(default=4, gt=0)
    sweep_interval: float = Field(default=30.0, gt=0)
    stuck_after: float = Field(default=60.0, ge=0)
    """A spool row still ``received`` after this many seconds is enqueued again."""
    max_processing_attempts: int = Field(default=3, gt=0)

    # -- per-message containment (issue 13 item 4; docs/architecture.md "Containment") --
    max_mime_parts: int = Field(default=1000, gt=0)
    """MIME parts read per message; the bytes after the delimiter of one too many are not."""
    max_attachments: int = Field(default=100, gt=0)
    """Attachments stored per message; the rest are listed in the trace, not stored."""
    max_attachments_size: int = Field(default=25 * 1024 * 1024, gt=0)
    """Decoded bytes of attachments stored per message; the rest as above."""
    max_tnef_objects: int = Field(default=5000, gt=0)
    """Objects a winmail.dat may hold to be unpacked; else it is kept as one file."""
    max_header_size: int = Field(default=64 * 1024, gt=0)
    """Bytes of one header field (folded lines included); longer ones are cut."""
    max_header_block_size: int = Field(default=1024 * 1024, gt=0)
    """Bytes of the whole header block; a message with more is quarantined."""
    duplicate_candidates: int = Field(default=20, gt=0)
    """The duplicate check compares with at most this many of the sender's newest open
    tickets …"""
    duplicate_compare_chars: int = Field(default=20_000, gt=0)
    """… on the first this many characters of each text."""
    processing_budget_seconds: float = Field(default=10.0, gt=0)
    """Seconds the analysis of one message may take; past it the message is quarantined."""
    analysis_processes: int = Field(default=4, ge=0)
    """Child processes that analyse messages for the worker (stopped at the budget), at most
    this many at once (as many as ``worker_threads``: no job waits for a child); 0: analyse
    in the worker thread (the budget is then checked, not enforced)."""

    processing_processes: int | None = Field(default=None, ge=0)
    """Child processes that run whole processing jobs (analysis, pipeline, maildir delivery)
    for the worker, so processing uses every core; unset: one per CPU this process may use;
    0: processing in the worker threads (analysis in ``analysis_processes``)."""
    processing_nice: int | None = Field(default=None, ge=0, le=19)
    """Nice value added to processing children.  Unset: 10 under ``serve`` (SMTP intake in
    the same process gets the CPU first), 0 under ``gateway worker`` (no intake there, and a
    niced child on a busy host gets a tenth of a core: every database round trip waits)."""

    delivery_max_attempts: int = Field(default=10, gt=0)
    delivery_min_backoff: float = Field(default=30.0, gt=0)
    delivery_max_backoff: float = Field(default=3600.0, gt=0)
    smtp_client_timeout: float = Field(default=60.0, gt=0)
    smtp_ca_file: Path | None = None
    """CA bundle that the smarthost's certificate must chain to (default: system store)."""

    ack_language_default: str = "en"

    # Conversations: who may act on a ticket, and how sure we must be of them.
    sender_authentication: Literal["authres", "dkim", "token"] = "token"
    """How the sender authority (``gateway/trust/sender_auth.py``) verifies a From address:
    ``authres`` trusts the topmost ``Authentication-Results`` of ``authserv_id`` (the upstream
    MTA), ``dkim`` verifies aligned DKIM signatures ourselves, ``token`` (development only: the
    default, and ``serve`` warns) trusts a reply token for the address it was issued to."""
    authserv_id: str = ""
    dkim_dns_seconds: float = Field(default=5.0, gt=0)
    """``dkim``: seconds the key lookups of one message may take in all (every signature's
    counts); past them the signatures left count as not checkable (sender unverified)."""
    dns_nameservers: list[str] = Field(default_factory=list)
    """``dkim``: name servers for the key lookups (``host`` or ``host:port``); empty: the
    system's (``/etc/resolv.conf``)."""
    colleague_cutoff: date = date(2024, 12, 11)
    """Team tickets created and last updated before this day are not open to colleagues."""
    reopen_window_days: int = Field(default=14, ge=0)
    """A reply this many days after a ticket was solved/closed opens a new linked ticket."""
    pending_reminder_days: int = Field(default=3, ge=0)
    """A ticket pending this many days gets one reminder (DESIGN §13); 0: never."""
    autoclose_days: int = Field(default=7, ge=0)
    """A ticket pending this many days is closed with a notice (DESIGN §13); 0: never."""
    replies_only_to_open: bool = False
    """The stricter rule: replies to solved/closed tickets always open a new linked ticket."""
    duplicate_window_days: int = Field(default=7, ge=0)
    ack_limit_per_hour: int = Field(default=3, ge=0)
    """Automatic answers one mailbox may receive per hour (stops auto-responder ping-pong);
    a mailbox is the address case-folded without ``+detail`` (victim@, Victim+1@: one)."""
    ack_limit_per_domain_per_hour: int = Field(default=20, ge=0)
    """Automatic answers all mailboxes of one domain may receive per hour from mail whose
    sender is not verified (stops backscatter to a forged domain)."""
    bounce_mark_days: int = Field(default=30, gt=0)
    """A bounce of our mail silences automatic answers to that address this many days."""

    rules_policy: Path | None = None
    """Entitlement and SLA policy (TOML); default: the shipped ``rules/policy/default.toml``."""
    emergency_address: str = ""
    """Mail sent to this address gets the policy's emergency windows (empty: none)."""
    rules_issue_types: Path | None = None
    """Issue-type keyword file (default: the shipped ``rules/policy/issue_types.toml``)."""
    agents_address: str = ""
    """The support team's mailbox (or list): told of every new request and customer
    follow-up, with a reply address that answers as an agent (empty: no such notices)."""
    agents_notice_attachment_limit: int = Field(default=5 * 1024 * 1024, ge=0)
    """Bytes of the customer's files an agents' notice carries at most (before base64, which
    adds a third: 5 MB stays well below common 10 MB smarthost limits); the rest are
    listed by name and size.  A mail to the agents that still fails is reported."""

    mailboxes: list[MailboxConfig] = Field(default_factory=list)

    @field_validator("secret_key")
    @classmethod
    def _secret_key(cls, value: str) -> str:
        if value and len(value) < MIN_SECRET_KEY_LENGTH:
            raise ValueError(f"GATEWAY_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} "
                             "characters long (it keys reply tokens and signed links)")
        return value

    @field_validator("agents_address")
    @classmethod
    def _agents_address(cls, value: str) -> str:
        value = value.strip().lower()
        local, at, domain = value.rpartition("@")
        if value and (not at or not local or "." not in domain
                      or any(c in value for c in " ,;<>\"")):
            raise ValueError("must be empty or one email address such as agents@example.com")
        return value

    @field_validator("dns_nameservers")
    @classmethod
    def _nameservers_readable(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                nameserver_address(text)
            except ValueError:
                raise ValueError(f"dns_nameservers: {text!r} is not an IP address with an "
                                 "optional port (192.0.2.53, 192.0.2.53:5353, [2001:db8::53]:53)"
                                 ) from None
        return value

    @field_validator("authserv_id")
    @classmethod
    def _authserv_id(cls, value: str) -> str:
        return value.strip().lower()

    @field_validator("smtp_tls_cert", "smtp_tls_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _tls_cert_and_key_together(self) -> Settings:
        if (self.smtp_tls_cert is None) != (self.smtp_tls_key is None):
            raise ValueError("smtp_tls_cert and smtp_tls_key go together: set both (PEM "
                             "files) to offer STARTTLS, or neither")
        if self.smtp_require_tls and self.smtp_tls_cert is None:
            raise ValueError("smtp_require_tls needs smtp_tls_cert and smtp_tls_key")
        return self

    @model_validator(mode="after")
    def _authres_needs_an_id(self) -> Settings:
        if self.sender_authentication == "authres" and not self.authserv_id:
            raise ValueError("sender_authentication = \"authres\" needs authserv_id (the "
                             "upstream MTA's authserv-id)")
        return self
    # -- support access grants (gateway/grants) --
    grant_link_ttl: float = Field(default=72 * 3600.0, gt=0)
    """Seconds an emailed activation link stays usable."""
    grant_overview_ttl: float = Field(default=14 * 86400.0, gt=0)
    """Seconds a signed overview link (in every grant mail) stays valid."""
    grant_expiry_notice: float = Field(default=24 * 3600.0, gt=0)
    """How long before a grant (longer than a day) ends its authorised users are told."""
    grant_timezone: str = "UTC"
    """Where "today" ends for a grant of the duration "today" (an IANA zone name)."""
    grant_address_tag: str = "access"
    """Mail to ``support+<tag>@domain`` from an authenticated agent is an access request."""
    grant_api_key: str = ""
    """Key for ``GET /api/grants/check``; empty: the API answers 503 (never open)."""
    # -- the support hub on the web (gateway/hub, gateway/web/hub) --
    hub_link_ttl: float = Field(default=20 * 60.0, gt=0)
    """Seconds an emailed hub sign-in link works (once)."""
    hub_session_idle: float = Field(default=30 * 60.0, gt=0)
    """A hub session unused this many seconds has ended."""
    hub_session_lifetime: float = Field(default=12 * 3600.0, gt=0)
    """A hub session ends this many seconds after sign-in, however busy."""
    hub_sign_in_per_address: int = Field(default=5, gt=0)
    """Sign-in links one address may ask for per hour (known or not); past it, a new link
    only when the person has no live one (so nobody can lock them out)."""
    hub_sign_in_per_client: int = Field(default=20, gt=0)
    """Sign-in requests one client (IP address) may make per hour."""
    hub_attachment_limit: int = Field(default=10 * 1024 * 1024, gt=0)
    """Bytes of files one hub request or reply may carry, all files together."""
    # -- bulk mail, scheduler and signing (issue 7) --
    bulk_batch_size: int = Field(default=100, gt=0)
    """Bulk mail (announcements, quarterly) is queued this many messages at a time …"""
    bulk_batch_interval: float = Field(default=1.0, ge=0)
    """… with this many seconds between batches (the rate: size / interval per second)."""
    bulk_lease_ttl: float = Field(default=30.0, gt=0)
    """A sender that died holds its announcement this long before another may resume it."""
    unsubscribe_token_days: int = Field(default=365, gt=0)
    scheduler_enabled: bool = True
    scheduler_lease_ttl: float = Field(default=60.0, gt=0)
    """The scheduler runs jobs only while this node holds the lease "scheduler"."""
    dkim_selector: str = ""
    dkim_domain: str = ""
    dkim_private_key_file: Path | None = None
    """PEM RSA key; when set (with selector and domain) every outbound mail is DKIM-signed."""
    @field_validator("mailboxes")
    @classmethod
    def _mailbox_names(cls, value: list[MailboxConfig]) -> list[MailboxConfig]:
        names = [m.name for m in value]
        if len(set(names)) != len(names):
            raise ValueError("mailbox names must be unique")
        return value

    @field_validator("smtp_listen", "web_listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("lmtp_listen")
    @classmethod
    def _optional_listen(cls, value: str) -> str:
        if value:
            parse_listen(value)
        return value

    @field_validator("grant_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be an IANA time zone name such as Europe/Berlin") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        scheme = urlsplit(value).scheme.split("+")[0]
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("must be a sqlite:/// or postgresql:// URL")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker(cls, value: str) -> str:
        if value and urlsplit(value).scheme not in {"redis", "rediss", "amqp", "amqps"}:
            raise ValueError("must be empty (embedded worker), redis://… or amqp://…")
        return value

    @field_validator("outbound_url")
    @classmethod
    def _outbound(cls, value: str) -> str:
        scheme = value.split(":", 1)[0]
        if scheme not in {"maildir", "smtp", "smtps", "smtp+starttls"}:
            raise ValueError("must be maildir:PATH, smtp://, smtps:// or smtp+starttls://")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the TOML file, which arrives as init arguments.
        return (env_settings, init_settings)

    @property
    def embedded(self) -> bool:
        """True when jobs run in-process (no external broker)."""
        return not self.broker_url

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _describe(error: ValidationError, origin: str) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"]) or "(top level)"
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    more = f" (and {error.error_count() - 1} more problems)" if error.error_count() > 1 else ""
    return f"{origin}: key {key!r}: {message}{more}"


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the TOML file (``--config`` or ``GATEWAY_CONFIG``) and the environment.

    Raises :class:`ConfigError` with one sentence naming the file and key.
    """
    path = config_file or os.environ.get("GATEWAY_CONFIG") or None
    data: dict[str, Any] = {}
    origin = "environment"
    if path:
        origin = f"config file {path}"
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"config file {path} is not valid TOML: {error}") from None
        except OSError as error:
            raise ConfigError(f"config file {path} cannot be read: {error.strerror}") from None
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as error:
        raise ConfigError(_describe(error, origin)) from None
