"""compose()'s shortcuts write the very bytes the standard library writes without them.

``outbound/compose.py`` shares header objects between mails, remembers their folded text
and draws a multipart boundary itself (CPU per message, issue 18).  Given the same
inputs, the same date and the same random state, the message must come out byte for
byte as with the stock header registry and the generator drawing the boundary.
"""

from __future__ import annotations

import email.message
import email.policy
import random
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.headerregistry import Address, BaseHeader, HeaderRegistry
from typing import Any

import pytest

import outbound.compose as compose_module
from outbound.compose import Content, Envelope, compose

WHEN = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

CASES: list[tuple[Envelope, Content, dict[str, str]]] = [
    (Envelope("Example Support", "support@support.example", "anna@acme.example",
              "<a1@support.example>", "Anna Admin", "support+tok1@support.example",
              "<orig@acme.example>", ("<root@acme.example>",)),
     Content("[#42] Sync stopped working", "Hello Anna,\n\nwe got it.\n",
             "<p>Hello Anna,</p>\n", "en"), {"X-Loop": "support@support.example"}),
    (Envelope("Beispiel Support", "support@support.example", "jörg@acme.example",
              "<a2@support.example>", "Jörg, \"der\" Admin", "support+tok2@support.example"),
     Content("[#43] Die Synchronisierung funktioniert nicht mehr, könnte es am Proxy liegen?",
             "Hallo Jörg,\n\n" + "wir haben Ihre Anfrage erhalten. " * 20 + "\n",
             "<p>Grüße</p>" * 40, "de"), {}),
    (Envelope("サポート", "support@support.example", "kenji@example.jp", "<a3@support.example>",
              "山田 健二", None, "<x@example.jp>", ()),
     Content("[#44] 同期が止まりました", "山田様\n\nお問い合わせありがとうございます。\n" * 12,
             None, "ja"), {"List-Unsubscribe": "<https://x.example/u/" + "t" * 120 + ">"}),
    (Envelope("Support", "support@support.example", "bob@example.com", "<a4@support.example>",
              "Bob O'Neil (IT)", "support+tok4@support.example"),
     Content("[#45] " + "very long subject words " * 8, "line\n" * 3 + "x" * 1200 + "\n",
             "<p>" + "y" * 1000 + "</p>", None, (("log.txt", "text/plain", b"a\nb\n"),
                                                 ("blob.bin", "application/zip", b"\0" * 70))),
     {"X-Custom": "Größe"}),
]


def _bytes(envelope: Envelope, content: Content, extra: dict[str, str], seed: int) -> bytes:
    random.seed(seed)
    message = compose(envelope, content, extra_headers=extra, date=WHEN)
    return message.as_bytes()


def _stock_address_header(plain: email.policy.EmailPolicy[Any]) -> Callable[[str, str, str],
                                                                           str]:
    """The library's address header of a mailbox (parsed, folded by its parse tree)."""
    def header(name: str, display_name: str, addr_spec: str) -> str:
        address = compose_module._address(display_name, addr_spec, name)
        if not address.username.isascii():
            return compose_module._MailboxHeader(name, address)
        built: str = plain.header_factory(name, address)
        return built
    return header


@pytest.fixture
def stock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """compose() as it was: the stock registry, no shared headers, the generator's boundary."""
    plain = email.policy.SMTP.clone(cte_type="7bit", header_factory=HeaderRegistry())
    utf8 = compose_module._SmtpUtf8Policy(linesep="\r\n", cte_type="7bit", utf8=True)
    monkeypatch.setattr(compose_module, "POLICY", plain)
    monkeypatch.setattr(compose_module, "_UTF8_POLICY", utf8)
    monkeypatch.setattr(compose_module, "_address_header", _stock_address_header(plain))
    monkeypatch.setattr(compose_module, "_choose_boundaries", lambda msg: True)
    yield


