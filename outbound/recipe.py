"""A mail queued as what to compose, composed after the transaction that queued it.

Why: on SQLite one transaction writes at a time, and a new request's acknowledgement was
rendered, composed and serialised inside the processing transaction, a quarter of the
CPU spent holding the one writer lane (issue 18).  Everything that needs the database
or must commit with the ticket is still decided there (recipient, reply token,
Message-ID, subject, the view data); only the Jinja bodies, the MIME tree and its bytes
are left, as a *recipe*: plain JSON in ``outbox.recipe``, turned into the final bytes by
:func:`compose_recipe` at delivery, outside the lane, and stored in ``raw`` the first
time, so every retry sends the same bytes (the ``Date`` is the queueing time).

A recipe is only ever plain data with no secret in it: :func:`recipe_for` refuses view
data that is not JSON or holds a link that ``outbound/sealing.py`` would redact, and
``queue_mail`` makes none for mail with attachments; such mail is composed at once, as
before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gateway.models import OutboxItem
from outbound.compose import Content, Envelope, compose, message_bytes
from outbound.render import Renderer
from outbound.sealing import holds_secret_link, live_bytes, redact, seal

__all__ = ["Composed", "Recipe", "bytes_to_send", "compose_recipe", "recipe_for"]

RECIPE_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    """Everything :func:`outbound.mail.queue_mail` decided, short of rendering the bodies."""

    template: str
    language: str
    context: Mapping[str, Any]
    envelope: Envelope
    date: str
    """ISO 8601 with its offset: the ``Date`` header (the time the mail was queued)."""
    auto_submitted: str | None = "auto-replied"
    extra_headers: Mapping[str, str] = field(default_factory=dict)
    version: int = RECIPE_VERSION

    def to_json(self) -> dict[str, Any]:
        """The recipe as JSON's types: what ``asdict`` gives, without its deep copy of the
        view data (already a plain copy, made by :func:`recipe_for`), in the writer lane."""
        envelope = self.envelope
        return {
            "template": self.template, "language": self.language, "context": self.context,
            "envelope": {
                "from_name": envelope.from_name, "from_address": envelope.from_address,
                "to_address": envelope.to_address, "message_id": envelope.message_id,
                "to_name": envelope.to_name, "reply_to": envelope.reply_to,
                "in_reply_to": envelope.in_reply_to, "references": list(envelope.references)},
            "date": self.date, "auto_submitted": self.auto_submitted,
            "extra_headers": self.extra_headers, "version": self.version}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Recipe:
        if data.get("version") != RECIPE_VERSION:
            raise ValueError(f"unknown recipe version {data.get('version')!r}")
        fields = dict(data)
        return cls(envelope=Envelope(**fields.pop("envelope")), **fields)


@dataclass(frozen=True)
class Composed:
    """A recipe's mail: ``live`` to send; ``raw`` to store (redacted) and ``sealed`` (the
    live bytes encrypted) when it holds a secret link."""

    live: bytes
    raw: bytes
    sealed: bytes | None
    subject: str


def _plain(value: Any) -> bool:
    """JSON's own types only, and no string a redaction would change."""
    if isinstance(value, str):
        return not holds_secret_link(value)
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, list):
        return all(_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and _plain(item) for key, item in value.items())
    return False


def recipe_for(template: str, language: str, context: Mapping[str, Any], envelope: Envelope,
               *, date: datetime, auto_submitted: str | None,
               extra_headers: Mapping[str, str]) -> Recipe | None:
    """The recipe of a mail, or None when it must be composed now (see the module)."""
    plain_context = dict(context)
    if not _plain(plain_context) or not _plain(dict(extra_headers)):
        return None
    if not _plain([envelope.reply_to or "", envelope.in_reply_to or "",
                   *envelope.references]):
        return None
    return Recipe(template=template, language=language, context=plain_context,
                  envelope=replace(envelope, references=list(envelope.references)),
                  date=date.isoformat(), auto_submitted=auto_submitted,
                  extra_headers=dict(extra_headers))


def compose_recipe(renderer: Renderer, recipe: Recipe, secret: bytes | None) -> Composed:
    """The bytes of ``recipe`` (``jinja2`` errors and ``ValueError`` propagate)."""
    rendered = renderer.render(recipe.template, recipe.language, recipe.context)
    message = compose(
        recipe.envelope,
        Content(subject=rendered.subject, text=rendered.text, html=rendered.html,
                language=rendered.language),
        auto_submitted=recipe.auto_submitted, extra_headers=recipe.extra_headers,
        date=datetime.fromisoformat(recipe.date))
    live = message_bytes(message)
    # A template may print a secret link the view data did not hold (it should not).
    redacted = redact(message, bodies=(rendered.text, rendered.html)) if secret else None
    subject = str(message["Subject"] or "")
    if redacted is None:
        return Composed(live, live, None, subject)
    assert secret is not None
    return Composed(live, message_bytes(redacted), seal(secret, live), subject)


def bytes_to_send(renderer: Renderer, secret: bytes, item: OutboxItem) -> bytes:
    """The live bytes an outbox row sends, composed from its recipe if it has not been yet
    (what delivery will compose: the same ``Date``, Message-ID and text)."""
    if item.recipe is not None:
        return compose_recipe(renderer, Recipe.from_json(item.recipe), secret).live
    return live_bytes(secret, item)
