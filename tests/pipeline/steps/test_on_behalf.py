"""Step ``on-behalf``: a verified agent's forward of a customer's mail (new, on no ticket)
becomes the customer's request: the original sender is the sender, the original's subject,
text and Message-ID are the message, and the agent's words are kept for an internal note.
Nobody else's forward changes anything."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

from gateway.models import MessageKind, Role
from gateway.pipeline.steps import on_behalf
from gateway.runtime.app import Gateway
from tests.mail import make_mail
from tests.pipeline.build import context_before, passed, trace_of

MAX, KENJI = "max@acme.example", "kenji@support.example"
ORIGINAL = ("Can you open this for Max?\n\n---------- Weitergeleitete Nachricht ---------\n"
            f"Von: Max Member <{MAX}>\nDate: Mo., 30. Nov. 2026 um 09:12 Uhr\n"
            "Subject: Files: sync fails\nTo: <kenji@support.example>\n\n"
            "Since Monday the sync of my files fails with error 42.")


def forward(sender: str = KENJI, *, verified: bool = True, body: str = ORIGINAL) -> bytes:
    return make_mail(sender=sender, sender_name="Kenji", subject="Fwd: Files: sync fails",
                     body=body, headers=passed(sender) if verified else None)


def test_a_verified_agents_forward_is_the_customers_request(gw: Gateway) -> None:
    raw = forward()
    with context_before(gw, on_behalf.name, raw) as ctx:
        forward_id = ctx.parsed.message_id
        on_behalf.run(ctx)
        assert (ctx.sender.email, ctx.sender.name) == (MAX, "Max Member")
        assert ctx.sender.team is not None and ctx.sender.team.id == "acme"
        assert ctx.sender.person is not None and ctx.language == ctx.sender.person.language
        assert (ctx.role, ctx.kind) == (Role.REQUESTER, MessageKind.PUBLIC)
        assert ctx.parsed.subject == "Files: sync fails"
        assert ctx.parsed.from_address == MAX and ctx.parsed.message_id is None
        assert ctx.parsed.text == ctx.reply.visible == (
            "Since Monday the sync of my files fails with error 42.")
        assert ctx.parsed.html is None  # the agent's words are in the forward's HTML
        assert ctx.on_behalf is not None
        assert ctx.on_behalf.agent.email == KENJI
        assert ctx.on_behalf.words == "Can you open this for Max?"
        assert ctx.on_behalf.message_id == forward_id
        assert trace_of(ctx, on_behalf.name) == [(
            "on-behalf", f"verified agent {KENJI} forwarded (inline) a mail of {MAX}, team "
            "acme: a ticket for them, the agent's words an internal note")]


def test_an_unverified_agent_claims_nothing_on_behalf_of_anybody(gw: Gateway) -> None:
    with context_before(gw, on_behalf.name, forward(verified=False)) as ctx:
        on_behalf.run(ctx)
        assert ctx.sender.email == KENJI and ctx.on_behalf is None
        assert ctx.parsed.subject == "Fwd: Files: sync fails"
        assert trace_of(ctx, on_behalf.name) == []


def test_a_customers_forward_is_their_own_request(gw: Gateway) -> None:
    body = ORIGINAL.replace(MAX, "friend@elsewhere.example")
    with context_before(gw, on_behalf.name, forward(MAX, body=body)) as ctx:
        on_behalf.run(ctx)
        assert ctx.sender.email == MAX and ctx.on_behalf is None
        assert ctx.role == Role.REQUESTER and ctx.parsed.subject.startswith("Fwd:")


def test_a_forward_of_an_agents_or_our_own_mail_stays_the_agents(gw: Gateway) -> None:
    for original in ("kenji@support.example", "support@support.example"):
        raw = forward(body=ORIGINAL.replace(MAX, original))
        with context_before(gw, on_behalf.name, raw) as ctx:
            on_behalf.run(ctx)
            assert ctx.sender.email == KENJI and ctx.on_behalf is None
            [(outcome, why)] = trace_of(ctx, on_behalf.name)
            assert outcome == "skip" and original in why


def test_an_agents_mail_that_is_no_forward_is_untouched(gw: Gateway) -> None:
    raw = make_mail(sender=KENJI, subject="Maintenance tonight", body="FYI: restart at 22:00.",
                    headers=passed(KENJI))
    with context_before(gw, on_behalf.name, raw) as ctx:
        on_behalf.run(ctx)
        assert ctx.sender.email == KENJI and ctx.role == Role.AGENT and ctx.on_behalf is None


def test_an_attached_original_brings_its_message_id_and_attachments(gw: Gateway) -> None:
    original_id = make_msgid(domain="acme.example")
    original = EmailMessage()
    original["From"] = f"Max Member <{MAX}>"
    original["Subject"] = "Files: sync fails"
    original["Message-ID"] = original_id
    original.set_content("Since Monday the sync fails.")
    original.add_attachment(b"log", maintype="text", subtype="plain", filename="sync.log")
    mail = EmailMessage()
    mail["From"] = f"Kenji <{KENJI}>"
    mail["To"] = "support@support.example"
    mail["Subject"] = "FW: Files: sync fails"
    mail["Message-ID"] = make_msgid(domain="support.example")
    mail["Authentication-Results"] = passed(KENJI)["Authentication-Results"]
    mail.set_content("Attached, Max's mail.")
    mail.add_attachment(original)
    with context_before(gw, on_behalf.name, mail.as_bytes()) as ctx:
        on_behalf.run(ctx)
        assert ctx.sender.email == MAX and ctx.on_behalf is not None
        assert ctx.parsed.message_id == original_id.strip("<>")
        assert [a.filename for a in ctx.parsed.attachments] == ["sync.log"]
        assert ctx.on_behalf.words == "Attached, Max's mail."