@pytest.mark.parametrize("case", range(len(CASES)))
def test_bytes_equal_the_standard_librarys(case: int, monkeypatch: pytest.MonkeyPatch,
                                           stock: None) -> None:
    envelope, content, extra = CASES[case]
    # Given the bytes the stock library writes (twice: the second from the same state)
    expected = _bytes(envelope, content, extra, seed=case)
    monkeypatch.undo()
    # When our compose() writes the same mail, cold and then with every cache warm
    first = _bytes(envelope, content, extra, seed=case)
    again = _bytes(envelope, content, extra, seed=case)
    # Then every byte is the same, and the boundary is the generator's kind of boundary
    assert first == expected
    assert again == expected
    if content.html is not None or content.attachments:
        assert b'boundary="===============' in first


def test_a_boundary_found_in_a_part_is_left_to_the_generator() -> None:
    # Given a body that holds the very boundary compose() will draw
    random.seed(7)
    drawn = "=" * 15 + compose_module._BOUNDARY_DIGITS % random.randrange(sys.maxsize) + "=="
    envelope, content, extra = CASES[0]
    content = Content(content.subject, f"see\n--{drawn}\n", "<p>x</p>", "en")
    # When it is composed and written
    random.seed(7)
    message = compose(envelope, content, extra_headers=extra, date=WHEN)
    written = message.as_bytes()
    # Then the message keeps a different boundary, and its two parts read back intact
    boundary = message.get_boundary()
    assert boundary is not None and boundary != drawn
    parsed = email.message_from_bytes(written, policy=email.policy.default)
    types = [part.get_content_type() for part in parsed.walk() if not part.is_multipart()]
    assert types == ["text/plain", "text/html"]


def test_a_folded_part_header_is_reused_only_for_a_policy_with_the_same_settings() -> None:
    # The generator writes each part with a clone of the message's policy: a part header's
    # remembered folding serves the clone, and a clone that folds otherwise folds anew.
    envelope, content, extra = CASES[3]
    message = compose(envelope, content, extra_headers=extra, date=WHEN)
    crlf = message.as_bytes()
    assert message.as_bytes() == crlf  # every folding remembered now
    lf = message.as_bytes(policy=compose_module.POLICY.clone(linesep="\n"))
    assert lf == crlf.replace(b"\r\n", b"\n") and b"\r" not in lf
    assert message.as_bytes() == crlf


_TEXT_ALPHABET = "ab Z09 ()<>@,;:\\\".[]=?_-'\t!~#%&*+/{}|" + "=?"


@pytest.mark.parametrize("seed", range(20))
def test_a_short_plain_subject_is_written_as_the_library_writes_it(seed: int) -> None:
    # _TextHeader writes short printable ASCII as it is: the library's folding of the same
    # text, whatever specials, encoded-word look-alikes, blanks or length it has.
    rng = random.Random(seed)
    policies = (compose_module.POLICY, compose_module._UTF8_POLICY,
                compose_module.POLICY.clone(linesep="\n"),
                compose_module.POLICY.clone(max_line_length=0))
    for _ in range(300):
        text = "".join(rng.choice(_TEXT_ALPHABET) for _ in range(rng.randrange(1, 95)))
        for name in ("Subject", "X-Custom-Header"):
            header = compose_module._TextHeader(name, text)
            for policy in policies:
                assert header.fold(policy=policy) == header.library_fold(policy), text


@pytest.mark.parametrize("spec", [
    "anna@acme.example", "Anna.Admin+tok-1@Acme.Example", "o'neil@x.example",
    "a!#$%&'*+/=?^_`{|}~-z@x.example", "=?utf-8?q?x?=@x.example", "a..b@x.example",
    ".a@x.example", "a.@x.example", '"quoted"@x.example', "a(comment)b@x.example",
    "support+20-20-crvuqsjbn2ln7uhl@support.example"])
