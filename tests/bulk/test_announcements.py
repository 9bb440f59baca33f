"""An announcement to 2,000 people: batches at the configured rate, the unsubscribed
skipped, each person's translation, and after a SIGKILL part-way a resume that sends
the rest, nobody twice."""

from __future__ import annotations

import json
import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.config import Settings
from gateway.directory import load_directory_file
from gateway.models import AnnouncementRecipient, Person, Unsubscribe, utcnow
from gateway.runtime.app import Gateway
from tests.bulk.conftest import delivered, recipients, wait_delivered
from tests.conftest import REPO, broken_template, gateway_command, gateway_env, run_gateway

PEOPLE = 2000
BATCH = 250
INTERVAL = 0.5
UNSUBSCRIBED = ["p0007@crowd.example", "p0500@crowd.example", "p1999@crowd.example"]
LANGUAGES = ["en", "de", "ja", "it"]


def _crowd(path: Path) -> Path:
    lines = ['[[teams]]\nid = "crowd"\nname = "Crowd AG"\nlicenses = 2000\n']
    for n in range(PEOPLE):
        lines.append(f'[[people]]\nemail = "p{n:04d}@crowd.example"\nname = "Person {n}"\n'
                     f'team = "crowd"\nlanguage = "{LANGUAGES[n % 4]}"\n')
    path.write_text("\n".join(lines))
    return path


@pytest.mark.slow
def test_two_thousand_in_batches_skip_unsubscribed_resume_after_kill(
        gateway: Gateway, settings: Settings, tmp_path: Path, worker_process: None) -> None:
    with gateway.db.transaction() as session:
        load_directory_file(session, _crowd(tmp_path / "crowd.toml"))
        session.add_all(Unsubscribe(email=e, list_name="announcements", source="web")
                        for e in UNSUBSCRIBED)
    body = tmp_path / "body.txt"
    body.write_text("The service is down for maintenance on Saturday, 06:00-08:00 UTC.\n")
    german = tmp_path / "de.txt"
    german.write_text("Wartungsarbeiten am Samstag\nDer Dienst ist am Samstag nicht "
                      "erreichbar.\n")
    paced = settings.model_copy(update={"bulk_batch_size": BATCH, "bulk_lease_ttl": 2.0,
                                        "bulk_batch_interval": INTERVAL})

    # When the sender is killed after its third batch
    process = subprocess.Popen(
        gateway_command("announce", "--subject", "Maintenance on Saturday", "--body-file",
                        str(body), "--audience", "team:crowd", "--language-file",
                        f"de={german}"),
        env=gateway_env(paced, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, cwd=REPO)
    assert process.stdout is not None
    for line in process.stdout:
        if b": batch 3:" in line:
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    with gateway.db.reading() as session:
        queued = session.scalar(select(func.count()).select_from(AnnouncementRecipient).where(
            AnnouncementRecipient.status == "queued"))
    assert queued == 3 * BATCH  # stopped part-way: 750 of 1,997

    # Then a resume sends the rest
    resumed = run_gateway(paced, "announcements", "resume", "1", timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert b"1997 queued" in resumed.stdout, resumed.stdout
    expected = PEOPLE - len(UNSUBSCRIBED)
    wait_delivered(settings, expected, timeout=300)

    counts = recipients(settings)
    assert len(counts) == expected and set(counts.values()) == {1}  # nobody twice
    assert not set(UNSUBSCRIBED) & set(counts)
    german_mails = delivered(settings, to="p0001@crowd.example")
    assert german_mails[0]["Subject"] == "Wartungsarbeiten am Samstag"
    assert german_mails[0]["Content-Language"] == "de"
    english = delivered(settings, to="p0002@crowd.example")  # ja: no translation given
    assert english[0]["Subject"] == "Maintenance on Saturday"

    # Batches: never more than BATCH at a time, starting INTERVAL seconds apart
    with gateway.db.reading() as session:
        batches = session.execute(select(
            AnnouncementRecipient.batch, func.count(), func.min(AnnouncementRecipient.queued_at))
            .where(AnnouncementRecipient.status == "queued")
            .group_by(AnnouncementRecipient.batch).order_by(AnnouncementRecipient.batch)).all()
    assert sum(size for _b, size, _t in batches) == expected
    assert max(size for _b, size, _t in batches) <= BATCH and len(batches) == 8
    starts = [started for _b, _s, started in batches]
    assert all(b - a >= timedelta(seconds=INTERVAL * 0.9) for a, b in zip(starts, starts[1:],
                                                                              strict=False))
    assert starts[-1] - starts[0] >= timedelta(seconds=INTERVAL * 6)
    assert starts[-1] <= utcnow()

    listed = run_gateway(settings, "announcements", "list", "--json")
    view = json.loads(listed.stdout)[0]
    assert view["status"] == "done" and view["recipients"] == PEOPLE
    assert view["skipped"] == len(UNSUBSCRIBED) and view["queued"] == expected
    assert view["sent"] == expected or settings.broker_url  # scale-out: workers may lag
    assert view["languages"] == ["en", "de"]


def test_bad_audience_is_refused_with_one_sentence(gateway: Gateway, settings: Settings,
                                                  tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_text("Hello\n")
    result = run_gateway(settings, "announce", "--subject", "X", "--body-file", str(body),
                         "--audience", "team:nope")
    assert result.returncode == 2 and b"there is no team 'nope'" in result.stderr
    listed = run_gateway(settings, "announcements", "list", "--json")
    assert json.loads(listed.stdout) == []


def test_a_recipient_whose_mail_cannot_be_made_holds_up_nobody(
        bulk: Gateway, settings: Settings, tmp_path: Path, worker_process: None) -> None:
    # An operator's template copy whose Italian announcement fails to render: before, the
    # batch's one transaction failed, and every resume failed again, so nobody got it
    operator = broken_template(settings, tmp_path, "it", "announcement").settings
    body = tmp_path / "body.txt"
    body.write_text("Maintenance on Saturday 06:00-08:00 UTC.\n", encoding="utf-8")
    italian = tmp_path / "it.txt"
    italian.write_text("Manutenzione\nManutenzione sabato 06:00-08:00 UTC.\n", encoding="utf-8")
    with bulk.db.reading() as session:
        italians = set(session.scalars(select(Person.email).where(Person.language == "it")))
        everyone = set(session.scalars(select(Person.email)))
    assert italians and everyone - italians
    result = run_gateway(operator, "announce", "--subject", "Maintenance", "--body-file",
                         str(body), "--language-file", f"it={italian}")
    assert result.returncode == 1
    assert f"{len(italians)} of {len(everyone)} items failed".encode() in result.stderr
    assert all(email.encode() in result.stderr for email in italians)
    wait_delivered(settings, len(everyone - italians))
    assert set(recipients(settings)) == everyone - italians
    [view] = json.loads(run_gateway(settings, "announcements", "list", "--json").stdout)
    assert view["status"] == "done" and view["failed"] == len(italians)
