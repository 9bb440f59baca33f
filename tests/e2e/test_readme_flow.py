"""The README's promise on the embedded default: `gateway serve`, one mail with smtplib,
then a ticket in `gateway tickets list` and the acknowledgement in var/sent."""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from tests.conftest import REPO, free_port, wait_for, wait_for_port
from tests.mail import maildir_messages


def _gateway(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_readme_flow_on_a_fresh_directory(tmp_path: Path) -> None:
    # Given an empty working directory and only the listen ports changed from the defaults
    smtp_port, web_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(GATEWAY_SMTP_LISTEN=f"127.0.0.1:{smtp_port}",
               GATEWAY_WEB_LISTEN=f"127.0.0.1:{web_port}",
               PYTHONPATH=str(REPO))
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115
    serve = subprocess.Popen([sys.executable, "-m", "gateway", "serve"], cwd=tmp_path, env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port("127.0.0.1", smtp_port, process=serve, timeout=60)
        loaded = _gateway(tmp_path, env, "directory", "load", str(REPO / "examples/directory.toml"))
        assert loaded.returncode == 0, loaded.stderr
        # When one mail is sent with smtplib to the support address
        message = EmailMessage()
        message["From"], message["To"] = "anna@acme.example", "support@support.example"
        message["Subject"] = "Sync fails"
        message.set_content("Hello, sync fails since Monday.")
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
            client.send_message(message)
        # Then a ticket exists and its acknowledgement lands in var/sent
        sent = wait_for(lambda: maildir_messages(tmp_path / "var" / "sent"), timeout=60,
                        message="acknowledgement in var/sent")
        listed = _gateway(tmp_path, env, "tickets", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        tickets = json.loads(listed.stdout)
        assert [t["subject"] for t in tickets] == ["Sync fails"]
        assert tickets[0]["requester"] == "anna@acme.example"
        assert f"[#{tickets[0]['number']}]" in sent[0]["Subject"]
        shown = json.loads(_gateway(tmp_path, env, "tickets", "show",
                                    str(tickets[0]["number"]), "--json").stdout)
        assert shown["messages"][0]["text"] == "Hello, sync fails since Monday."
        outbox = json.loads(_gateway(tmp_path, env, "outbox", "list", "--json").stdout)
        assert [(o["kind"], o["status"]) for o in outbox] == [("acknowledgement", "sent")]
    finally:
        serve.terminate()
        serve.wait(timeout=30)
        log.close()
    assert serve.returncode == 0, (tmp_path / "serve.log").read_text()
