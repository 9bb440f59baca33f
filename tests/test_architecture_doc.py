"""docs/architecture.md is drawn from the tree: every path it names must exist.

A path is any backquoted or fenced name starting with one of the project's folders.
Brace lists expand (``templates/{en,ja}/x``), a ``<placeholder>`` stands for any name
(the folder before it must exist), and text after a colon or a space is not part of the path.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
FOLDERS = ("gateway", "inbound", "outbound", "rules", "templates", "tests", "bench", "docs",
           ".ci")
#: Paths that exist only outside the checkout, each with the reason.
ELSEWHERE = {
    "outbound/templates/": "the wheel's copy of templates/ (setup.py's build step)",
}
_FOLDER = "|".join(re.escape(folder) for folder in FOLDERS)
_PATH = re.compile(r"(?<![\w./-])((?:" + _FOLDER + r")/[\w./{},<>*-]*)")


def _expand(path: str) -> list[str]:
    parts = re.split(r"\{([^{}]*)\}", path)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(combo) for combo in itertools.product(*choices)]


def named_paths(text: str) -> set[str]:
    found: set[str] = set()
    fenced = re.findall(r"```.*?```", text, re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    for span in fenced + inline:
        for match in _PATH.finditer(span):
            found.update(_expand(match.group(1).rstrip(".,")))
    return found


def missing(path: str) -> bool:
    if path in ELSEWHERE:
        return False
    if "<" in path or "*" in path:
        fixed = re.split(r"[<*]", path, maxsplit=1)[0]
        return not (ROOT / fixed.rpartition("/")[0]).exists()
    return not (ROOT / path).exists()


def test_every_path_the_architecture_page_names_exists() -> None:
    names = named_paths(DOC.read_text(encoding="utf-8"))
    assert len(names) > 100, "the page should name the modules it describes"
    assert sorted(p for p in names if missing(p)) == []


def test_the_checker_finds_a_wrong_path() -> None:
    names = named_paths("see `gateway/no_such_module.py` and `templates/{en,ja}/ack/`")
    assert names == {"gateway/no_such_module.py", "templates/en/ack/", "templates/ja/ack/"}
    assert missing("gateway/no_such_module.py")
    assert not missing("gateway/pipeline/steps/<name>.py")
