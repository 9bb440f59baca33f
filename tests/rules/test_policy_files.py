"""Policy files: a bad one is refused with the file and key named, by `rules check` and by
`serve` at start (exit 78); the shipped one is valid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import Settings
from rules.policy import DEFAULT_POLICY, PolicyError, load_policy
from tests.conftest import run_gateway

SHIPPED = DEFAULT_POLICY.read_text()


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("change", "key", "words"), [
    (('target = "1h"', 'target = "1 hour"', 1), "tiers.enhanced.target", "not a duration"),
    (('timezone = "Asia/Tokyo"', 'timezone = "Asia/Tokio"', 1), "calendars.japanese.timezone",
     "not an IANA time zone"),
    (('hours = ["09:00-17:00"]', 'hours = ["17:00-09:00"]', 1), "calendars.japanese.hours.0",
     "not an opening range"),
    (('calendar = "japanese"', 'calendar = "tokyo"', 1), "languages.ja.calendar",
     "unknown calendar 'tokyo'"),
    (('[tiers.enhanced]', '[tiers.platinum]', 1), "tiers.platinum", "Input should be"),
    (('outside_hours = "en"', 'outside_hours = "fr"', 1), "languages.ja.outside_hours",
     "unknown language"),
    (('to = "07:30", target = "10h"', 'to = "07:00", target = "10h"', 1),
     "emergency.windows", "cover every minute"),
    (('holidays = ""                         # "JP"', 'holidays = "XX"  # "JP"', 1),
     "calendars.japanese.holidays", "holidays package"),
    (('[standard]\n', '[standard]\ntargte = "2h"\n', 1), "standard.targte", "unknown key"),
])
def test_bad_policy_names_file_and_key(tmp_path: Path, change: tuple[str, str, int], key: str,
                                       words: str) -> None:
    old, new, count = change
    assert old in SHIPPED
    path = _write(tmp_path, SHIPPED.replace(old, new, count))
    with pytest.raises(PolicyError) as raised:
        load_policy(path)
    message = str(raised.value)
    assert message.startswith(f"policy file {path}: key '{key}'"), message
    assert words in message


def test_not_toml_and_missing_file_are_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="does not exist"):
        load_policy(tmp_path / "nope.toml")
    with pytest.raises(PolicyError, match="is not valid TOML"):
        load_policy(_write(tmp_path, "[standard\n"))


def test_rules_check_command(settings: Settings, tmp_path: Path) -> None:
    good = run_gateway(settings, "rules", "check", str(DEFAULT_POLICY))
    assert good.returncode == 0, good.stderr
    assert b"valid policy" in good.stdout
    bad_path = _write(tmp_path, SHIPPED.replace('target = "4h"', 'target = "soon"', 1))
    bad = run_gateway(settings, "rules", "check", str(bad_path))
    assert bad.returncode == 78
    assert bad.stderr.decode().strip() == (
        f"error: policy file {bad_path}: key 'tiers.essentials.target': 'soon' is not a "
        "duration like 1h, 90m or 1h30m")


def test_serve_refuses_to_start_with_a_bad_policy(
        settings_factory: Callable[..., Settings], tmp_path: Path) -> None:
    bad_path = _write(tmp_path, SHIPPED.replace('calendar = "office"', 'calendar = "ofice"', 1))
    settings = settings_factory(rules_policy=bad_path)
    result = run_gateway(settings, "serve", timeout=60)
    assert result.returncode == 78, result.stderr
    last = result.stderr.decode().strip().splitlines()[-1]
    assert last == (f"error: policy file {bad_path}: key 'standard.calendar': unknown calendar "
                    "'ofice' (known: always, dash-live, japanese, office)")


def test_the_shipped_policy_states_every_mission_rule() -> None:
    policy = load_policy()
    spec: Any = policy.spec
    assert (spec.tiers["essentials"].target, spec.tiers["enhanced"].target) == ("4h", "1h")
    assert (spec.champions["grand"].target, spec.champions["epic"].target) == ("4h", "1h")
    japanese = policy.calendar("japanese")
    assert (japanese.timezone, sorted(japanese.weekdays), japanese.hours) == (
        "Asia/Tokyo", [0, 1, 2, 3, 4], ((540, 1020),))
    dash = policy.calendar(spec.products["dash"].premium_calendar)
    assert (dash.timezone, dash.hours) == ("America/New_York", ((540, 1200),))
    assert spec.emergency.timezone == "Europe/Berlin"
    assert [(w.start, w.end, w.target) for w in spec.emergency.windows] == [
        ("07:30", "22:00", "2h"), ("22:00", "07:30", "10h")]
    assert all(not c.holiday_country for c in policy.calendars.values())  # off by default
