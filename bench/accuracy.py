"""Measure the classifiers and the reply splitter on the shared corpus; print docs/accuracy.md's
tables (Markdown).

    GATEWAY_TEST_CORPUS=../shared/corpus .venv/bin/python bench/accuracy.py
    .venv/bin/python bench/accuracy.py --root /path/to/another/checkout   # "before" numbers

Bounces and auto-replies: each message of ``bounces/`` and ``autoreplies/`` is analysed as
the pipeline does (``inbound.parsing.analysis.analyze``) with a null envelope sender and with a
relayed one; "right" means the outcome the index asks for: machine-written mail opens no
ticket (a delivery report, an auto-reply kind, or mail from a mail system), a person's
mail (``expected_kind: human``) does with an ordinary envelope.  "Reviewed" counts the
rows of ``tests/corpus.py`` ``NOT_DELIVERY_REPORTS`` (spam and a person's forward that
the index files as bounces, each with its reason) as a person's mail.  Reply text: the exact
new text (CRLF to LF, ``strip()``) of every ``body-text`` entry with
``expected_reply_text``; HTML: the nine real clients' replies of
``tests/fixtures/html_replies`` and the corpus's replies rendered as HTML.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

REPLY_KINDS = {"auto_reply", "challenge_response", "read_receipt"}
ENVELOPES = {"null sender": "<>", "relayed": "relay@forwarder.example"}
HERE = Path(__file__).resolve().parent.parent


def _corpus() -> Path:
    return Path(os.environ.get("GATEWAY_TEST_CORPUS", HERE.parent / "shared" / "corpus"))


def _entries(folder: str) -> list[dict[str, Any]]:
    data: dict[str, Any] = json.loads((_corpus() / folder / "index.json").read_text("utf-8"))
    return list(data["entries"])


def _no_ticket(analyze: Any, raw: bytes, mail_from: str) -> bool:
    result = analyze(raw, mail_from)
    if result.bounce is not None:
        return True
    verdict = result.automatic
    return verdict is not None and (verdict.kind in REPLY_KINDS
                                    or bool(getattr(verdict, "mail_system", False)))


def _reviewed_people() -> set[str]:
    """``bounces/`` rows that a person wrote although the index files them as bounces."""
    sys.path.insert(0, str(HERE))
    corpus = importlib.import_module("tests.corpus")
    return {f"bounces/{name}" for name in corpus.NOT_DELIVERY_REPORTS}


def automatic_table() -> list[str]:
    analyze = importlib.import_module("inbound.parsing.analysis").analyze
    people = _reviewed_people()
    rows = ["| folder / source | envelope | total | right (index) | right (reviewed) | "
            "misses (reviewed) |", "|---|---|---:|---:|---:|---:|"]
    missed: dict[str, list[str]] = defaultdict(list)
    for folder in ("bounces", "autoreplies"):
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for entry in _entries(folder):
            if entry["format"] == "rfc822":
                groups[entry["file"].split("/")[0]].append(entry)
        for label, mail_from in ENVELOPES.items():
            for source, entries in sorted(groups.items()):
                right = reviewed = 0
                for entry in entries:
                    name = f"{folder}/{entry['file']}"
                    raw = (_corpus() / folder / entry["file"]).read_bytes()
                    person = entry.get("expected_kind") == "human"
                    if person and mail_from == "<>":
                        right += 1  # no person sends with the null sender: not counted
                        reviewed += 1
                        continue
                    no_ticket = _no_ticket(analyze, raw, mail_from)
                    right += no_ticket != person
                    # With the null sender, mail a person wrote is mail-system mail all the same.
                    if no_ticket != (person or (name in people and mail_from != "<>")):
                        reviewed += 1
                    else:
                        missed[label].append(name)
                rows.append(f"| {folder}/{source} | {label} | {len(entries)} | {right} | "
                            f"{reviewed} | {len(entries) - reviewed} |")
    rows.append("")
    for label, names in missed.items():
        rows.append(f"Misses ({label}): " + ", ".join(f"`{n}`" for n in names))
    return rows


def directory_table(directory: Path) -> list[str]:
    """Every file of ``directory`` is a bounce or auto-reply (e.g. another project's test data)."""
    analyze = importlib.import_module("inbound.parsing.analysis").analyze
    files = sorted(path for path in directory.iterdir() if path.is_file())
    rows = ["| directory | envelope | total | right | misses |", "|---|---|---:|---:|---:|"]
    for label, mail_from in ENVELOPES.items():
        missed = [path.name for path in files
                  if not _no_ticket(analyze, path.read_bytes(), mail_from)]
        rows.append(f"| {directory.name} | {label} | {len(files)} | {len(files) - len(missed)} "
                    f"| {len(missed)} |")
    return rows


def _norm(text: str) -> str:
    return text.replace("\r\n", "\n").strip()


def reply_table() -> list[str]:
    split_reply = importlib.import_module("inbound.parsing.reply_text").split_reply
    rows = ["| folder | entries | exact |", "|---|---:|---:|"]
    for folder in ("replies", "multilingual"):
        total = exact = 0
        for entry in _entries(folder):
            if entry["format"] != "body-text" or "expected_reply_text" not in entry:
                continue
            text = (_corpus() / folder / entry["file"]).read_bytes().decode("utf-8", "replace")
            total += 1
            exact += _norm(split_reply(text).visible) == _norm(entry["expected_reply_text"])
        rows.append(f"| {folder} | {total} | {exact} ({exact / total:.1%}) |")
    return rows


def html_table() -> list[str]:
    analysis = importlib.import_module("inbound.parsing.analysis")
    fixtures = sorted((HERE / "tests" / "fixtures" / "html_replies").glob("*.html"))
    expected = "Hi. I am fine.\n\nThanks,\nAlex"
    header = (b"From: Alex <alex@example.org>\r\nTo: support@support.example\r\n"
              b"Subject: Re: Test\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: text/html; charset=utf-8\r\n\r\n")
    exact = squashed = 0
    for path in fixtures:
        visible = analysis.analyze(header + path.read_bytes()).reply.visible
        exact += visible.strip() == expected
        squashed += re.sub(r"\s", "", visible) == re.sub(r"\s", "", expected)
    rows = ["| HTML set | entries | exact | ignoring whitespace |", "|---|---:|---:|---:|",
            f"| real clients (tests/fixtures/html_replies) | {len(fixtures)} | {exact} | "
            f"{squashed} |"]
    try:
        split_html_reply = importlib.import_module("inbound.parsing.html_reply").split_html_reply
        sys.path.insert(0, str(HERE))
        as_html = importlib.import_module("tests.html_render").as_html
    except ImportError:
        return rows
    for folder in ("replies", "multilingual"):
        total = good = 0
        for entry in _entries(folder):
            if entry["format"] != "body-text" or "expected_reply_text" not in entry:
                continue
            text = (_corpus() / folder / entry["file"]).read_bytes().decode("utf-8", "replace")
            total += 1
            good += _norm(split_html_reply(as_html(text)).visible) == _norm(
                entry["expected_reply_text"])
        rows.append(f"| {folder}/ rendered as HTML (tests/html_render.py) | {total} | {good} | "
                    "- |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=HERE, help="checkout whose code to measure")
    parser.add_argument("--only", choices=("automatic", "reply", "html"))
    parser.add_argument("--directory", type=Path, help="a folder of bounces/auto-replies only")
    args = parser.parse_args()
    sys.path.insert(0, str(args.root.resolve()))
    if args.directory:
        print("\n".join(directory_table(args.directory)))
        return
    tables = {"automatic": automatic_table, "reply": reply_table, "html": html_table}
    for name, table in tables.items():
        if args.only in (None, name):
            print(f"### {name}\n")
            print("\n".join(table()))
            print()


if __name__ == "__main__":
    main()
