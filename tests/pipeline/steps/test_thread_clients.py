"""Step ``thread`` with replies as real clients send them: the ``[#N]`` tag given back
full-width or with blanks, localized reply prefixes, and Outlook replies that carry only
a ``Thread-Index``."""

from __future__ import annotations

import base64

import pytest

from gateway.notices import bare_subject
from gateway.pipeline.steps import thread
from gateway.runtime.app import Gateway
from gateway.tickets import normalise_subject, subject_tag
from inbound.parsing.message_ids import thread_index_root
from tests.mail import make_mail
from tests.pipeline.build import context_before, processed, trace_of


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


# Outlook's Thread-Index: 22 bytes (a time and a GUID) for the conversation's first message,
# 5 more for each reply; the values here are made up in that shape.
_ROOT = bytes.fromhex("01da b5c1 2f3e 8d0e 4f2a 9b6c 11d4 4c2e 9a7f 03b1 c2d4".replace(" ", ""))


def _thread_index(replies: int, root: bytes = _ROOT) -> str:
    return base64.b64encode(root + bytes.fromhex("0000a1b2c3") * replies).decode()


def test_thread_index_names_its_conversation() -> None:
    first, reply = thread_index_root(_thread_index(0)), thread_index_root(_thread_index(2))
    assert first is not None and first == reply
    assert thread_index_root(_thread_index(0, root=_ROOT[:21] + b"x")) != first
    for junk in ("", "not base64!", base64.b64encode(b"short").decode(),
                 base64.b64encode(_ROOT + b"abc").decode()):
        assert thread_index_root(junk) is None


def _outlook(subject: str, replies: int, *, sender: str = "max@acme.example",
             topic: str = "Drucker geht nicht") -> bytes:
    """Outlook mail with only Thread-Index and Thread-Topic to say what it continues."""
    return make_mail(sender=sender, subject=subject, body="Der Drucker druckt nicht.",
                     headers={"Thread-Index": _thread_index(replies), "Thread-Topic": topic})


def test_an_outlook_reply_with_only_a_thread_index_finds_its_ticket(gw: Gateway) -> None:
    # The customer adds to her own request from Outlook's Sent Items: no In-Reply-To, no
    # References, no tag; only the conversation's Thread-Index and Thread-Topic.
    number = processed(gw, _outlook("Drucker geht nicht", 0))
    with context_before(gw, thread.name, _outlook("AW: Drucker geht nicht", 1)) as ctx:
        thread.run(ctx)
        assert ctx.ticket is not None and ctx.ticket.number == number
        assert ctx.threaded_by == "thread_index"


def test_a_later_reply_of_the_conversation_finds_it_too(gw: Gateway) -> None:
    number = processed(gw, _outlook("Drucker geht nicht", 0))
    assert processed(gw, _outlook("AW: Drucker geht nicht", 1)) == number
    assert processed(gw, _outlook("AW: AW: Drucker geht nicht", 2)) == number


@pytest.mark.parametrize(("subject", "topic", "sender"), [
    ("Neue Frage: Lizenzen", "Neue Frage: Lizenzen", "max@acme.example"),  # another subject
    ("AW: Drucker geht nicht", "Drucker geht nicht", "eve@elsewhere.example"),  # a stranger
])
def test_a_thread_index_alone_is_no_licence(gw: Gateway, subject: str, topic: str,
                                            sender: str) -> None:
    number = processed(gw, _outlook("Drucker geht nicht", 0))
    with context_before(gw, thread.name, _outlook(subject, 1, sender=sender, topic=topic)
                        ) as ctx:
        thread.run(ctx)
        assert ctx.new_ticket and ctx.threaded_by == "new_ticket"
        assert [o for o, e in trace_of(ctx, thread.name) if f"#{number}" in e] == ["miss"]
