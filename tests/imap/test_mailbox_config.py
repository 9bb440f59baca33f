"""The ``[[mailboxes]]`` tables: DESIGN section 5 keys and our additions, checked on load."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gateway.config import MailboxConfig, load_settings
from gateway.errors import ConfigError
from inbound.imap_poller import PollerError, _token, endpoint

CONTRACT_EXAMPLE = '''
[[mailboxes]]
name = "shared"
url = "imap://support%40example.test:secret@127.0.0.1:143"
inbox = "INBOX"
sent = "Sent"
after = "move:Processed"
start = "new"

[[mailboxes]]
name = "history"
url = "imaps://support%40example.test@imap.example.test"
oauth2_token_command = ["/usr/local/bin/fetch-token", "support"]
after = "flag:$Gateway"
start = "since:2026-01-01"
poll_interval = 30
'''


def test_the_design_example_loads_with_our_additions(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(CONTRACT_EXAMPLE)
    shared, history = load_settings(config).mailboxes
    point = endpoint(shared)
    assert (point.host, point.port, point.tls) == ("127.0.0.1", 143, "none")
    assert (point.username, point.password) == ("support@example.test", "secret")
    assert (shared.sent, shared.after, shared.start) == ("Sent", "move:Processed", "new")
    point = endpoint(history)
    assert (point.host, point.port, point.tls) == ("imap.example.test", 993, "implicit")
    assert history.oauth2_token_command == ["/usr/local/bin/fetch-token", "support"]
    assert history.poll_interval == 30


def test_starttls_comes_from_the_url_query() -> None:
    box = MailboxConfig(name="m", url="imap://u:p@mail.example.test?starttls=true")
    assert endpoint(box).tls == "starttls" and endpoint(box).port == 143


@pytest.mark.parametrize(("table", "expected"), [
    ('name = "m"\nurl = "imap://h"\nstart = "yesterday"', "mailboxes.0.start"),
    ('name = "m"\nurl = "imap://h"\nstart = "since:2026-13-01"', "mailboxes.0.start"),
    ('name = "m"\nurl = "imap://h"\nafter = "delete"', "mailboxes.0.after"),
    ('name = "m"\nurl = "imap:///nohost"', "mailboxes.0.url"),
    ('name = "m"\nurl = "imap://h"\npoll_interval = 0', "mailboxes.0.poll_interval"),
    ('name = "m"\nurl = "imap://h"\npasword = "x"', "unknown key"),
])
def test_bad_mailbox_tables_are_refused_naming_the_key(tmp_path: Path, table: str,
                                                       expected: str) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f"[[mailboxes]]\n{table}\n")
    with pytest.raises(ConfigError, match=expected):
        load_settings(config)


def test_mailbox_names_are_unique(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[[mailboxes]]\nname = "m"\nurl = "imap://a"\n'
                      '[[mailboxes]]\nname = "m"\nurl = "imap://b"\n')
    with pytest.raises(ConfigError, match="unique"):
        load_settings(config)


def test_xoauth2_token_command_output_and_failure() -> None:
    ok = MailboxConfig(name="m", url="imap://u@h", oauth2_token_command=[
        sys.executable, "-c", "print('  token-123  ')"])
    assert _token(ok) == "token-123"
    failing = MailboxConfig(name="m", url="imap://u@h", oauth2_token_command=[
        sys.executable, "-c", "import sys; sys.exit('refresh token expired')"])
    with pytest.raises(PollerError, match="refresh token expired"):
        _token(failing)
