"""docs/security.md names the test that proves each defence: every name must exist, so
the table cannot silently point at a renamed or deleted test."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")


def test_every_test_named_in_the_threat_model_exists() -> None:
    text = (REPO / "docs" / "security.md").read_text()
    references = REFERENCE.findall(text)
    assert len(references) > 20
    missing = []
    for path, name in references:
        source = REPO / path
        if not source.exists() or (name and not re.search(
                rf"^def {name}\(", source.read_text(), re.MULTILINE)):
            missing.append(f"{path}::{name}" if name else path)
    assert missing == []
