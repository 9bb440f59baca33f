"""`gateway ingest`: the pipe entry stores through the same durable path, with sysexits codes."""

from __future__ import annotations

import json

from gateway.config import Settings
from tests.conftest import DIRECTORY, run_gateway, wait_for
from tests.mail import make_mail


def test_ingest_stores_processes_and_deduplicates(settings: Settings,
                                                  worker_process: None) -> None:
    assert run_gateway(settings, "directory", "load", str(DIRECTORY)).returncode == 0
    raw = make_mail(subject="Via pipe", body="Sent through the MTA pipe.")
    first = run_gateway(settings, "ingest", "-", input=raw)
    assert first.returncode == 0, first.stderr.decode()
    again = run_gateway(settings, "ingest", "-", input=raw)
    assert again.returncode == 0 and b"duplicate" in again.stdout
    def processed() -> list[dict[str, object]]:
        rows = json.loads(run_gateway(settings, "inbox", "list", "--json").stdout)
        return rows if rows and rows[0]["state"] == "processed" else []
    # Embedded mode processes right away in the ingest process; scale-out via the worker.
    [row] = wait_for(processed, message="the piped message processed")
    [ticket] = json.loads(run_gateway(settings, "tickets", "list", "--json").stdout)
    assert row["source"] == "pipe" and row["ticket"] == ticket["number"]
    assert ticket["subject"] == "Via pipe"


def test_ingest_refuses_unusable_input_with_65(settings: Settings) -> None:
    for junk in (b"", b"\n\n", b"just some words, no header\n"):
        result = run_gateway(settings, "ingest", "-", input=junk)
        assert result.returncode == 65, (junk, result.stderr)
        assert result.stderr.startswith(b"error: ")


def test_ingest_answers_75_when_the_database_is_unreachable(settings: Settings) -> None:
    broken = settings.model_copy(
        update={
            "database_url": "postgresql://nobody@127.0.0.1:1/none"
            if settings.broker_url
            else "sqlite:////proc/no-such-dir/gateway.db"
        }
    )
    result = run_gateway(broken, "ingest", "-", input=make_mail())
    assert result.returncode == 75, result.stderr
    assert b"try again later" in result.stderr
