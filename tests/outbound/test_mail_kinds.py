"""Every mail kind in every language: all listed, and Japanese punctuation after links."""

from __future__ import annotations

import re

import pytest

from outbound.render import Renderer, default_templates_dir
from tests.outbound.mail_kinds import CONTEXTS, context


def test_every_kind_is_listed() -> None:
    kinds = {p.name for p in (default_templates_dir() / "en").iterdir()
             if p.is_dir() and not p.name.startswith("_") and p.name != "pages"}
    assert kinds == set(CONTEXTS)


# Kinds written for agents only (agents_notice, escalation, delivery_failed) are English.
JAPANESE_KINDS = sorted(k for k in CONTEXTS if (default_templates_dir() / "ja" / k).is_dir())


@pytest.mark.parametrize("kind", JAPANESE_KINDS)
def test_japanese_mail_uses_japanese_punctuation_after_links(kind: str) -> None:
    # Given a Japanese mail
    mail = Renderer().render(kind, "ja", context(kind))
    assert mail.language == "ja"

    # Then no Western full stop or comma follows a link, nor a Japanese word
    assert not re.search(r"</a>\s*[.,]", mail.html), mail.html
    assert not re.search(r"[\u3040-\u30ff\u4e00-\u9fff][.,](?:\s|$)", mail.text + mail.html)
    # And no blank follows a Japanese full stop before a link
    assert "。 <a" not in mail.html

