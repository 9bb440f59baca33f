"""The shipped policy, case by case: tier × product × role × champion × language × time.

Every row is a request a support manager could ask about, with the queue, tier and
due time MISSION.md implies, and the words the explanation must use to justify it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from rules.engine import Addon, Request, decide
from rules.policy import load_policy

POLICY = load_policy()
BERLIN, TOKYO, NEW_YORK = (ZoneInfo(z) for z in ("Europe/Berlin", "Asia/Tokyo",
                                                 "America/New_York"))
TODAY = date(2026, 11, 17)  # a Tuesday
FILES_ENHANCED = (Addon("files", "enhanced", date(2026, 1, 1), date(2099, 1, 1)),)
FILES_ESSENTIALS = (Addon("files", "essentials", date(2026, 1, 1), date(2099, 1, 1)),)
DASH_ENHANCED = (Addon("dash", "enhanced", date(2026, 1, 1), None),)


def at(zone: ZoneInfo, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


@dataclass(frozen=True)
class Case:
    id: str
    when: datetime
    due: datetime
    tier: str
    queue: str
    mentions: tuple[str, ...]
    role: str = "admin"
    champion: str = "none"
    team: str | None = "acme"
    addons: tuple[Addon, ...] = ()
    product: str | None = "files"
    language: str = "en"
    kind: str = "person"
    emergency: bool = False
    extra: dict[str, str] = field(default_factory=dict)


CASES = [
    # -- premium add-ons, per product, within their dates -------------------------------
    Case("enhanced admin Tuesday 10:00 → 11:00", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 11:00"), "enhanced", "en",
         ("team admin", "enhanced add-on for files", "earliest due"), addons=FILES_ENHANCED),
    Case("enhanced member gets the team's plan", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 11:00"), "enhanced", "en",
         ("team member", "members get the team's plan", "enhanced add-on"), role="member",
         addons=FILES_ENHANCED),
    Case("enhanced at Saturday 03:00: 24/7", at(BERLIN, "2026-11-21 03:00"),
         at(BERLIN, "2026-11-21 04:00"), "enhanced", "en", ("around the clock",),
         addons=FILES_ENHANCED),
    Case("essentials admin → 4 h", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 14:00"), "essentials", "en", ("essentials add-on",),
         addons=FILES_ESSENTIALS),
    Case("essentials member → 4 h", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 14:00"), "essentials", "en",
         ("team member", "essentials add-on"), role="member", addons=FILES_ESSENTIALS),
    Case("essentials on Sunday night → 4 h", at(BERLIN, "2026-11-22 23:00"),
         at(BERLIN, "2026-11-23 03:00"), "essentials", "en", ("essentials",),
         addons=FILES_ESSENTIALS),
    Case("Dash ticket, add-on covers only Files → standard", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 18:00"), "standard", "en",
         ("covers files, not dash", "standard support for dash"), addons=FILES_ENHANCED,
         product="dash"),
    Case("add-on expired yesterday → standard", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 18:00"), "standard", "en", ("not valid on 2026-11-17",),
         addons=(Addon("files", "enhanced", date(2025, 11, 17), TODAY),)),
    Case("add-on starting tomorrow → standard", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 18:00"), "standard", "en", ("not valid on 2026-11-17",),
         addons=(Addon("files", "enhanced", date(2026, 11, 18), None),)),
    Case("add-on starting today → premium", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 11:00"), "enhanced", "en", ("valid on 2026-11-17",),
         addons=(Addon("files", "enhanced", TODAY, None),)),
    Case("no product named → standard", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 18:00"), "standard", "en", ("names no product",),
         addons=FILES_ENHANCED, product=None),
    Case("Dash enhanced inside live hours", at(NEW_YORK, "2026-11-17 10:00"),
         at(NEW_YORK, "2026-11-17 11:00"), "enhanced", "en", ("counted in dash-live hours",),
         addons=DASH_ENHANCED, product="dash"),
    Case("Dash enhanced at 19:30 ET: 30 min today, 30 min tomorrow",
         at(NEW_YORK, "2026-11-17 19:30"), at(NEW_YORK, "2026-11-18 09:30"), "enhanced", "en",
         ("every day 09:00-20:00 America/New_York",), addons=DASH_ENHANCED, product="dash"),
    # -- champions: for the champion alone ---------------------------------------------
    Case("Epic champion on a team without add-on → 1 h", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 11:00"), "champion-epic", "en",
         ("epic champion", "for them alone"), champion="epic", team="globex"),
    Case("their colleague on the same team → standard", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 18:00"), "standard", "en", ("standard support",),
         role="member", team="globex"),
    Case("Grand champion member → 4 h", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 14:00"), "champion-grand", "en", ("grand champion",),
         role="member", champion="grand", team="globex"),
    Case("Grand champion on an Enhanced team → the team's 1 h is earlier",
         at(BERLIN, "2026-11-17 10:00"), at(BERLIN, "2026-11-17 11:00"), "enhanced", "en",
         ("grand champion", "enhanced gives the earliest due"), champion="grand",
         addons=FILES_ENHANCED),
    Case("Epic champion on an Essentials team → 1 h", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 11:00"), "champion-epic", "en",
         ("epic champion", "essentials add-on"), champion="epic", addons=FILES_ESSENTIALS),
    Case("Epic champion, Dash ticket, Files add-on → champion 1 h",
         at(BERLIN, "2026-11-17 10:00"), at(BERLIN, "2026-11-17 11:00"), "champion-epic", "en",
         ("covers files, not dash", "epic champion"), champion="epic", addons=FILES_ENHANCED,
         product="dash"),
    Case("Grand champion without a team", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 14:00"), "champion-grand", "en", ("belongs to no team",),
         champion="grand", team=None),
    # -- standard support on the office calendar ---------------------------------------
    Case("standard Tuesday 10:00 → 18:00", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 18:00"), "standard", "en", ("Mon-Fri 09:00-18:00",),
         team="globex"),
    Case("standard Friday 17:00 → Monday 16:00", at(BERLIN, "2026-11-20 17:00"),
         at(BERLIN, "2026-11-23 16:00"), "standard", "en", ("standard support",),
         team="globex"),
    Case("standard Saturday → Monday 17:00", at(BERLIN, "2026-11-21 11:00"),
         at(BERLIN, "2026-11-23 17:00"), "standard", "en", ("standard support",),
         team="globex"),
    Case("standard over the October DST weekend", at(BERLIN, "2026-10-23 17:00"),
         at(BERLIN, "2026-10-26 16:00"), "standard", "en", ("standard support",),
         team="globex"),
    Case("unknown sender → standard", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 18:00"), "standard", "en", ("not in the directory",),
         kind="unknown", team=None),
    Case("support agent opening a ticket → standard", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 18:00"), "standard", "en", ("support agent",), kind="agent",
         team=None),
    Case("German request → English queue", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 11:00"), "enhanced", "en",
         ("language de is not a support language",), addons=FILES_ENHANCED, language="de"),
    Case("Italian request → English queue", at(BERLIN, "2026-11-17 10:00"),
         at(BERLIN, "2026-11-17 18:00"), "standard", "en",
         ("language it is not a support language",), team="globex", language="it"),
    # -- Japanese hours -------------------------------------------------------------------
    Case("Japanese Friday 15:30 JST → ja queue, 16:30", at(TOKYO, "2026-11-20 15:30"),
         at(TOKYO, "2026-11-20 16:30"), "standard", "ja", ("inside japanese hours",),
         team="globex", language="ja"),
    Case("Japanese Friday 16:30 JST → English queue: the ja hour would end on Monday",
         at(TOKYO, "2026-11-20 16:30"), at(BERLIN, "2026-11-20 17:00"), "standard", "en",
         ("close before the ja queue's 1 h could pass", "served in en"),
         team="globex", language="ja"),
    Case("Japanese Friday 18:00 JST → English queue, English target",
         at(TOKYO, "2026-11-20 18:00"), at(BERLIN, "2026-11-20 18:00"), "standard", "en",
         ("outside japanese hours", "served in en"), team="globex", language="ja"),
    Case("Japanese Enhanced Friday 18:00 JST → English queue, 1 h",
         at(TOKYO, "2026-11-20 18:00"), at(TOKYO, "2026-11-20 19:00"), "enhanced", "en",
         ("outside japanese hours", "enhanced add-on"), addons=FILES_ENHANCED, language="ja"),
    Case("Japanese Saturday → English queue", at(TOKYO, "2026-11-21 10:00"),
         at(TOKYO, "2026-11-21 14:00"), "essentials", "en", ("outside japanese hours",),
         addons=FILES_ESSENTIALS, language="ja"),
    Case("Japanese Monday 08:59 JST → English queue", at(TOKYO, "2026-11-23 08:59"),
         at(TOKYO, "2026-11-23 09:59"), "champion-epic", "en", ("outside japanese hours",),
         champion="epic", team="globex", language="ja"),
    Case("Japanese Monday 09:00 JST → ja queue, 10:00", at(TOKYO, "2026-11-23 09:00"),
         at(TOKYO, "2026-11-23 10:00"), "standard", "ja", ("inside japanese hours",),
         team="globex", language="ja"),
    Case("Japanese Essentials inside hours → ja queue, 1 h", at(TOKYO, "2026-11-17 11:00"),
         at(TOKYO, "2026-11-17 12:00"), "essentials", "ja",
         ("essentials add-on", "inside japanese hours"), addons=FILES_ESSENTIALS,
         language="ja"),
    # -- the ja queue keeps only what it can answer inside its hours (arrival ≤ 16:00 JST);
    #    later requests go to English with their entitlement, which is never delayed -------
    Case("Japanese Enhanced 16:00 JST → ja queue, 17:00 (the last hour that fits)",
         at(TOKYO, "2026-11-17 16:00"), at(TOKYO, "2026-11-17 17:00"), "enhanced", "ja",
         ("inside japanese hours", "enhanced is due no later than the ja queue's target"),
         addons=FILES_ENHANCED, language="ja"),
    Case("Japanese Enhanced 16:30 JST → English queue, 17:30 (not 1 h of hours tomorrow)",
         at(TOKYO, "2026-11-17 16:30"), at(TOKYO, "2026-11-17 17:30"), "enhanced", "en",
         ("close before the ja queue's 1 h", "served in en", "answered in en from the en queue"),
         addons=FILES_ENHANCED, language="ja"),
    Case("Japanese Epic champion 16:30 JST → English queue, 17:30",
         at(TOKYO, "2026-11-17 16:30"), at(TOKYO, "2026-11-17 17:30"), "champion-epic", "en",
         ("epic champion", "served in en"), champion="epic", team="globex", language="ja"),
    Case("Japanese Essentials Friday 16:30 JST → English queue, 4 h the same evening",
         at(TOKYO, "2026-11-20 16:30"), at(TOKYO, "2026-11-20 20:30"), "essentials", "en",
         ("outside japanese hours", "served in en"), addons=FILES_ESSENTIALS, language="ja"),
    Case("Japanese emergency mail 16:59 JST → English queue, the 2 h of the emergency line",
         at(TOKYO, "2026-11-17 16:59"), at(TOKYO, "2026-11-17 18:59"), "emergency", "en",
         ("window 07:30-22:00", "served in en"), team="globex", language="ja",
         emergency=True),
    Case("Japanese essentials 15:30 JST → ja queue, its 1 h is earlier than 4 h",
         at(TOKYO, "2026-11-17 15:30"), at(TOKYO, "2026-11-17 16:30"), "essentials", "ja",
         ("the ja queue's target is due earlier than essentials",), addons=FILES_ESSENTIALS,
         language="ja"),
    Case("Japanese standard 15:30 JST → the ja queue's 1 h is earlier",
         at(TOKYO, "2026-11-17 15:30"), at(TOKYO, "2026-11-17 16:30"), "standard", "ja",
         ("the ja queue's target is due earlier than standard",), team="globex",
         language="ja"),
    # -- the emergency line (Europe/Berlin, every day) ---------------------------------
    Case("emergency at 21:30 → 2 h", at(BERLIN, "2026-11-17 21:30"),
         at(BERLIN, "2026-11-17 23:30"), "emergency", "en", ("window 07:30-22:00",),
         team="globex", emergency=True),
    Case("emergency at 23:00 → 10 h", at(BERLIN, "2026-11-17 23:00"),
         at(BERLIN, "2026-11-18 09:00"), "emergency", "en", ("window 22:00-07:30",),
         team="globex", emergency=True),
    Case("emergency at 07:29 on a Sunday → 10 h", at(BERLIN, "2026-11-22 07:29"),
         at(BERLIN, "2026-11-22 17:29"), "emergency", "en", ("window 22:00-07:30",),
         team="globex", emergency=True),
    Case("emergency at 07:30 → 2 h", at(BERLIN, "2026-11-22 07:30"),
         at(BERLIN, "2026-11-22 09:30"), "emergency", "en", ("window 07:30-22:00",),
         team="globex", emergency=True),
    Case("emergency across the DST night: 10 real hours", at(BERLIN, "2026-10-24 23:00"),
         at(BERLIN, "2026-10-25 08:00"), "emergency", "en", ("window 22:00-07:30",),
         team="globex", emergency=True),
    Case("emergency for an Enhanced admin at 23:00 → the 1 h is earlier",
         at(BERLIN, "2026-11-17 23:00"), at(BERLIN, "2026-11-18 00:00"), "enhanced", "en",
         ("emergency address", "enhanced gives the earliest due"), addons=FILES_ENHANCED,
         emergency=True),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_policy_decides(case: Case) -> None:
    request = Request(at=case.when, sender="someone@customer.example", kind=case.kind,
                      role=case.role, champion=case.champion, team=case.team,
                      addons=case.addons, product=case.product, language=case.language,
                      emergency=case.emergency)
    found = decide(request, POLICY)
    assert (found.tier, found.queue) == (case.tier, case.queue), found.text
    assert found.due == case.due, f"due {found.due.astimezone(case.due.tzinfo)}: {found.text}"
    for words in case.mentions:
        assert words in found.text, f"{words!r} not in: {found.text}"


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 30
