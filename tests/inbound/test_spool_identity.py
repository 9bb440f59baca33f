"""The de-dup identity's fast header scan gives what the standard library's parser gives:
on every message of the real-world corpus and on generated header blocks."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from inbound.spool import header_identity
from tests.corpus import corpus_dir


def test_every_corpus_message_gets_the_parsers_identity() -> None:
    files = [p for p in corpus_dir().rglob("*") if p.is_file() and p.suffix in (".eml", ".msg")]
    assert len(files) > 100
    differing = [str(p) for p in files
                 if header_identity(p.read_bytes()) != header_identity(p.read_bytes(), fast=False)]
    assert differing == []


names = st.sampled_from(["From", "from", "FROM", "Message-ID", "Message-Id", "message-id",
                         "Subject", "To", "X-Thing", "Messsage-ID", "From ", " From"])
values = st.sampled_from(["Anna <anna@acme.example>", "<id1@x.example>", "  <id2@x.example> ",
                          "bob@b.example (Bob)", "", "=?utf-8?q?J=C3=B6rg?= <j@x.example>",
                          "\"A, B\" <ab@x.example>", "no id", "<a@b> <c@d>", "x\xe9y"])
folds = st.sampled_from(["", "\r\n ", "\r\n\t", "\n ", "\r\n"])
endings = st.sampled_from(["\r\n", "\n", "\r"])


@settings(max_examples=500, deadline=None)
@given(fields=st.lists(st.tuples(names, values, folds, values, endings), max_size=8),
       blank=st.sampled_from(["\r\n", "\n", ""]),
       body=st.sampled_from(["", "Body\r\n", "From: x@y\r\n"]))
def test_generated_header_blocks(fields: list[tuple[str, str, str, str, str]], blank: str,
                                 body: str) -> None:
    text = "".join(f"{name}:{first}{fold}{second}{end}"
                   for name, first, fold, second, end in fields) + blank + body
    raw = text.encode("utf-8", "surrogateescape")
    assert header_identity(raw) == header_identity(raw, fast=False)
