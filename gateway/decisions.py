"""Ask the engine about a request from the directory: the one path for tickets and ``explain``.

The pipeline step (``gateway/pipeline/steps/apply_rules.py``) and ``gateway rules explain``
both call :func:`decide_for`, so that "what would happen if" gives exactly the
answer a ticket created at that time gets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway.models import Agent, Person, Product, SenderKind, Team
from gateway.prepared import Prepared
from inbound.addresses import address_key
from rules.classify import category_for, mostly_japanese, product_for
from rules.engine import Addon, Entitlement, Request, decide
from rules.policy import Policy

__all__ = ["Decision", "decide_for"]


_PRODUCT_IDS = Prepared(select(Product.__table__.c.id).order_by(Product.__table__.c.id))
"""The directory's product ids: built once, a plain Core statement (no ORM objects)."""


@dataclass(frozen=True)
class Decision:
    entitlement: Entitlement
    category: str
    requester_language: str
    """The language to write to the requester in (``ja`` when the text is Japanese)."""
    product_unknown: tuple[str, ...] = ()
    """The team's products when it has several and the request named none."""


def decide_for(session: Session, policy: Policy, *, email: str, at: datetime,
               recipients: Sequence[str] = (), subject: str = "", text: str = "",
               language: str | None = None, product: str | None = None,
               default_language: str = "en", emergency_address: str = "",
               verified: bool = True,
               found: tuple[Person | None, Agent | None] | None = None) -> Decision:
    """Look ``email`` up in the directory and decide its entitlement at ``at``.

    ``verified=False``: the sender authority did not vouch for ``email``, so the directory's
    team, role and champion entitlements are not used (standard terms, as for a stranger);
    the person's language still is (it gives nothing).  ``found``: the person and agent
    of ``email`` the caller already looked up in this session (no second query)."""
    email = email.strip().lower()
    person, agent = found if found is not None else (session.get(Person, email),
                                                     session.get(Agent, email))
    team = session.get(Team, person.team_id) if person is not None and person.team_id else None
    notes: list[str] = []
    if language is None:
        language = person.language if person else team.language if team else default_language
    if not verified and (person is not None or agent is not None):
        notes.append(f"{email} is in the directory but not a verified sender: standard terms "
                     "(no team plan, role or champion entitlement)")
        person = agent = team = None
    kind = (SenderKind.AGENT if agent is not None else SenderKind.PERSON if person is not None
            else SenderKind.UNKNOWN)
    if language != "ja" and mostly_japanese(f"{subject}\n{text}"):
        notes.append(f"the text is mostly in Japanese script: treated as ja (not {language})")
        language = "ja"
    addons = tuple(Addon(a.product, a.tier, a.starts, a.ends) for a in (team.addons if team
                                                                          else []))
    team_products = sorted({a.product for a in addons})
    unknown: tuple[str, ...] = ()
    # As compared: "files"@ is files@, an IDN domain in its xn-- form (inbound.addresses).
    recipients = [address_key(r) for r in recipients]
    if product is not None:
        notes.append(f"product {product}: given")
    else:
        known = _PRODUCT_IDS.scalars(session)
        product, reason = product_for(policy, recipients, subject, text, team_products, known)
        notes.append(reason)
        if product is None and len(team_products) > 1:
            unknown = tuple(team_products)
    category, reason = category_for(policy, recipients, subject, text)
    notes.append(reason)
    emergency = bool(emergency_address) and address_key(emergency_address) in recipients
    if emergency and not verified:
        notes.append(f"sent to the emergency address, but {email} is not a verified sender: "
                     "the emergency line is a paid service, its terms need a verified sender")
        emergency = False
    request = Request(
        at=at, sender=email, kind=kind, role=person.role if person else "member",
        champion=person.champion if person else "none", team=team.id if team else None,
        addons=addons, product=product, language=language, emergency=emergency)
    entitlement = decide(request, policy)
    entitlement = replace(entitlement, explanation=(*notes, *entitlement.explanation))
    return Decision(entitlement, category, language, unknown)
