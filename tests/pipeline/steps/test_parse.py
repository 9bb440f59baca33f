"""Step ``parse``: the analysis becomes the parsed message and the reply; over-size and
over-limit messages are stopped or flagged, with the reason an operator reads."""

from __future__ import annotations

import pytest

from gateway.pipeline.context import Disposition
from gateway.pipeline.steps import parse
from gateway.runtime.app import Gateway
from tests.corpus import corpus_bytes
from tests.crafted import many_parts
from tests.mail import make_mail
from tests.pipeline.build import context_before, trace_of


def test_a_reply_is_split_into_new_text_and_quoted_history(gw: Gateway) -> None:
    body = ("The export works again, thanks!\n\n"
            "On Mon, 2 Nov 2026 at 10:00, Support <support@support.example> wrote:\n"
            "> Please try the export again.\n")
    with context_before(gw, parse.name, make_mail(subject="Re: Export", body=body)) as ctx:
        parse.run(ctx)
        assert ctx.parsed is not None and ctx.reply is not None
        assert (ctx.parsed.from_address, ctx.parsed.subject) == ("anna@acme.example",
                                                                 "Re: Export")
        assert ctx.reply.visible.strip() == "The export works again, thanks!"
        assert "Please try the export again." not in ctx.reply.visible
        assert not ctx.stopped and ctx.flags == []


def test_a_real_japanese_mail_is_decoded(gw: Gateway) -> None:
    raw = corpus_bytes("multilingual", "mikel-mail/japanese_iso_2022.eml")
    with context_before(gw, parse.name, raw) as ctx:
        parse.run(ctx)
        assert ctx.parsed is not None and not ctx.stopped
        text = ctx.parsed.subject + ctx.parsed.text
        assert any("\u3040" <= ch <= "\u30ff" for ch in text), text  # kana, no mojibake
        assert "\x1b$B" not in text  # no raw ISO-2022-JP escape left


def test_headers_only_copy_of_an_over_size_imap_message_is_quarantined(gw: Gateway) -> None:
    headers = make_mail(subject="Huge scan").split(b"\n\n", 1)[0] + b"\n\n"
    options = {"imap": {"mailbox": "support", "folder": "INBOX", "uid": 42},
               "too_large": {"size": 60_000_000, "limit": 50_000_000}}
    with context_before(gw, parse.name, headers, source="imap:support/INBOX",
                        options=options) as ctx:
        parse.run(ctx)
        assert ctx.disposition == Disposition.QUARANTINED
        assert ctx.reason.startswith("message of 60,000,000 bytes is over max_message_size "
                                     "(50,000,000)")
        assert "mailbox support folder INBOX uid 42" in ctx.reason


@pytest.mark.parametrize("settings", [{"max_header_block_size": 100_000}], indirect=True)
def test_a_header_block_over_the_limit_is_quarantined(gw: Gateway) -> None:
    raw = corpus_bytes("malformed", "flanker/long-header.eml")  # a 200 KB header
    with context_before(gw, parse.name, raw) as ctx:
        parse.run(ctx)
        assert ctx.disposition == Disposition.QUARANTINED
        assert ctx.reason.startswith("header block of ")
        assert "bytes is over max_header_block_bytes (100,000)" in ctx.reason


@pytest.mark.parametrize("settings", [{"max_mime_parts": 5}], indirect=True)
def test_parts_over_the_limit_are_a_trace_line_and_a_flag_each(gw: Gateway) -> None:
    with context_before(gw, parse.name, many_parts(20, sender="anna@acme.example")) as ctx:
        parse.run(ctx)
        assert not ctx.stopped
        lines = trace_of(ctx, parse.name)
        limits = [note for outcome, note in lines if outcome == "limit"]
        assert limits and all("more than max_mime_parts (5) MIME parts" in n for n in limits)
        assert ctx.flags == [f"limit: {note}" for note in limits]
        assert any(outcome == "defects" for outcome, _ in lines)  # the cut is a defect too


@pytest.mark.parametrize("settings", [{"max_attachments": 2}], indirect=True)
def test_attachments_not_stored_are_listed_by_name_and_size(gw: Gateway) -> None:
    with context_before(gw, parse.name, many_parts(4, sender="anna@acme.example")) as ctx:
        parse.run(ctx)
        assert ctx.parsed is not None and len(ctx.parsed.attachments) == 2
        [not_stored] = [e for o, e in trace_of(ctx, parse.name) if o == "not stored"]
        assert not_stored.startswith("attachments not stored: ") and "bytes)" in not_stored
