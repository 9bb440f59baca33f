"""Settings: TOML file overridden by the environment; errors name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('smtp_listen = "127.0.0.1:2600"\nmax_recipients = 7\n')
    monkeypatch.setenv("GATEWAY_SMTP_LISTEN", "127.0.0.1:2700")
    settings = load_settings(config)
    assert settings.smtp_listen == "127.0.0.1:2700"
    assert settings.max_recipients == 7
    assert settings.database_url == "sqlite:///var/gateway.db"


def test_defaults_are_the_contract() -> None:
    settings = load_settings(None)
    assert (settings.smtp_listen, settings.web_listen) == ("127.0.0.1:2525", "127.0.0.1:8025")
    assert settings.outbound_url == "maildir:var/sent" and settings.embedded


@pytest.mark.parametrize(("content", "expected"), [
    ('smtp_lisen = "127.0.0.1:25"\n', "key 'smtp_lisen': unknown key"),
    ('smtp_listen = "nowhere"\n', "key 'smtp_listen'"),
    ('database_url = "mysql://x/y"\n', "key 'database_url'"),
    ('[[mailboxes]]\nname = "m"\nurl = "http://x"\n', "key 'mailboxes.0.url'"),
    ("max_recipients = [\n", "not valid TOML"),
    ('agents_address = "agents, boss@support.example"\n', "key 'agents_address'"),
    ('agents_address = "agents"\n', "key 'agents_address'"),
])
def test_bad_file_names_file_and_key(tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content)
    with pytest.raises(ConfigError) as error:
        load_settings(config)
    assert str(config) in str(error.value) and expected in str(error.value)


def test_bad_environment_value_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_BROKER_URL", "kafka://x")
    with pytest.raises(ConfigError, match="broker_url"):
        load_settings(None)


def test_agents_address_is_off_by_default_and_one_address_when_set(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(None).agents_address == ""
    monkeypatch.setenv("GATEWAY_AGENTS_ADDRESS", " Agents@Support.Example ")
    assert load_settings(None).agents_address == "agents@support.example"
