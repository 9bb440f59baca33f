"""django-helpdesk's side of bench/throughput.py, run with the benchmark's own venv.

    HELPDESK_BENCH_DIR=DIR python run.py setup            # migrate, one queue reading DIR/inbox
    HELPDESK_BENCH_DIR=DIR python run.py folder           # `manage.py get_email` on DIR/inbox
    HELPDESK_BENCH_DIR=DIR python run.py ordered MANIFEST EML_DIR
        # one Django process; each message put in the inbox alone, in sending order, then
        # helpdesk.email.process_email() (what `manage.py get_email` runs): prints seconds
    HELPDESK_BENCH_DIR=DIR python run.py count MANIFEST   # tickets, follow-ups, replies threaded

Both timed runs read files with the decoding django-helpdesk's own code asks for: its local
reader opens each file as strict text in the locale's encoding (UTF-8 here) and only then
calls ``force_str(..., errors="replace")``, so the first 8-bit windows-1252 or iso-8859-1
body of the corpus stopped `get_email` with a UnicodeDecodeError and left every later file
unread (no figure at all). ``open`` in ``helpdesk.email`` is given ``errors="replace"``, the
intent of that ``force_str``. A message it raises on is set aside and counted as failed
(``_extract_or_set_aside``); it counts in no rate.
"""

import builtins
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")

import django  # noqa: E402

django.setup()

import helpdesk.email  # noqa: E402
from django.core.management import call_command  # noqa: E402
from helpdesk.email import process_email  # noqa: E402
from helpdesk.models import FollowUp, Queue, Ticket  # noqa: E402

WORK = Path(os.environ["HELPDESK_BENCH_DIR"])
INBOX = WORK / "inbox"
FAILED = WORK / "failed"
_opened: list[str] = []


def _open(path: str, mode: str = "r") -> Any:
    """``open`` for helpdesk.email's local reader: the decoding its force_str intends."""
    _opened.append(path)
    return builtins.open(path, mode, errors="replace")


_extract = helpdesk.email.extract_email_metadata


def _extract_or_set_aside(**arguments: Any) -> Any:
    """A message django-helpdesk raises on (email_reply_parser's ``re.error: bad escape``
    on a quote header with a backslash) would end the queue's run there, and every later
    run at the same file: set it aside in FAILED, as its operator would, and go on."""
    try:
        return _extract(**arguments)
    except Exception:  # noqa: BLE001 - the peer's own failure, counted
        FAILED.mkdir(exist_ok=True)
        shutil.move(_opened[-1], FAILED / Path(_opened[-1]).name)
        return None


helpdesk.email.open = _open
helpdesk.email.extract_email_metadata = _extract_or_set_aside


def setup() -> None:
    call_command("migrate", verbosity=0)
    INBOX.mkdir(exist_ok=True)
    Queue.objects.create(
        title="Support", slug="support", email_address="support@support.example",
        allow_email_submission=True, email_box_type="local",
        email_box_local_dir=str(INBOX), email_box_interval=0, logging_type="none")


def ordered(manifest: list[dict[str, Any]], eml_dir: Path) -> None:
    started = time.perf_counter()
    for entry in manifest:
        shutil.copyfile(eml_dir / entry["file"], INBOX / entry["file"])
        Queue.objects.filter(slug="support").update(email_box_last_check=None)
        process_email(quiet=True)
    print(json.dumps({"seconds": time.perf_counter() - started}))


def count(manifest: list[dict[str, Any]]) -> None:
    placed = dict(FollowUp.objects.exclude(message_id=None).values_list("message_id",
                                                                         "ticket_id"))
    by_index = {m["index"]: m for m in manifest}
    replies = [m for m in manifest if m["parent"]]
    on_parent = sum(1 for m in replies
                    if placed.get(m["message_id"]) is not None
                    and placed.get(m["message_id"]) == placed.get(
                        by_index.get(m["parent"], {}).get("message_id")))
    print(json.dumps({"tickets": Ticket.objects.count(), "followups": FollowUp.objects.count(),
                      "replies": len(replies), "on_parent": on_parent,
                      "left_in_inbox": len(list(INBOX.iterdir())),
                      "failed": len(list(FAILED.iterdir())) if FAILED.is_dir() else 0,
                      "mails_sent": len(list((WORK / "sent").glob("*")))
                      if (WORK / "sent").is_dir() else 0}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "setup":
        setup()
    elif command == "folder":
        call_command("get_email", quiet=True)
    elif command == "ordered":
        ordered(json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3]))
    else:
        count(json.loads(Path(sys.argv[2]).read_text()))
