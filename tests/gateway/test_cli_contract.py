"""The command-line contract (DESIGN 4 and 5), checked on the real ``gateway`` process:
``ingest`` answers only 0, 65, 67 (a refused recipient, DESIGN 10) or 75 (anything else
makes an MTA bounce the mail), ``--config`` works before and after the subcommand, and
every error is one sentence."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gateway.config import Settings
from gateway.db import Database, normalise_url
from tests.conftest import PG_URL, REPO, gateway_command, gateway_env, run_gateway
from tests.mail import make_mail


def _run(env: dict[str, str], *args: str, input: bytes | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(gateway_command(*args), env=env, input=input, capture_output=True,
                          cwd=REPO, timeout=120, check=False)


def _one_sentence(result: subprocess.CompletedProcess[bytes]) -> str:
    """The stderr of a failed command: exactly one line, an ``error:`` sentence."""
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def _sqlite_file(tmp_path: Path, name: str) -> Path:
    """A migrated SQLite database of its own, to damage on purpose (also in a PostgreSQL run)."""
    target = tmp_path / name
    database = Database(f"sqlite:///{target}")
    database.upgrade()
    database.dispose()
    return target


# -- 1. ingest: 0 stored, 65 unusable, 67 refused recipient, 75 everything else ----------
def test_ingest_answers_75_for_configuration_errors(settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("max_recipients = [\n")
    mail = make_mail(subject="Must not bounce")
    cases: list[tuple[dict[str, str], tuple[str, ...], str]] = [
        ({}, ("--config", str(broken), "ingest", "-"), "not valid TOML"),
        ({}, ("ingest", "--config", str(broken), "-"), "not valid TOML"),
        ({"GATEWAY_CONFIG": str(broken)}, ("ingest", "-"), "not valid TOML"),
        ({}, ("--config", str(tmp_path / "absent.toml"), "ingest"), "does not exist"),
        ({"GATEWAY_SMTP_LISTEN": "nowhere"}, ("ingest", "-"), "smtp_listen"),
        ({"GATEWAY_BROKER_URL": "kafka://x"}, ("ingest", "-"), "broker_url"),
        ({"GATEWAY_LOG_LEVEL": "chatty"}, ("ingest", "-"), "chatty"),
        ({}, ("ingest", "-", "surplus"), "surplus"),
        # a root option mistyped before the subcommand (it used to exit 2: Exim bounces)
        ({}, ("--conifg", str(broken), "ingest", "-"), "--conifg"),
        ({}, ("--log-level", "ingest"), "Missing command"),
    ]
    for extra, args, reason in cases:
        result = _run(gateway_env(settings, **extra), *args, input=mail)
        assert result.returncode == 75, (args, extra, result.stderr)
        sentence = _one_sentence(result)
        assert "try again later" in sentence and reason in sentence, sentence
    # The same mail, once the configuration is fixed, is stored.
    stored = run_gateway(settings, "ingest", "-", input=mail)
    assert stored.returncode == 0, stored.stderr.decode()
    assert stored.stdout.startswith(b"stored as spool ")


def test_ingest_answers_75_for_a_file_it_cannot_read(settings: Settings,
                                                     tmp_path: Path) -> None:
    for path in (tmp_path / "missing.eml", tmp_path):
        result = run_gateway(settings, "ingest", str(path))
        assert result.returncode == 75, (path, result.stderr)
        assert str(path) in _one_sentence(result)
    message = tmp_path / "message.eml"
    message.write_bytes(make_mail(subject="From a file"))
    stored = run_gateway(settings, "ingest", str(message))
    assert stored.returncode == 0, stored.stderr.decode()
    [row] = json.loads(run_gateway(settings, "inbox", "list", "--json").stdout)
    assert row["source"] == "pipe"


def test_ingest_answers_75_when_the_database_is_read_only(settings: Settings,
                                                          tmp_path: Path) -> None:
    # A URI with mode=ro: file permissions alone do not stop root, who runs some MTAs' pipes.
    frozen = _sqlite_file(tmp_path, "frozen.db")
    url = f"sqlite:///file:{frozen}?mode=ro&uri=true"
    result = _run(gateway_env(settings, GATEWAY_DATABASE_URL=url), "ingest", "-",
                  input=make_mail())
    assert result.returncode == 75, result.stderr
    assert "readonly database" in _one_sentence(result)
    with sqlite3.connect(frozen) as connection:
        assert connection.execute("SELECT count(*) FROM spool").fetchone() == (0,)


def _unknown_revision(tmp_path: Path) -> str:
    """A SQLite database stamped with a revision this code does not know: Alembic fails."""
    damaged = _sqlite_file(tmp_path, "future.db")
    with sqlite3.connect(damaged) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'f00000000000'")
    return f"sqlite:///{damaged}"


def test_ingest_answers_75_for_an_unexpected_error(settings: Settings,
                                                   tmp_path: Path) -> None:
    env = gateway_env(settings,
                      GATEWAY_DATABASE_URL=_unknown_revision(tmp_path))
    result = _run(env, "ingest", "-", input=make_mail())
    assert result.returncode == 75, result.stderr
    assert "f00000000000" in _one_sentence(result)


# -- 2. --config before or after the subcommand -----------------------------------------
@pytest.fixture
def config_env(settings: Settings) -> dict[str, str]:
    """The test's environment without the settings a config file is meant to give."""
    env = gateway_env(settings)
    for name in ("GATEWAY_DATABASE_URL", "GATEWAY_VAR_DIR", "GATEWAY_OUTBOUND_URL"):
        env.pop(name, None)
    return env


