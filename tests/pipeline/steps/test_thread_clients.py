"""Step ``thread`` with replies as real clients send them: the ``[#N]`` tag given back
full-width or with blanks, localized reply prefixes, and Outlook replies that carry only
a ``Thread-Index``."""

from __future__ import annotations

import pytest

from gateway.notices import bare_subject
from gateway.pipeline.steps import thread
from gateway.runtime.app import Gateway
from gateway.tickets import normalise_subject, subject_tag
from tests.mail import make_mail
from tests.pipeline.build import context_before, processed


@pytest.mark.parametrize(("subject", "number"), [
    ("AW: [#42] Drucker", 42),
    ("Re: ［＃４２］ 印刷できません", 42),  # a Japanese phone's full-width forms
    ("RE: [＃42] 印刷できません", 42),
    ("Antw: [# 42] Printer", 42),
    ("R: [#42 ] Stampante", 42),
    ("Re: [42] Printer", None),
    ("Re: #42 Printer", None),
])
def test_the_subject_tag_as_clients_give_it_back(subject: str, number: int | None) -> None:
    assert subject_tag(subject) == number


@pytest.mark.parametrize("subject", [
    "AW: AW: Drucker geht nicht", "Antwort: Drucker geht nicht", "WG: Drucker geht nicht",
    "Antw: Doorst: Drucker geht nicht", "R: RIF: I: Drucker geht nicht",
    "Re[2]: Drucker geht nicht", "Re^2: Drucker geht nicht", "SV: Drucker geht nicht",
    "返信: Drucker geht nicht", "転送: RE：Drucker geht nicht", "[#7] AW: Drucker geht nicht",
    "Fwd: ［＃７］ Re: Drucker geht nicht",
])
def test_reply_prefixes_of_our_clients_do_not_count(subject: str) -> None:
    assert normalise_subject(subject) == "drucker geht nicht"
    assert bare_subject(subject).casefold() == "drucker geht nicht"


def test_a_reply_with_a_full_width_tag_finds_its_ticket(gw: Gateway) -> None:
    # A Japanese phone client gives our tag back full-width, without any threading header.
    number = processed(gw, make_mail(sender="max@acme.example", subject="印刷できません"))
    digits = str(number).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    reply = make_mail(sender="max@acme.example", subject=f"Re: ［＃{digits}］ 印刷できません",
                      body="まだ印刷できません。")
    with context_before(gw, thread.name, reply) as ctx:
        thread.run(ctx)
        assert ctx.ticket is not None and ctx.ticket.number == number
        assert ctx.threaded_by == "subject_tag"
