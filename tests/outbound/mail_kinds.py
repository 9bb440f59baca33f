"""Every kind of mail the gateway sends, with a realistic and demanding context.

Long subjects, long URLs (tokens as the gateway makes them), long names and multi-line
texts: what a real recipient gets at its worst.  Used by the 375 px browser test and the
Japanese punctuation test; a new kind must be added here (``test_every_kind_is_listed``).
"""

from __future__ import annotations

from typing import Any

TOKEN = "Xq3vR8kT2mP9wL5nB7cD1fG4hJ6sA0zY" * 2
BASE = "https://support.example.com:8443"
LONG_SUBJECT = ("Synchronisation des freigegebenen Ordners „Quartalsberichte 2026/Q3 – "
                "Finanzen und Controlling“ schlägt seit dem Update auf Version 4.2.1 fehl: "
                "Fehler SYNC_CONFLICT_UNRESOLVABLE_0x80070020_DURING_UPLOAD")
LONG_TEXT = ("Hello,\n\nsince Monday the sync of our shared folder fails with the error "
             "below; the log is at "
             f"{BASE}/files/shared/logs/2026-11-17/sync-client-4.2.1-{TOKEN}.log\n\n"
             "C:\\Users\\anna.admin\\AppData\\Local\\ExampleFiles\\sync\\conflicts\\"
             "Quartalsbericht_Finanzen_und_Controlling_FINAL_v7_korrigiert.xlsx\n\n"
             "Thanks, Anna")
ARTICLES = [
    {"title": "Fix sync problems caused by conflicting edits in shared folders",
     "url": f"https://help.support.example/articles/sync/conflicts?ref=ack&id={TOKEN}"},
    {"title": "Datei-Anfragen", "url": "https://help.support.example/file-requests"},
]
FEATURES = [
    {"id": "file-requests", "name": "File requests: collect files from anyone",
     "description": "Collect files from anyone, even without an account, into one folder.",
     "url": f"https://help.support.example/features/file-requests?utm_source={TOKEN}"},
    {"id": "version-history", "name": "Version history",
     "description": "Restore any earlier version of a file.",
     "url": "https://help.support.example/features/version-history"},
    {"id": "shared-links", "name": "Shared links with passwords",
     "description": "", "url": ""},
]
COMMON: dict[str, Any] = {"support_name": "Example Support – Kundenservice Deutschland",
                          "hub_url": f"{BASE}/hub/"}
GRANT: dict[str, Any] = {
    "recipient_name": "Anna-Katharina Müller-Lüdenscheidt", "team_name": "Acme GmbH & Co. KG",
    "agent_label": "Kenji Watanabe <kenji.watanabe@support.example>", "department": None,
    "reason": LONG_TEXT, "export": True,
    "overview_url": f"{BASE}/grants/overview/{TOKEN}.{TOKEN}",
}

