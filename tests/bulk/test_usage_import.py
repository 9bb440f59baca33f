"""``gateway usage import FILE.csv``: upsert, idempotent, all or nothing with line numbers."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from gateway.config import Settings
from gateway.models import FeatureUsage
from gateway.runtime.app import Gateway
from tests.conftest import run_gateway


def _usage(gateway: Gateway) -> dict[tuple[str, str, str], int]:
    with gateway.db.reading() as session:
        return {(u.team_id, u.feature_id, u.period): u.count
                for u in session.scalars(select(FeatureUsage))}


def test_import_upserts_and_is_idempotent(bulk: Gateway, settings: Settings,
                                          tmp_path: Path) -> None:
    before = _usage(bulk)
    csv_file = tmp_path / "usage.csv"
    rows = ["period,team,feature,count", "2026Q3,acme,file-requests,99"]  # any column order
    rows += [f"2025Q{q},globex,{f},{n}" for q in range(1, 5) for n, f in enumerate(
        ["file-requests", "shared-links", "smart-sync"])]
    csv_file.write_text("\n".join(rows) + "\n")
    for _ in range(2):
        result = run_gateway(settings, "usage", "import", str(csv_file))
        assert result.returncode == 0, result.stderr
        assert b"13 usage rows imported" in result.stdout
    after = _usage(bulk)
    assert after[("acme", "file-requests", "2026Q3")] == 99  # updated
    assert after[("globex", "smart-sync", "2025Q4")] == 2
    assert len(after) == len(before) + 12


def test_bad_rows_are_refused_with_their_line_and_nothing_is_kept(
        bulk: Gateway, settings: Settings, tmp_path: Path) -> None:
    before = _usage(bulk)
    cases = {
        "team,feature,count,period\nglobex,file-requests,1,2025Q1\nglobex,nope,1,2025Q1\n":
            b"line 3, column 'feature': unknown feature 'nope'",
        "team,feature,count,period\nglobex,file-requests,-1,2025Q1\n":
            b"line 2, column 'count'",
        "team,feature,count,period\nglobex,file-requests,1,2025-Q1\n":
            b"line 2, column 'period'",
        "team,feature,count,period\nmars,file-requests,1,2025Q1\n":
            b"line 2, column 'team': unknown team 'mars'",
        "team,feature,count\nglobex,file-requests,1\n": b"line 1: the header",
        "team,feature,count,period\nglobex,file-requests,1\n": b"line 2: expected 4 columns",
    }
    for number, (content, message) in enumerate(cases.items()):
        path = tmp_path / f"bad{number}.csv"
        path.write_text(content)
        result = run_gateway(settings, "usage", "import", str(path))
        assert result.returncode == 65, (content, result.stderr)
        assert message in result.stderr and result.stderr.count(b"\n") == 1, result.stderr
    missing = run_gateway(settings, "usage", "import", str(tmp_path / "absent.csv"))
    assert missing.returncode == 65 and b"no such file" in missing.stderr
    assert _usage(bulk) == before
