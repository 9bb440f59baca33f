"""Step ``duplicates``: a new request that repeats an open one of the same requester (same
normalised subject, or nearly the same text) is linked to it instead of being queued."""

from __future__ import annotations

import unicodedata

import pytest

from gateway.pipeline.steps import duplicates
from gateway.runtime.app import Gateway
from tests.corpus import corpus_bytes
from tests.mail import make_mail
from tests.pipeline.build import context_before, passed, processed, trace_of

ANNA, KENJI = "anna@acme.example", "kenji@support.example"
# A real question to a mailing list (github/email_reply_parser's test mails).
QUESTION = corpus_bytes("replies", "github-email_reply_parser/email_1_1.txt").decode()


def _request(subject: str, body: str = QUESTION, sender: str = ANNA) -> bytes:
    return make_mail(sender=sender, subject=subject, body=body, headers=passed(sender))


def test_the_same_subject_again_is_a_duplicate(gw: Gateway) -> None:
    first = processed(gw, _request("Clearing a Riak bucket"))
    raw = _request("AW: [#99] clearing a  RIAK bucket", body="Any news? I still need this.")
    with context_before(gw, duplicates.name, raw) as ctx:
        duplicates.run(ctx)
        assert ctx.duplicate_of is not None and ctx.duplicate_of.number == first
        assert trace_of(ctx, duplicates.name) == [
            ("duplicate", f"the same subject as open ticket #{first} (within "
             f"{gw.settings.duplicate_window_days} days; compared with the 1 newest of 1 open "
             f"tickets (duplicate_candidates {gw.settings.duplicate_candidates})): linked as "
             "a duplicate")]


def test_nearly_the_same_text_is_a_duplicate(gw: Gateway) -> None:
    processed(gw, _request("Other thing", body="A different question about invoices, "
                           "their numbering and the export to the accounting system."))
    first = processed(gw, _request("Clearing a Riak bucket"))
    with context_before(gw, duplicates.name, _request("Riak: how to empty a bucket?")) as ctx:
        duplicates.run(ctx)
        assert ctx.duplicate_of is not None and ctx.duplicate_of.number == first
        [(outcome, explanation)] = trace_of(ctx, duplicates.name)
        assert outcome == "duplicate"
        assert explanation.startswith(f"nearly the same text as open ticket #{first} ")


def test_a_different_request_is_no_duplicate(gw: Gateway) -> None:
    processed(gw, _request("Clearing a Riak bucket"))
    raw = _request("Invoices", body="The invoice numbers jump from 2026-0041 to 2026-0050.")
    with context_before(gw, duplicates.name, raw) as ctx:
        duplicates.run(ctx)
        assert ctx.duplicate_of is None
        [(outcome, explanation)] = trace_of(ctx, duplicates.name)
        assert outcome == "miss"
        assert explanation.startswith(f"no open ticket of {ANNA} repeats this request")


def test_someone_elses_same_request_is_no_duplicate(gw: Gateway) -> None:
    processed(gw, _request("Clearing a Riak bucket"))
    with context_before(gw, duplicates.name,
                        _request("Clearing a Riak bucket", sender="max@acme.example")) as ctx:
        duplicates.run(ctx)
        assert ctx.duplicate_of is None and trace_of(ctx, duplicates.name) == []


def test_an_agent_opening_tickets_is_never_a_duplicate(gw: Gateway) -> None:
    processed(gw, _request("Clearing a Riak bucket", sender=KENJI))
    with context_before(gw, duplicates.name,
                        _request("Clearing a Riak bucket", sender=KENJI)) as ctx:
        duplicates.run(ctx)
        assert ctx.duplicate_of is None and trace_of(ctx, duplicates.name) == []


@pytest.mark.parametrize("settings", [{"duplicate_candidates": 2}], indirect=True)
def test_only_the_newest_candidates_are_compared_and_all_are_counted(gw: Gateway) -> None:
    processed(gw, _request("Clearing a Riak bucket"))  # the oldest: not among the 2 newest
    processed(gw, _request("Invoices", body="The invoice numbers jump from 2026-0041 to "
                           "2026-0050 in the export."))
    processed(gw, _request("Login", body="Since the update on Tuesday nobody of us can log "
                           "in with the single sign-on."))
    with context_before(gw, duplicates.name, _request("clearing a Riak bucket")) as ctx:
        duplicates.run(ctx)
        assert ctx.duplicate_of is None
        assert trace_of(ctx, duplicates.name) == [
            ("miss", f"no open ticket of {ANNA} repeats this request (compared with the 2 "
             "newest of 3 open tickets (duplicate_candidates 2))")]


def _shingles_as_written_first(text: str) -> set[tuple[str, ...]]:
    """The shingles as the step first made them (a slice per word): the reference."""
    words = duplicates._WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    words = words[:duplicates.MAX_WORDS]
    if len(words) < duplicates.SHINGLE:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + duplicates.SHINGLE])
            for i in range(len(words) - duplicates.SHINGLE + 1)}


@pytest.mark.parametrize("text", [
    "", "hello", "hello there", "Hello there, friend", QUESTION, QUESTION * 3,
    "ＦＵＬＬ width Straße " * 900, "\n".join(f"line {n % 7} ERROR disk" for n in range(3000)),
])
def test_the_shingles_are_those_of_the_first_way(text: str) -> None:
    assert duplicates._shingles(text) == _shingles_as_written_first(text)
