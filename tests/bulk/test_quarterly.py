"""Quarterly feature mail: one mail per admin of each premium team with the three features
the team used least, in the admin's language; never twice, whether run again, killed
half-way or run on two nodes at once."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from sqlalchemy import select

from gateway.bulk.quarterly import parse_quarter, previous_quarter
from gateway.config import Settings
from gateway.models import OutboxItem, OutboxStatus
from gateway.runtime.app import Gateway
from tests.bulk.conftest import delivered, recipients, text_of, wait_delivered
from tests.conftest import REPO, broken_template, gateway_command, gateway_env, run_gateway

QUARTER = "2026Q4"

# Who must get the mail, in which language, naming which features in which order.
EXPECTED = {
    "anna@acme.example": ("de", ["Zweistufige Überprüfung", "Intelligente Synchronisierung",
                                 "Freigabelinks"]),
    "peter@initech.example": ("en", ["File requests", "Shared links", "Version history"]),
    "michiko@initech.example": ("ja", ["ファイルリクエスト", "共有リンク", "バージョン履歴"]),
    "luca@umbrella.example": ("it", ["Link condivisi", "Cronologia versioni",
                                     "Verifica in due passaggi"]),
    "sanne@umbrella.example": ("nl", ["Gedeelde links", "Versiegeschiedenis",
                                      "Verificatie in twee stappen"]),
}
EXPECTED_IDS = {
    "anna@acme.example": ["two-factor", "smart-sync", "shared-links"],
    "peter@initech.example": ["file-requests", "shared-links", "version-history"],
    "michiko@initech.example": ["file-requests", "shared-links", "version-history"],
    "luca@umbrella.example": ["shared-links", "version-history", "two-factor"],
    "sanne@umbrella.example": ["shared-links", "version-history", "two-factor"],
}


def _assert_each_admin_once_with_right_features(settings: Settings) -> None:
    mails = delivered(settings)
    assert recipients(settings) == {email: 1 for email in EXPECTED}
    for mail in mails:
        email = mail["To"].addresses[0].addr_spec
        language, names = EXPECTED[email]
        assert mail["Content-Language"] == language
        text = text_of(mail)
        positions = [text.find(name) for name in names]
        assert -1 not in positions and positions == sorted(positions), (email, text)
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "/unsubscribe/" in mail["List-Unsubscribe"]
        assert mail["Auto-Submitted"] == "auto-generated"


def test_quarter_arithmetic() -> None:
    assert parse_quarter("2026Q4")[0].isoformat() == "2026-10-01"
    assert parse_quarter("2026Q4")[1].isoformat() == "2027-01-01"
    assert previous_quarter("2026Q4") == "2026Q3" and previous_quarter("2027Q1") == "2026Q4"


def test_dry_run_names_admins_and_features_and_sends_nothing(
        bulk: Gateway, settings: Settings) -> None:
    result = run_gateway(settings, "quarterly", "run", "--quarter", QUARTER, "--dry-run",
                         "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["email"]: r["features"] for r in rows} == EXPECTED_IDS
    assert {r["status"] for r in rows} == {"would send"}
    assert delivered(settings) == []
    text = run_gateway(settings, "quarterly", "run", "--quarter", QUARTER, "--dry-run")
    assert b"anna@acme.example" in text.stdout and b"5 would be sent" in text.stdout


def add_acme_admin(settings: Settings, tmp_path: Path, email: str, name: str,
                   extra: str = "") -> None:
    """Load one more German-speaking admin of acme, as an operator would."""
    directory = tmp_path / "extra_admin.toml"
    directory.write_text(f'[[people]]\nemail = "{email}"\nname = "{name}"\nteam = "acme"\n'
                         f'role = "admin"\nlanguage = "de"\n{extra}', encoding="utf-8")
    loaded = run_gateway(settings, "directory", "load", str(directory))
    assert loaded.returncode == 0, loaded.stderr


def test_an_admin_who_is_a_champion_gets_no_quarterly_mail(
        bulk: Gateway, settings: Settings, tmp_path: Path) -> None:
    add_acme_admin(settings, tmp_path, "greta@acme.example", "Greta Grand", 'champion = "grand"\n')
    result = run_gateway(settings, "quarterly", "run", "--quarter", QUARTER, "--dry-run",
                         "--json")
    assert result.returncode == 0, result.stderr
    emails = {r["email"] for r in json.loads(result.stdout)}
    assert "greta@acme.example" not in emails and "anna@acme.example" in emails


def test_run_sends_one_mail_per_premium_admin_and_nothing_the_second_time(
        bulk: Gateway, settings: Settings, worker_process: None) -> None:
    # Members, the champion (Carla), the standard team (globex) and the team whose
    # add-on ended (oldco) get nothing.
    first = run_gateway(settings, "quarterly", "run", "--quarter", QUARTER)
    assert first.returncode == 0, first.stderr
    assert b"5 sent, 0 already sent before" in first.stdout
    wait_delivered(settings, len(EXPECTED))
    _assert_each_admin_once_with_right_features(settings)

    again = run_gateway(settings, "quarterly", "run", "--quarter", QUARTER)
    assert again.returncode == 0, again.stderr
    assert b"0 sent, 5 already sent before" in again.stdout
    time.sleep(1.5)  # scale-out: give a worker time to deliver anything it was given
    _assert_each_admin_once_with_right_features(settings)


def test_killed_half_way_then_run_again_sends_the_rest_once(
        bulk: Gateway, settings: Settings, worker_process: None
) -> None:
    slow = settings.model_copy(update={"bulk_batch_size": 1, "bulk_batch_interval": 1.0})
    process = subprocess.Popen(
        gateway_command("quarterly", "run", "--quarter", QUARTER),
        env=gateway_env(slow, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, cwd=REPO)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if b" 2 sent," in line:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL and len(seen) == 2, seen
    rest = run_gateway(settings, "quarterly", "run", "--quarter", QUARTER)
    assert rest.returncode == 0, rest.stderr
    assert b"3 sent, 2 already sent before" in rest.stdout
    wait_delivered(settings, len(EXPECTED))
    time.sleep(1.0)
    _assert_each_admin_once_with_right_features(settings)


def test_two_nodes_running_at_once_send_each_mail_once(
        bulk: Gateway, settings: Settings, worker_process: None) -> None:
    paced = settings.model_copy(update={"bulk_batch_size": 1, "bulk_batch_interval": 0.2})
    env = gateway_env(paced)
    nodes = [subprocess.Popen(gateway_command("quarterly", "run", "--quarter", QUARTER),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
             for _ in range(2)]
    outputs = [node.communicate(timeout=120) for node in nodes]
    assert [n.returncode for n in nodes] == [0, 0], [o[1][-500:] for o in outputs]
    sent = [int(out.decode().rsplit(": ", 1)[1].split(" sent")[0]) for out, _ in outputs]
    assert sum(sent) == len(EXPECTED), outputs
    wait_delivered(settings, len(EXPECTED))
    time.sleep(1.0)
    _assert_each_admin_once_with_right_features(settings)


def test_bad_quarter_is_refused(bulk: Gateway, settings: Settings) -> None:
    result = run_gateway(settings, "quarterly", "run", "--quarter", "2026-10")
    assert result.returncode == 2 and b"2026Q4" in result.stderr


def test_an_admin_whose_address_no_mail_can_carry_stops_nobody_elses_quarterly_mail(
        bulk: Gateway, settings: Settings, tmp_path: Path) -> None:
    # Given an admin of acme (sorted after Anna, before initech and umbrella) whose address
    # the directory takes but no mail header can carry (an underscore in the host name):
    # the job stopped at her, every run, and the admins after her never got the mail
    add_acme_admin(settings, tmp_path, "anne@mail_host.acme.example", "Anne")
    run = run_gateway(settings, "jobs", "run", "quarterly", "--at", "2026-10-01T07:00:00Z")
    assert run.returncode == 0, run.stderr
    with bulk.db.reading() as session:
        rows = {item.rcpt_to: item for item in session.scalars(
            select(OutboxItem).where(OutboxItem.kind == "quarterly"))}
    assert set(rows) == {*EXPECTED, "anne@mail_host.acme.example"}
    dead = rows.pop("anne@mail_host.acme.example")
    assert dead.status == OutboxStatus.DEAD and "cannot be written" in dead.last_error
    assert all(item.status != OutboxStatus.DEAD for item in rows.values())


def test_an_admin_whose_mail_cannot_be_made_holds_up_nobody_and_the_run_says_who(
        bulk: Gateway, settings: Settings, tmp_path: Path, worker_process: None) -> None:
    # An operator's template copy whose Italian quarterly subject fails to render: before,
    # the job stopped at Luca (umbrella, sorted before Sanne) at every run
    broken = broken_template(settings, tmp_path, "it", "quarterly")
    operator = broken.settings
    run = run_gateway(operator, "jobs", "run", "quarterly", "--at", "2026-10-01T07:00:00Z")
    assert run.returncode == 1
    assert b"quarterly: ran as of 2026-10-01T07:00:00+00:00; 4 mails queued" in run.stdout
    assert b"1 of 5 items failed" in run.stderr
    assert b"luca@umbrella.example of team umbrella" in run.stderr
    wait_delivered(settings, 4)
    assert set(recipients(settings)) == set(EXPECTED) - {"luca@umbrella.example"}
    listed = run_gateway(operator, "jobs", "list", "--json")
    [view] = [v for v in json.loads(listed.stdout) if v["name"] == "quarterly"]
    assert view["last_outcome"] == "failed"

    # Once the template is mended, the next run mails Luca and nobody twice.
    broken.mend()
    again = run_gateway(operator, "jobs", "run", "quarterly", "--at", "2026-10-02T07:00:00Z")
    assert again.returncode == 0, again.stderr
    assert b"1 mails queued" in again.stdout
    wait_delivered(settings, 5)
    _assert_each_admin_once_with_right_features(settings)