CONTEXTS: dict[str, dict[str, Any]] = {
    "acknowledgement": {
        "ticket_number": 104711, "ticket_subject": LONG_SUBJECT,
        "requester_name": "Anna-Katharina Müller-Lüdenscheidt", "excerpt": LONG_TEXT,
        "promise": "We will answer by Monday 09:30 JST.", "recommendations": ARTICLES},
    "agent_reply": {
        "ticket_number": 104711, "ticket_subject": LONG_SUBJECT, "requester_name": "Anna",
        "agent_name": "Kenji Watanabe", "text": LONG_TEXT, "status": "solved",
        "reopen_days": 7, "satisfaction_url": f"{BASE}/satisfaction/{TOKEN}"},
    "agents_notice": {
        "ticket_number": 104711, "ticket_subject": LONG_SUBJECT, "new_ticket": True,
        "author_name": "Anna-Katharina Müller-Lüdenscheidt",
        "author_email": "anna-katharina.mueller-luedenscheidt@acme-gmbh-und-co.example",
        "author_role": "requester", "team_name": "Acme GmbH & Co. KG", "tier": "enhanced",
        "queue": "ja", "first_response_due": "2026-11-23 14:00 UTC", "status": "new",
        "reopened": False, "follows": None, "flags": ["unverified sender: no DKIM pass"],
        "unverified": True,
        "text": LONG_TEXT, "attachments": ["Quartalsbericht_FINAL_v7_korrigiert.xlsx"],
        "not_attached": [{"name": "screen-recording-2026-11-17-sync-failure.mp4",
                          "size": "48.2 MB"}]},
    "announcement": {
        "recipient_name": "Anna", "announcement_subject": LONG_SUBJECT,
        "announcement_body": LONG_TEXT,
        "unsubscribe_url": f"{BASE}/unsubscribe/{TOKEN}"},
    "auto_closed": {"ticket_number": 104711, "ticket_subject": LONG_SUBJECT,
                    "requester_name": "Anna-Katharina Müller-Lüdenscheidt", "waiting_days": 7,
                    "reopen_days": 14},
    "callback_requested": {
        "callback_id": 98765, "person_name": "Anna-Katharina Müller-Lüdenscheidt",
        "person_email": "anna-katharina.mueller-luedenscheidt@acme-gmbh-und-co.example",
        "team_id": "acme-gmbh-und-co-kg-niederlassung-koeln", "role": "admin",
        "language": "de", "phone": "+49 (0)221 123 456 789 00",
        "topic": "Synchronisation des freigegebenen Ordners schlägt seit dem Update fehl "
                 "und wir brauchen vor dem Quartalsabschluss eine Lösung",
        "window": "Tue 2026-12-08 14:00–16:00 Europe/Berlin (13:00–15:00 UTC)"},
    "colleague_reply": {
        "ticket_number": 104711, "ticket_subject": LONG_SUBJECT, "requester_name": "Max",
        "colleague_name": "Anna-Katharina Müller-Lüdenscheidt",
        "colleague_email": "anna-katharina.mueller-luedenscheidt@acme-gmbh-und-co.example",
        "text": LONG_TEXT},
    "delivery_failed": {
        "ticket_number": 104711, "ticket_subject": LONG_SUBJECT,
        "failed_kind": "agent_reply", "failed_kind_label": "agent reply",
        "recipient": "anna-katharina.mueller-luedenscheidt@acme-gmbh-und-co.example",
        "failed_subject": f"[#104711] {LONG_SUBJECT}",
        "answer": "RCPT TO: 550 5.1.1 <anna-katharina.mueller-luedenscheidt@acme-gmbh-und-co"
                  ".example>: Recipient address rejected: User unknown in virtual mailbox "
                  "table", "attempts": 1, "outbox_id": 98765},
    "duplicate_notice": {
        "ticket_number": 104712, "original_number": 104711, "original_subject": LONG_SUBJECT,
        "requester_name": "Anna", "excerpt": LONG_TEXT},
    "escalation": {
        "ticket_number": 104711, "ticket_subject": LONG_SUBJECT,
        "requester": "anna-katharina.mueller-luedenscheidt@acme-gmbh-und-co.example",
        "tier": "enhanced", "queue": "ja", "breached": False, "share": 75,
        "due": "Mon 2026-11-23 09:30 JST (00:30 UTC)",
        "entitlement": "anna@acme.example is a team admin of acme (admins get the team's "
                       "plan); team acme has the enhanced add-on for files (valid on "
                       "2026-11-20): 1 h (around the clock); first response due …"},
    "grant_activation": {
        **GRANT, "asked_by": "Kenji Watanabe <kenji.watanabe@support.example>",
        "activate_url": f"{BASE}/grants/activate/{TOKEN}",
        "link_expires": "2026-11-20 16:45 UTC"},
    "grant_expiring": {**GRANT, "until": "2026-11-21 16:45 UTC"},
    "grant_granted": {**GRANT, "until": "2026-11-21 16:45 UTC",
                      "granted_by": "Anna-Katharina Müller-Lüdenscheidt"},
    "hub_sign_in": {"recipient_name": "Anna-Katharina Müller-Lüdenscheidt",
                    "sign_in_url": f"{BASE}/hub/sign-in/{TOKEN}", "link_minutes": 20},
    "grant_revoked": {**GRANT, "until": "2026-11-21 16:45 UTC",
                      "revoked_by": "Anna-Katharina Müller-Lüdenscheidt"},
    "pending_reminder": {"ticket_number": 104711, "ticket_subject": LONG_SUBJECT,
                         "requester_name": "Anna-Katharina Müller-Lüdenscheidt",
                         "waiting_days": 3, "close_days": 4},
    "quarterly": {
        "recipient_name": "Anna", "team_name": "Acme GmbH & Co. KG Niederlassung Köln",
        "quarter": "2026Q4", "features": FEATURES,
        "unsubscribe_url": f"{BASE}/unsubscribe/{TOKEN}"},
    "reopened": {"ticket_number": 104711, "ticket_subject": LONG_SUBJECT,
                 "requester_name": "Anna"},
    "reply_refused": {
        "ticket_number": 104711, "ticket_subject": LONG_SUBJECT, "reply_subject": LONG_SUBJECT,
        "recipient_name": "Max", "reason": "before_cutoff", "cutoff_date": "2024-12-11",
        "support_address": "support@support.example"},
    "status_notice": {"ticket_number": 104711, "ticket_subject": LONG_SUBJECT,
                      "requester_name": "Anna", "status": "pending", "reopen_days": 7},
    "team_ticket_copy": {
        "ticket_number": 104711, "ticket_subject": LONG_SUBJECT, "admin_name": "Anna",
        "requester_name": "Max Mustermann-Schmidt",
        "requester_email": "max.mustermann-schmidt@acme-gmbh-und-co.example",
        "team_name": "Acme GmbH & Co. KG", "text": LONG_TEXT},
    "ticket_assigned": {
        "ticket_number": 104711, "ticket_subject": LONG_SUBJECT,
        "assignee_name": "Kenji Watanabe-Takahashi",
        "assigned_by": "Lena Lindqvist-Oberhauser <lena.lindqvist-oberhauser@support.example>",
        "requester_email": "anna-katharina.mueller-luedenscheidt@acme-gmbh-und-co.example",
        "requester_name": "Anna-Katharina Müller-Lüdenscheidt", "status": "pending",
        "tier": "enhanced", "queue": "ja", "first_response_due": "2026-11-23 14:00 UTC",
        "excerpt": LONG_TEXT},
    "ticket_list": {
        "recipient_name": "Anna", "more": 12, "include_old": True, "since": "2026-01-01",
        "tickets": [{"number": 104711 + n, "subject": LONG_SUBJECT if n % 2 else "",
                     "status": status, "updated": "2026-11-17"}
                    for n, status in enumerate(("open", "pending", "solved", "closed"))]},
    "ticket_merged": {"ticket_number": 104712, "ticket_subject": LONG_SUBJECT,
                      "requester_name": "Anna-Katharina Müller-Lüdenscheidt",
                      "merged": True, "other_number": 104711},
}


def context(kind: str) -> dict[str, Any]:
    """The full context of ``kind`` (with the keys every kind has)."""
    return {**COMMON, **CONTEXTS[kind]}