def _config(tmp_path: Path, name: str) -> Path:
    base = tmp_path / name
    config = tmp_path / f"{name}.toml"
    config.write_text(f'database_url = "sqlite:///{base}.db"\nvar_dir = "{base}-var"\n'
                      f'outbound_url = "maildir:{base}-sent"\n')
    return config


def test_config_is_accepted_before_and_after_the_subcommand(config_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    filled, empty = _config(tmp_path, "filled"), _config(tmp_path, "empty")
    stored = _run(config_env, "ingest", "--config", str(filled), input=make_mail())
    assert stored.returncode == 0, stored.stderr.decode()
    assert (tmp_path / "filled.db").exists()

    def rows(*args: str, **extra: str) -> list[dict[str, Any]]:
        result = _run({**config_env, **extra}, *args)
        assert result.returncode == 0, (args, result.stderr.decode())
        found: list[dict[str, Any]] = json.loads(result.stdout)
        return found

    assert len(rows("--config", str(filled), "inbox", "list", "--json")) == 1
    assert len(rows("inbox", "list", "--json", "--config", str(filled))) == 1
    assert len(rows("inbox", "--config", str(filled), "list", "--json")) == 1
    assert len(rows("inbox", "list", "--json", GATEWAY_CONFIG=str(filled))) == 1
    # The last --config on the line wins, and it beats GATEWAY_CONFIG.
    assert rows("--config", str(filled), "inbox", "list", "--json", "--config", str(empty)) == []
    assert rows("inbox", "list", "--json", "--config", str(empty), GATEWAY_CONFIG=str(filled)) == []
    assert rows("tickets", "list", "--json", "--config", str(empty)) == []


def test_a_bad_config_after_the_subcommand_is_a_config_error(config_env: dict[str, str],
                                                             tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("smtp_lisen = '127.0.0.1:25'\n")
    result = _run(config_env, "tickets", "list", "--config", str(broken))
    assert result.returncode == 78, result.stderr
    assert "smtp_lisen" in _one_sentence(result)


# -- 3. every command: one sentence, never a traceback -----------------------------------
@pytest.fixture
def unmigrated_url(settings: Settings, tmp_path: Path) -> Iterator[str]:
    """A database without the gateway's tables, where commands do not create them."""
    if not PG_URL:
        # SQLite is upgraded on every command; a stamped file with a table gone is not.
        damaged = _sqlite_file(tmp_path, "damaged.db")
        with sqlite3.connect(damaged) as connection:
            connection.execute("DROP TABLE tickets")
        yield f"sqlite:///{damaged}"
        return
    admin = create_engine(normalise_url(PG_URL), isolation_level="AUTOCOMMIT")
    name = f"gw_test_empty_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(normalise_url(PG_URL)).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_a_missing_schema_is_one_sentence_naming_db_upgrade(settings: Settings,
                                                            unmigrated_url: str) -> None:
    env = gateway_env(settings, GATEWAY_DATABASE_URL=unmigrated_url)
    result = _run(env, "tickets", "list", "--json")
    assert result.returncode == 1, result.stderr
    sentence = _one_sentence(result)
    assert "tickets" in sentence and "gateway db upgrade" in sentence, sentence
    assert result.stdout == b""


def test_an_unexpected_error_is_one_sentence_and_a_traceback_only_on_debug(
        settings: Settings, tmp_path: Path) -> None:
    env = gateway_env(settings,
                      GATEWAY_DATABASE_URL=_unknown_revision(tmp_path))
    result = _run(env, "tickets", "list")
    assert result.returncode == 1, result.stderr
    assert "f00000000000" in _one_sentence(result)
    debug = _run({**env, "GATEWAY_LOG_LEVEL": "DEBUG"}, "tickets", "list")
    assert debug.returncode == 1 and b"Traceback" in debug.stderr
