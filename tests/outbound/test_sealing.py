"""Redaction and sealing of mail with secret links (outbound/sealing.py): whatever the
transfer encoding a language gets, the stored copy holds no token and the sealed copy
gives back the exact bytes; another key opens nothing."""

from __future__ import annotations

import itertools
import threading
from email import message_from_bytes, policy
from email.message import Message

import pytest

from outbound.compose import Content, Envelope, compose
from outbound.sealing import MARKER, SealError, redact, seal, unseal

TOKEN = "Zq3_k-9mW2xYbVt7LpR4sN8cD1fG6hJ0aE5uI2oK3lM"
UNSUBSCRIBE = "mfrggzdfmztwq2lknnwg23tpobyxe43u"


def _mail(text: str, html: str | None = None) -> bytes:
    return compose(
        Envelope(from_name="Support", from_address="support@support.example",
                 to_address="bert@acme.example", message_id="<m1@support.example>"),
        Content(subject="Access request", text=text, html=html, language="ja"),
        extra_headers={"List-Unsubscribe":
                       f"<https://support.example/unsubscribe/{UNSUBSCRIBE}>, "
                       f"<mailto:unsubscribe+{UNSUBSCRIBE}@support.example?subject=unsubscribe>"},
    ).as_bytes()


def _payload(part: Message) -> bytes:
    """A leaf part's decoded bytes (empty when it has none)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


@pytest.mark.parametrize("text", [
    f"Open https://support.example/grants/activate/{TOKEN} to grant access.",  # 7bit
    f"Zugriff gewähren: https://support.example/grants/activate/{TOKEN}\n",  # quoted-printable
    f"アクセスを許可: https://support.example/grants/activate/{TOKEN}\n" * 3,  # base64
])
def test_the_stored_copy_holds_no_token_in_any_encoding(text: str) -> None:
    message = message_from_bytes(_mail(text, f'<a href="https://x/grants/activate/{TOKEN}">'),
                                 policy=policy.SMTP)
    redacted = redact(message)
    assert redacted is not None
    stored = redacted.as_bytes()
    decoded = b"".join(_payload(p) for p in redacted.walk() if not p.is_multipart())
    for secret in (TOKEN, UNSUBSCRIBE):
        assert secret.encode() not in stored and secret.encode() not in decoded
    assert f"/grants/activate/{MARKER}".encode() in decoded
    assert f"unsubscribe+{MARKER}@".encode() in stored
    assert redacted["Content-Language"] == "ja" and redacted["Message-ID"] == "<m1@support.example>"


def test_mail_without_secret_links_is_not_copied() -> None:
    plain = compose(Envelope(from_name="S", from_address="support@support.example",
                             to_address="max@acme.example", message_id="<m2@support.example>"),
                    Content(subject="[#4] VPN", text="We are on it.", html=None))
    assert redact(plain) is None


def test_sealed_bytes_come_back_exactly_and_only_with_the_same_key() -> None:
    live = _mail(f"https://support.example/grants/activate/{TOKEN}")
    sealed = seal(b"k" * 32, live)
    assert TOKEN.encode() not in sealed
    assert unseal(b"k" * 32, sealed) == live
    with pytest.raises(SealError, match="GATEWAY_SECRET_KEY"):
        unseal(b"j" * 32, sealed)


@pytest.mark.parametrize(("text", "html"), [
    ("We are on it.", "<p>We are on it.</p>"),  # most mail: nothing to redact
    (f"https://support.example/grants/activate/{TOKEN}\n", None),  # in the text only
    ("Rate us:", f'<a href="https://x/satisfaction/{TOKEN}">yes</a>'),  # in the HTML only
    (f"Zugriff gewähren: https://support.example/hub/sign-in/{TOKEN}\r\n" * 3, "<p>ü</p>"),
    (f"アクセス: https://support.example/unsubscribe/{TOKEN}\n" * 3, None),  # base64
    (f"done already: https://support.example/unsubscribe/{MARKER}\n", None),
    (f"https://support.example/unsubscribe/{MARKER}é\u2028next line", None),
])
@pytest.mark.parametrize("unsubscribe", [False, True])
def test_redacting_with_the_bodies_given_is_redacting_the_message(
        text: str, html: str | None, unsubscribe: bool) -> None:
    # queue_mail hands redact() the texts it composed instead of letting it decode every
    # part again: the outcome must be the same mail, byte for byte, or None for both.
    extra = {"List-Unsubscribe": f"<https://support.example/unsubscribe/{UNSUBSCRIBE}>"
             } if unsubscribe else {}
    message = compose(
        Envelope(from_name="Support", from_address="support@support.example",
                 to_address="bert@acme.example", message_id="<m3@support.example>"),
        Content(subject="[#5] Access", text=text, html=html, language="de"),
        extra_headers=extra)
    bodies = (text,) if html is None else (text, html)
    decoded, given = redact(message), redact(message, bodies=bodies)
    assert (decoded is None) == (given is None)
    if decoded is not None and given is not None:
        assert decoded.as_bytes() == given.as_bytes()


def test_redacting_while_other_threads_compose_mail_neither_fails_nor_touches_the_original(
) -> None:
    """The hub's sign-in page redacts in a web thread while workers compose other mail:
    composing fills the shared header cache that a copy of the message must not walk."""
    link = f"https://support.example/hub/sign-in/{TOKEN}"
    message = compose(Envelope(from_name="S", from_address="support@support.example",
                               to_address="max@acme.example", message_id="<m3@support.example>"),
                      Content(subject="Your sign-in link", text=f"Open {link}\n", html=None))
    original = message.as_bytes()
    done = threading.Event()

    def compose_others() -> None:
        for number in itertools.count():
            if done.is_set():
                return
            compose(Envelope(from_name="S", from_address="support@support.example",
                             to_address=f"user{number}@acme.example",
                             message_id=f"<o{number}@support.example>"),
                    Content(subject=f"[#{number}] Printer", text="On it.", html=None))

    others = [threading.Thread(target=compose_others) for _ in range(2)]
    for thread in others:
        thread.start()
    try:
        copies = [redact(message) for _ in range(300)]
    finally:
        done.set()
        for thread in others:
            thread.join()
    assert all(c is not None and TOKEN not in c.get_content() for c in copies)
    assert message.as_bytes() == original and link in message.get_content()
