"""Agent commands and duplicate detection: the parsing rules, line by line."""

from __future__ import annotations

import pytest

from gateway.pipeline.commands import leading_commands
from gateway.pipeline.steps.duplicates import similar
from gateway.tickets import normalise_subject


@pytest.mark.parametrize(("text", "commands", "rest"), [
    ("#note\nChecked the logs.", [("note", "")], "Checked the logs."),
    ("#status solved\nFixed.", [("status", "solved")], "Fixed."),
    ("#STATUS Pending", [("status", "pending")], ""),
    ("\n#note\n\n#status closed\n\nDone.", [("note", ""), ("status", "closed")], "Done."),
    ("Fixed.\n#status solved", [], "Fixed.\n#status solved"),  # only at the top
    ("#notes are great", [], "#notes are great"),
    ("#status solved please", [], "#status solved please"),
    ("#assign me\nMine now.", [("assign", "me")], "Mine now."),
    ("#Assign Lena@Support.example", [("assign", "lena@support.example")], ""),
    ("#merge 12\n#status closed", [("merge", "12"), ("status", "closed")], ""),
    ("#merge #12", [("merge", "#12")], ""),
    ("#merged with 12", [], "#merged with 12"),
    ("#assign to lena", [], "#assign to lena"),
    ("Please merge.\n#merge 12", [], "Please merge.\n#merge 12"),
])
def test_commands_are_read_only_from_the_top(text: str, commands: list[tuple[str, str]],
                                             rest: str) -> None:
    found, remainder = leading_commands(text)
    assert found == commands
    assert remainder == rest


@pytest.mark.parametrize(("first", "second"), [
    ("Printer offline", "RE: Fwd: printer   OFFLINE"),
    ("[#12] Sync", "AW: WG: sync"),
    ("Ｓｙｎｃ", "sync"),
    ("Rif: Fattura", "R: fattura"),
])
def test_subjects_that_mean_the_same(first: str, second: str) -> None:
    assert normalise_subject(first) == normalise_subject(second)


def test_different_subjects_stay_different() -> None:
    assert normalise_subject("Sync fails") != normalise_subject("Sync works")


def test_near_identical_texts_only() -> None:
    text = "Since this morning nobody in the Munich office can log in to the portal."
    assert similar(text, text.upper() + "!")
    assert not similar(text, "Since this morning the printer in the Munich office is broken.")
    assert not similar("help", "help")  # too short to tell


def test_a_pasted_log_with_one_changed_line_is_near_identical() -> None:
    log = "\n".join(f"2026-11-23 10:{i // 60:02d}:{i % 60:02d} sync worker {i % 7} retry "
                    "connection reset by peer" for i in range(400))
    changed = log.replace("10:03:07 sync worker 6", "10:03:07 sync worker 5")
    assert similar(log, changed)
    assert not similar(log, "\n".join(reversed(log.splitlines()[:40])))
