"""Our cut-down mail-parser survey reports exactly the defects the stock ``MailParser`` does.

``inbound.parsing.message._DefectSurvey`` skips what ``MailParser.parse`` does beyond its
defect checks (decoding bodies and attachments again, the header dicts).  Given every
rfc822 message of the shared corpus, when it is parsed once with the stock class as the
survey and once with ours, then the parsed mail's defects are the same list, including
mail-parser's own failure on a multipart without its start boundary.
"""

from __future__ import annotations

from collections import Counter

import mailparser
import pytest

from inbound.parsing import message
from inbound.parsing.message import parse_message
from tests.corpus import corpus_bytes, corpus_entries
from tests.mail import make_mail

FOLDERS = ("replies", "multilingual", "autoreplies", "bounces", "malformed", "threads")


def _defects(raw: bytes, monkeypatch: pytest.MonkeyPatch, *, stock: bool) -> tuple[str, ...]:
    with monkeypatch.context() as patch:
        if stock:
            patch.setattr(message, "_DefectSurvey", mailparser.MailParser)
        return parse_message(raw).defects


@pytest.mark.parametrize("folder", FOLDERS)
def test_corpus_defects_equal_the_stock_survey(folder: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    seen: Counter[str] = Counter()
    for entry in corpus_entries(folder):
        if entry["format"] != "rfc822":
            continue
        raw = corpus_bytes(folder, str(entry["file"]))
        ours = _defects(raw, monkeypatch, stock=False)
        assert ours == _defects(raw, monkeypatch, stock=True), entry["file"]
        seen["messages"] += 1
        for kind in ("MimeHeaderDefect", "StartBoundaryNotFoundDefect", "mail-parser failed",
                     "AddressHeaderDefect", "DateHeaderDefect"):
            seen[kind] += any(kind in note for note in ours)
    assert seen["messages"] > 0
    if folder == "bounces":  # the paths beyond the plain checks are exercised here
        assert seen["StartBoundaryNotFoundDefect"] and seen["mail-parser failed"], seen
    if folder == "malformed":
        assert seen["AddressHeaderDefect"] and seen["DateHeaderDefect"], seen


def test_defects_of_a_plain_request_equal_the_stock_survey(
        monkeypatch: pytest.MonkeyPatch) -> None:
    raw = make_mail(headers={"Resent-Date": "Mon, 31 Feb 2026 10:00:00 +0000"})
    ours = _defects(raw, monkeypatch, stock=False)
    assert ours and ours == _defects(raw, monkeypatch, stock=True)
