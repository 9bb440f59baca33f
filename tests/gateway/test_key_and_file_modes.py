"""The key and the files that hold secrets (issue 12, item 6; DESIGN section 11).

A ``GATEWAY_SECRET_KEY`` shorter than 32 characters is a configuration error: ``serve``
and every other command stop with one sentence (``ingest`` exits 75 so the MTA retries).
In embedded mode ``var/`` is created 0700, the SQLite database with its -wal/-shm files
and the generated key 0600, whatever the umask.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.secrets import load_secret
from tests.conftest import REPO, free_port, gateway_command, gateway_env, wait_for, wait_for_port

SHORT = "x" * 31


def _run(settings: Settings, *args: str, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(gateway_command(*args), env=gateway_env(settings,
                          GATEWAY_SECRET_KEY=key), capture_output=True, text=True, cwd=REPO,
                          timeout=120, input="", check=False)


def test_a_short_key_stops_serve_with_one_sentence(settings: Settings) -> None:
    done = _run(settings, "serve", key=SHORT)
    assert done.returncode == 78
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "at least 32 characters" in lines[0], done.stderr
    assert SHORT not in done.stderr  # the key itself is never echoed


@pytest.mark.parametrize(("args", "status"), [
    (("db", "upgrade"), 78), (("tickets", "list"), 78), (("worker",), 78),
    (("ingest", "-"), 75),
])
def test_every_command_refuses_a_short_key(settings: Settings, args: tuple[str, ...],
                                           status: int) -> None:
    done = _run(settings, *args, key="secret")
    assert done.returncode == status, done.stderr
    assert "at least 32 characters" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_a_key_of_32_characters_is_accepted(settings: Settings) -> None:
    done = _run(settings, "tickets", "list", key="k" * 32)
    assert done.returncode == 0, done.stderr


def test_a_short_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("abc\n")
    embedded = Settings(var_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'g.db'}")
    with pytest.raises(ConfigError, match="shorter than 32 characters"):
        load_secret(embedded)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_serve_keeps_var_the_database_and_the_key_private(tmp_path: Path) -> None:
    # Given a fresh directory and the embedded defaults (var/gateway.db, a generated key)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    smtp = f"127.0.0.1:{free_port()}"
    env.update(GATEWAY_SMTP_LISTEN=smtp, GATEWAY_WEB_LISTEN=f"127.0.0.1:{free_port()}")
    env["PYTHONPATH"] = str(REPO)
    log = tmp_path / "serve.log"
    with open(log, "wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], env=env,
                                   cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT,
                                   preexec_fn=lambda: os.umask(0o022))  # noqa: PLW1509
    try:
        wait_for_port("127.0.0.1", int(smtp.rsplit(":", 1)[1]), timeout=60, process=process)
        var = tmp_path / "var"
        wait_for(lambda: (var / "secret_key").exists(), message="the generated key")
        # Then var/ is 0700, and the database, its WAL files and the key are 0600
        assert _mode(var) == 0o700
        files = [var / "gateway.db", var / "gateway.db-wal", var / "gateway.db-shm",
                 var / "secret_key"]
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert len((var / "secret_key").read_text().strip()) >= 32
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode in (0, -15), log.read_text()
