"""Decide tier, queue and language of a new ticket and explain why.

Reads ``ctx.sender`` and ``ctx.language``; writes the entitlement fields on the
context (``ctx.trace`` gets the explanation).  This is the walking-skeleton rule
set: the TOML policy engine in ``rules/`` (tiers per product, calendars, SLA
targets) replaces the body of ``decide`` without changing the step's contract.
"""

from __future__ import annotations

from datetime import date

from gateway.context import MailContext
from gateway.models import TeamAddon

name = "apply-rules"
description = "entitlement: tier, queue and language, with the reason"

_RANK = {"standard": 0, "essentials": 1, "enhanced": 2}


def _live(addon: TeamAddon, today: date) -> bool:
    return (addon.starts is None or addon.starts <= today) and (
        addon.ends is None or today < addon.ends)


def decide(ctx: MailContext) -> tuple[str, str, list[str]]:
    """Return (tier, queue, explanation lines) for the sender of a new ticket."""
    assert ctx.sender is not None
    reasons: list[str] = []
    tier = "standard"
    today = ctx.services.now().date()
    person, team = ctx.sender.person, ctx.sender.team
    if ctx.sender.agent is not None:
        reasons.append("the sender is a support agent: standard terms")
    elif person is None:
        reasons.append("the sender is not in the directory: standard support")
    else:
        live = [a for a in (team.addons if team else []) if _live(a, today)]
        if live:
            best = max(live, key=lambda a: _RANK.get(a.tier, 0))
            tier = best.tier
            reasons.append(f"team {team.id if team else ''} has the {best.tier} add-on for "
                           f"{best.product} (valid on {today.isoformat()})")
        elif team is not None:
            reasons.append(f"team {team.id} has no live premium add-on: standard support")
        if person.champion in {"grand", "epic"}:
            champion_tier = f"champion-{person.champion}"
            reasons.append(f"{person.email} is a {person.champion} champion "
                           "(applies to them alone)")
            if _RANK.get(tier, 0) < 2 or person.champion == "epic":
                tier = champion_tier
    queue = "ja" if ctx.language == "ja" else "en"
    reasons.append(f"language {ctx.language}: queue {queue}")
    return tier, queue, reasons


def run(ctx: MailContext) -> None:
    if not ctx.new_ticket:
        ctx.note(name, "skip", f"reply on ticket #{ctx.ticket.number if ctx.ticket else '?'}")
        return
    tier, queue, reasons = decide(ctx)
    ctx.entitlement = {"tier": tier, "queue": queue, "explanation": "; ".join(reasons)}
    ctx.note(name, "set", ctx.entitlement["explanation"])
