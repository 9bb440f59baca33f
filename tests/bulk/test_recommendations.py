"""The acknowledgement of a new ticket recommends up to three help articles: matching the
ticket's issue type, else the team's earlier tickets, else the most popular."""

from __future__ import annotations

from gateway.config import Settings
from gateway.recommendations import issue_types_of
from gateway.runtime.app import Gateway
from gateway.runtime.server import GatewayServer
from tests.bulk.conftest import delivered, text_of
from tests.conftest import wait_for
from tests.mail import make_mail, send


def _ack_text(settings: Settings, to: str, count: int) -> str:
    wait_for(lambda: len(delivered(settings, to=to)) >= count, message=f"ack to {to}")
    mails = delivered(settings, to=to)
    return text_of(sorted(mails, key=lambda m: str(m["Subject"]))[count - 1])


def test_issue_types_are_whole_words() -> None:
    assert issue_types_of("Sync stopped; SYNC errors", ["sync", "links"]) == {"sync"}
    assert issue_types_of("synchronisation", ["sync"]) == set()
    assert issue_types_of("two-factor login", ["two-factor"]) == {"two-factor"}


def test_acknowledgements_recommend_articles(running: GatewayServer, bulk: Gateway,
                                             settings: Settings) -> None:
    # A sync problem: the sync article comes first, then the most popular ones
    send(settings.smtp_listen, make_mail(subject="[A] Sync fails",
                                         body="Hello, sync fails since Monday."))
    text = _ack_text(settings, "anna@acme.example", 1)
    assert "Synchronisierungsprobleme beheben" in text  # Anna reads German
    assert text.index("Synchronisierungsprobleme beheben") < text.index("Invoices and billing") \
        < text.index("Share files with links")
    assert "https://help.support.example/sync" in text

    # Globex has no tickets yet: a question without a known issue type gets the most popular
    send(settings.smtp_listen, make_mail(sender="yuki@globex.example", subject="[B] Question",
                                         body="Hello, a question about my account."),
         mail_from="yuki@globex.example")
    text = _ack_text(settings, "yuki@globex.example", 1)
    assert "Invoices and billing" in text and "Share files with links" in text \
        and "Fix sync problems" in text and "Restore an earlier version" not in text

    # Yuki then asks about restoring; Giulia (same team) writes without an issue type:
    # the team's history puts the (unpopular) restore article first for her
    send(settings.smtp_listen, make_mail(sender="yuki@globex.example", subject="[C] Restore",
                                         body="How do I restore a deleted file?"),
         mail_from="yuki@globex.example")
    _ack_text(settings, "yuki@globex.example", 2)
    send(settings.smtp_listen, make_mail(sender="giulia@globex.example", subject="[D] Aiuto",
                                         body="Buongiorno, ho bisogno di aiuto."),
         mail_from="giulia@globex.example")
    text = _ack_text(settings, "giulia@globex.example", 1)
    assert "Ripristinare una versione precedente" in text  # Italian title
    assert text.index("Ripristinare una versione precedente") < text.index("Invoices and billing")


def test_no_articles_no_recommendation_block(running: GatewayServer, gateway: Gateway,
                                            settings: Settings) -> None:
    send(settings.smtp_listen, make_mail(subject="Sync fails"))
    text = _ack_text(settings, "anna@acme.example", 1)
    assert "Artikel" not in text and "help.support.example" not in text