def test_an_address_built_without_parsing_is_the_parsed_one(spec: str) -> None:
    # _address() builds a plain dot-atom mailbox from its parts: the same Address the
    # library's parser makes of it (and the parser still judges everything else).
    local, _, domain = spec.rpartition("@")
    try:
        parsed: Address | None = Address("Anna", addr_spec=f"{local}@{domain.lower()}")
    except ValueError:
        parsed = None
    try:
        built: Address | None = compose_module._address("Anna", spec, "To")
    except ValueError:
        built = None
    assert built == parsed
    if built is not None and parsed is not None:
        assert (built.username, built.domain, str(built)) == (
            parsed.username, parsed.domain, str(parsed))


_NAME_ALPHABET = "abcXYZ019 !#$%&'*+/=?^_`{|}~-.,\"()<>@;:[]"


@pytest.mark.parametrize("seed", range(10))
def test_a_plain_mailbox_header_is_written_as_the_library_writes_it(seed: int) -> None:
    # _address_header() builds plain mailboxes without a parse tree and writes them on one
    # line: the library's folding of the same Address, under every policy we write with.
    rng = random.Random(seed)
    stock = HeaderRegistry()
    policies = (compose_module.POLICY, compose_module._UTF8_POLICY,
                compose_module.POLICY.clone(linesep="\n"),
                compose_module.POLICY.clone(max_line_length=40),
                compose_module.POLICY.clone(max_line_length=0))
    for _ in range(200):
        name = "".join(rng.choice(_NAME_ALPHABET) for _ in range(rng.randrange(0, 30)))
        local = "".join(rng.choice("abz09.+-_=?'") for _ in range(rng.randrange(1, 40)))
        spec = f"{local}@{rng.choice(['x.example', 'support.example', 'a-b.c.example'])}"
        for header_name in ("To", "Reply-To"):
            try:
                ours = compose_module._address_header.__wrapped__(header_name, name, spec)
            except ValueError:
                continue
            assert isinstance(ours, BaseHeader)
            address = compose_module._address(name, spec, header_name)
            theirs = stock(header_name, address)
            assert str(ours) == str(theirs)
            assert ours.addresses == theirs.addresses  # type: ignore[attr-defined]
            for policy in policies:
                assert ours.fold(policy=policy) == theirs.fold(policy=policy), (name, spec)


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("seed", range(3))
def test_message_bytes_are_the_generators_bytes(case: int, seed: int) -> None:
    """``message_bytes`` writes a body's lines in one piece: the same bytes as
    ``as_bytes()``, for every part (7bit, quoted-printable, base64, attachments)."""
    envelope, content, extra = CASES[case]
    random.seed(seed)
    message = compose(envelope, content, extra_headers=extra, date=WHEN)
    assert compose_module.message_bytes(message) == message.as_bytes()


@pytest.mark.parametrize("text", [
    "", "\n", "one line without an end", "a\r\nb\rc\nd\n\n", "\r\r\n\n\rx",
    "ends in CR\r", "é and line ends\r\n" * 3,
])
def test_message_bytes_turn_every_line_break_as_the_generator_does(text: str) -> None:
    """Bodies and a preamble and epilogue with every kind of line break, bare CR included,
    written as they are (no re-encoding: ``cte=8bit`` payload set by hand)."""
    message = email.message.EmailMessage(policy=compose_module.POLICY)
    message["Subject"] = "x"
    message.set_content("first part\n")
    message.add_attachment("second\n", filename="a.txt")
    message.preamble, message.epilogue = text, text
    for part in message.iter_parts():
        part.set_payload(text.encode("utf-8", "surrogateescape").decode(
            "ascii", "surrogateescape"))
    plain = email.message.EmailMessage(policy=compose_module.POLICY)
    plain.set_payload(text.encode("utf-8").decode("ascii", "surrogateescape"))
    for each in (message, plain):
        assert _outcome(compose_module.message_bytes, each) == _outcome(
            email.message.EmailMessage.as_bytes, each)


def _outcome(write: Callable[[email.message.EmailMessage], bytes],
             message: email.message.EmailMessage) -> bytes | type[Exception]:
    """The bytes written, or the kind of error (a non-ASCII preamble cannot be written)."""
    try:
        return write(message)
    except Exception as error:  # noqa: BLE001 - compared, not swallowed
        return type(error)
