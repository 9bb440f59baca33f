"""Time the pure-Python message classifiers against a stdlib parse of the same message.

The gateway spends its CPU per message on ``parse_message``, ``split_reply``,
``detect_bounce`` and ``detect_automatic`` (``inbound.parsing.analysis`` runs all four), and
at 50 messages/s on two cores that work shares the CPU and the GIL with SMTP intake
and the database.  This script times each function on a few representative messages
and, in the same run, a baseline: the standard library's
``email.message_from_bytes(raw, policy=email.policy.default)`` plus the
``get_body()`` content.  The "x base" column divides by that baseline, so figures
taken on different machines can be compared.

    .venv/bin/python bench/classifiers.py               # about a minute
    .venv/bin/python bench/classifiers.py --quick       # shorter, noisier

Messages: an ordinary 5 KB text mail, a 100 KB reply (a pasted log and quoted
history), an HTML-only mail, and from the shared corpus a Postfix DSN, a qmail
plain-text bounce and an AOL vacation reply.  Each figure is the best of several
repeats (the least disturbed by other processes); run it on an idle machine.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import inspect
import os
import platform
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from functools import partial
from pathlib import Path

from inbound.parsing.automatic import detect_automatic
from inbound.parsing.bounces import detect_bounce
from inbound.parsing.message import parse_message
from inbound.parsing.reply_text import split_reply

REPO = Path(__file__).resolve().parent.parent
CORPUS_MESSAGES = (
    ("bounce: Postfix DSN", "bounces/sisimai/lhost-postfix-01.eml"),
    ("bounce: qmail text", "bounces/sisimai/lhost-qmail-01.eml"),
    ("auto-reply: AOL", "autoreplies/bounceparser/aol-vacation.msg"),
)


def _mail(body: str, *, subtype: str = "plain", subject: str = "Sync fails") -> bytes:
    """A message shaped like ``tests/mail.py``'s ``make_mail``, with a fixed date."""
    message = EmailMessage()
    message["From"] = "Anna Example <anna@acme.example>"
    message["To"] = "support@support.example"
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2025, 3, 4, 9, 30, tzinfo=UTC))
    message["Message-ID"] = "<bench.1@client.example>"
    message.set_content(body, subtype=subtype)
    return message.as_bytes()


def _ordinary() -> bytes:
    return _mail("hello world this is a line of text\n" * 140)


def _large_reply() -> bytes:
    """About 100 KB: a few new lines, a pasted log, a signature and a quoted thread."""
    lines = ["Hello support,", "", "the nightly sync still fails, log below.", ""]
    for n in range(450):
        lines.append(
            f"2025-03-0{n % 9 + 1} 10:{n % 60:02d}:{n * 7 % 60:02d},{n:03d} ERROR "
            f"[sync-worker-{n % 8}] upload of /data/projects/report-{n}.xlsx failed: "
            f"connection reset by peer (attempt {n % 5 + 1}/5)"
        )
    lines += ["", "Best regards,", "Anna", "", "-- ", "Anna Example | ACME Corp", ""]
    lines.append("On Mon, 3 Mar 2025 at 17:02, ACME Support <support@support.example> wrote:")
    prose = "> Thank you for the details. Could you please send us the log of the last run?"
    while sum(len(line) + 1 for line in lines) < 100_000:
        lines.append(prose)
    return _mail("\n".join(lines) + "\n")


def _html_only() -> bytes:
    """An Outlook-style HTML reply: paragraphs, a table, a signature, quoted history."""
    rows = "".join(
        f"<tr><td>Device {n}</td><td>Firmware 2.{n}.1</td><td>Last sync 03/0{n % 9 + 1}</td></tr>"
        for n in range(40)
    )
    paragraphs = "".join(
        f"<p class=MsoNormal>Paragraph {n}: the device list shows the same error after the "
        "update; we restarted the gateway twice and cleared the cache as advised.</p>"
        for n in range(25)
    )
    quoted = "".join(
        f"<p>Line {n} of the previous message, quoted by the client.</p>" for n in range(40)
    )
    html = (
        "<html><head><style>p.MsoNormal{margin:0cm;font-family:Calibri}</style></head><body>"
        f"<div class=WordSection1>{paragraphs}<table border=1>{rows}</table>"
        "<p>Kind regards,<br>Anna Example<br>ACME Corp</p>"
        "<div style='border-top:solid #E1E1E1 1.0pt'><p><b>From:</b> ACME Support "
        "&lt;support@support.example&gt;<br><b>Sent:</b> Monday, March 3, 2025 5:02 PM<br>"
        "<b>To:</b> Anna Example<br><b>Subject:</b> RE: Sync fails</p></div>"
        f"<blockquote>{quoted}</blockquote></div></body></html>"
    )
    return _mail(html, subtype="html")


