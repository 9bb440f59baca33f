"""Warm the processing path before ``gateway serve`` opens its listeners.

The first message a process handles costs several times the CPU of the next
ones: regular expressions compiled on first use (reply splitting, loop and bounce
detection), Jinja templates compiled, Babel's locale data loaded, the email
package's header machinery imported.  In embedded mode that first work shares the
GIL with SMTP intake, so it would land in the middle of the first burst of mail
and make the first customer wait.  Doing it once at start-up, on a built-in
sample and without touching the database, moves it out of both.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from gateway.active_policy import current_issue_types
from gateway.services import Services
from inbound.parsing.analysis import analyze
from outbound.compose import Content, Envelope, compose, make_message_id
from outbound.promise import promise_sentence
from outbound.render import LANGUAGES

__all__ = ["warm_up"]

log = logging.getLogger(__name__)

_SAMPLE = (
    b"From: Warm Up <warm-up@example.invalid>\r\n"
    b"To: support@example.invalid\r\n"
    b"Subject: =?utf-8?q?Re=3A_warm-up_=C3=A9?=\r\n"
    b"Message-ID: <warm-up@example.invalid>\r\n"
    b"In-Reply-To: <earlier@example.invalid>\r\n"
    b"Date: Mon, 23 Nov 2026 09:00:00 +0000\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Hello, the export fails.\r\n\r\nOn Mon, 23 Nov 2026, support wrote:\r\n> earlier\r\n"
    b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>Hello, the export fails.</p><blockquote>earlier</blockquote>\r\n--b--\r\n"
)


def warm_up(services: Services) -> float:
    """Run the CPU-only parts of processing once; return the seconds it took.

    Warming is only a saving: if it fails (an operator's broken template, say) the process
    still starts, and the message that meets the fault is quarantined with its reason, so
    a fix and a replay recover it; a processing child that died here instead would be
    replaced by one that dies the same way, and nothing would be processed at all."""
    started = time.perf_counter()
    try:
        _warm(services)
    except Exception as error:  # noqa: BLE001 - never fatal: see above
        log.warning("warming up the processing path failed (%s: %s); going on without it",
                    type(error).__name__, str(error).splitlines()[0] if str(error) else "")
    seconds = time.perf_counter() - started
    log.info("processing path warmed up in %.0f ms", seconds * 1000)
    return seconds


def _warm(services: Services) -> None:
    analysis = analyze(_SAMPLE, "warm-up@example.invalid")
    current_issue_types(services.settings).classify(analysis.parsed.subject,
                                                    analysis.reply.visible)
    due = datetime.now(UTC) + timedelta(hours=4)
    for language in LANGUAGES:
        promise = promise_sentence(language, timedelta(hours=4), due, "Europe/Amsterdam",
                                   within=False)
        rendered = services.renderer.render("acknowledgement", language, {
            "support_name": "Support", "ticket_number": 1, "ticket_subject": "warm-up",
            "requester_name": "Warm Up", "excerpt": analysis.reply.visible,
            "promise": promise, "recommendations": []})
        compose(Envelope(from_name="Support", from_address="support@example.invalid",
                         to_address="warm-up@example.invalid", to_name="Warm Up",
                         message_id=make_message_id("example.invalid"),
                         reply_to="support+token@example.invalid",
                         in_reply_to=analysis.parsed.message_id,
                         references=list(analysis.parsed.references)),
                Content(subject=rendered.subject, text=rendered.text, html=rendered.html,
                        language=rendered.language),
                auto_submitted="auto-replied").as_bytes()
