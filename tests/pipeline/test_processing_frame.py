"""The frame around the steps (``gateway.pipeline.processing._run_pipeline``): the spool row
is read locked by a prebuilt Core statement into a SpoolEntry the session does not track,
and where processing left it is written back by one UPDATE.  These tests pin that the steps
see the row as the ORM would load it, and that the row ends as the steps left the entry."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine

from gateway.models import SpoolEntry, SpoolState
from gateway.pipeline import processing
from gateway.pipeline.analysis_pool import limits_of
from gateway.pipeline.context import MailContext
from gateway.pipeline.flow import run_pipeline
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from inbound.parsing.analysis import Analysis, analyze
from tests.mail import make_mail
from tests.pipeline.build import origin_of, passed, processed, spool

ANNA, GIULIA, KENJI = "anna@acme.example", "giulia@globex.example", "kenji@support.example"
_COLUMNS = [column.key for column in SpoolEntry.__table__.c]


def _row(gateway: Gateway, spool_id: int) -> dict[str, Any]:
    """Every column of the spool row, loaded by the ORM."""
    with gateway.db.reading() as session:
        entry = session.get(SpoolEntry, spool_id)
        assert entry is not None
        return {key: getattr(entry, key) for key in _COLUMNS}


def _processing(gateway: Gateway, monkeypatch: pytest.MonkeyPatch, spool_id: int
                ) -> tuple[processing.ProcessOutcome, MailContext, dict[str, Any]]:
    """Process the row; also return the context and the entry's columns as the first step
    saw them."""
    seen: list[tuple[MailContext, dict[str, Any]]] = []
    real = run_pipeline

    def watched(ctx: MailContext) -> None:
        seen.append((ctx, {key: getattr(ctx.spool, key) for key in _COLUMNS}))
        real(ctx)

    monkeypatch.setattr(processing, "run_pipeline", watched)
    outcome = process_spool_entry(gateway.db, gateway.services, spool_id)
    [(ctx, columns)] = seen
    return outcome, ctx, columns


def test_the_steps_see_every_column_as_the_orm_loads_it(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    spool_id = spool(gw, make_mail(sender=ANNA), options={"note": "kept"})
    before = _row(gw, spool_id)
    _outcome, _ctx, seen = _processing(gw, monkeypatch, spool_id)
    # the attempt counted before the pipeline's transaction; every other column as stored
    assert seen == {**before, "attempts": before["attempts"] + 1}
    assert seen["raw"].startswith(b"From: ") and seen["options"] == {"note": "kept"}


def test_a_new_request_leaves_the_row_as_the_steps_left_the_entry(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    spool_id = spool(gw, make_mail(sender=ANNA))
    before = _row(gw, spool_id)
    outcome, ctx, _seen = _processing(gw, monkeypatch, spool_id)
    after = _row(gw, spool_id)
    assert outcome.state == "processed" and outcome.ticket_number is not None
    assert after["state"] == SpoolState.PROCESSED
    assert after["reason"] == outcome.reason == f"new ticket #{outcome.ticket_number}"
    assert after["ticket_number"] == outcome.ticket_number
    assert after["processed_at"] is not None
    assert after["trace"] == ctx.trace and ctx.trace
    assert {key: after[key] for key in ("state", "reason", "processed_at", "ticket_number",
                                        "trace")} == {
        key: getattr(ctx.spool, key) for key in ("state", "reason", "processed_at",
                                                 "ticket_number", "trace")}
    unchanged = set(_COLUMNS) - {"state", "reason", "processed_at", "ticket_number", "trace",
                                 "attempts"}
    assert {key: after[key] for key in unchanged} == {key: before[key] for key in unchanged}
    assert after["attempts"] == before["attempts"] + 1


def test_a_disposition_is_written_with_its_reason_and_trace(
        gw: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    spool_id = spool(gw, make_mail(sender=ANNA, headers={"Auto-Submitted": "auto-replied"}))
    outcome, ctx, _seen = _processing(gw, monkeypatch, spool_id)
    after = _row(gw, spool_id)
    assert outcome.state == "ignored" and ctx.reason
    assert (after["state"], after["reason"]) == (SpoolState.IGNORED, ctx.reason)
    assert after["processed_at"] is not None and after["ticket_number"] is None
    assert after["trace"] == ctx.trace
    assert any(line["step"] == "guard-auto-reply" for line in after["trace"])


def test_a_merge_leaves_the_row_on_the_target_ticket(gw: Gateway) -> None:
    kept = processed(gw, make_mail(sender=ANNA, subject="Sync fails"))
    gone = processed(gw, make_mail(sender=GIULIA, subject="Sync broken too"))
    command = spool(gw, make_mail(sender=KENJI, subject="Re: Sync",
                                  in_reply_to=origin_of(gw, gone), body=f"#merge {kept}",
                                  headers=passed(KENJI)))
    outcome = process_spool_entry(gw.db, gw.services, command)
    after = _row(gw, command)
    assert outcome.ticket_number == after["ticket_number"] == kept
    assert after["reason"] == outcome.reason and f"merged into ticket #{kept}" in outcome.reason


def test_a_row_already_done_is_answered_from_the_row(gw: Gateway) -> None:
    spool_id = spool(gw, make_mail(sender=ANNA))
    first = process_spool_entry(gw.db, gw.services, spool_id)
    before = _row(gw, spool_id)
    # the pipeline's own second look (the row changed after the attempt was counted)
    again = processing._run_pipeline(gw.db, gw.services, spool_id, before["raw"],
                                     before["mail_from"], _analysis_of(gw, before), None,
                                     uncounted_attempt=True)
    assert (again.state, again.reason, again.ticket_number) == (
        first.state, first.reason, first.ticket_number)
    assert _row(gw, spool_id) == before


def _analysis_of(gw: Gateway, row: dict[str, Any]) -> Analysis:
    return analyze(row["raw"], row["mail_from"], limits_of(gw.settings))


def test_the_row_is_locked_on_postgresql() -> None:
    """SQLite's write transaction is the lock there; PostgreSQL needs the row lock."""
    postgresql = create_engine("postgresql+psycopg://").dialect
    sql = str(processing._LOCKED.statement.compile(dialect=postgresql))
    assert sql.rstrip().endswith("FOR UPDATE")
    assert "spool.raw" not in sql  # read once, by the attempt counter