def _baseline(raw: bytes) -> object:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(preferencelist=("plain", "html"))
    return body.get_content() if body is not None else None


def _best(function: Callable[[], object], seconds: float, repeat: int) -> float:
    """Seconds per call: the best of ``repeat`` rounds of about ``seconds`` each."""
    timer = timeit.Timer(function)
    number = 1
    while timer.timeit(number) < seconds / 4:
        number *= 2
    number = max(1, int(number * seconds / max(timer.timeit(number), 1e-9)))
    return min(timer.repeat(repeat, number)) / number


def _corpus_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    configured = os.environ.get("GATEWAY_TEST_CORPUS")
    return Path(configured) if configured else REPO.parent / "shared" / "corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", help="shared mail corpus (default: ../shared/corpus)")
    parser.add_argument("--seconds", type=float, default=0.1, help="length of one round")
    parser.add_argument("--repeat", type=int, default=7, help="rounds per figure")
    parser.add_argument("--quick", action="store_true", help="--seconds 0.02 --repeat 3")
    args = parser.parse_args()
    seconds, repeat = (0.02, 3) if args.quick else (args.seconds, args.repeat)

    messages = [
        ("text 5 KB", _ordinary()),
        ("reply 100 KB", _large_reply()),
        ("HTML only", _html_only()),
    ]
    corpus = _corpus_dir(args.corpus)
    for label, relative in CORPUS_MESSAGES:
        path = corpus / relative
        if path.is_file():
            messages.append((label, path.read_bytes()))
        else:
            print(f"skipped {label}: {path} not found", file=sys.stderr)

    takes_bounce = "bounce" in inspect.signature(detect_automatic).parameters
    print(f"Python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs; best of {repeat} rounds of {seconds:g} s")
    header = f"{'message':<28} {'function':<34} {'ms/call':>9} {'x base':>7}"
    print(header)
    print("-" * len(header))
    for label, raw in messages:
        parsed = parse_message(raw)
        bounce = detect_bounce(raw)

        def everything(raw: bytes = raw) -> None:
            parsed = parse_message(raw)
            split_reply(parsed.text)
            detect_automatic(raw)
            detect_bounce(raw)

        def shared_bounce(raw: bytes = raw) -> None:
            parsed = parse_message(raw)
            split_reply(parsed.text)
            detect_automatic(raw, bounce=detect_bounce(raw))

        rows: list[tuple[str, Callable[[], object]]] = [
            ("baseline: stdlib parse + get_body", partial(_baseline, raw)),
            ("parse_message", partial(parse_message, raw)),
            ("split_reply(parsed.text)", partial(split_reply, parsed.text)),
            ("detect_bounce", partial(detect_bounce, raw)),
            ("detect_automatic", partial(detect_automatic, raw)),
            ("detect_automatic(bounce=known)", partial(detect_automatic, raw, bounce=bounce)),
            ("all four (as inbound.parsing.analysis)", everything),
            ("all four, bounce passed on", shared_bounce),
        ]
        if not takes_bounce:  # an older checkout: no way to pass the report on
            rows = [row for row in rows if "bounce" not in row[0] or row[0] == "detect_bounce"]
        base = 0.0
        name = f"{label} ({len(raw) / 1024:.0f} KB)"
        for function_name, function in rows:
            per_call = _best(function, seconds, repeat)
            base = base or per_call
            print(f"{name:<28} {function_name:<34} {per_call * 1000:9.3f} "
                  f"{per_call / base:7.1f}")
            name = ""
        print()


if __name__ == "__main__":
    main()
