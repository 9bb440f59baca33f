"""Scale-out: several ``serve`` processes share one database, one of them polls a mailbox
(the ``imap:<name>`` lease); when it stops, another takes over within the lease time."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from gateway import leases
from gateway.models import SpoolEntry
from gateway.runtime.server import GatewayServer
from tests.conftest import wait_for
from tests.imap.conftest import (
    ImapGateways,
    mailbox,
    spool_count,
    wait_all_processed,
    wait_polled,
)
from tests.imap.dovecot import Dovecot
from tests.mail import make_mail


def _polling(servers: list[GatewayServer]) -> list[GatewayServer]:
    return [s for s in servers if s.pollers and any(p._lease_held for p in s.pollers.pollers)]


def test_one_node_polls_and_another_takes_over(dovecot: Dovecot,
                                               imap_gateways: ImapGateways) -> None:
    box = mailbox(dovecot)
    servers = [imap_gateways.start([box]), imap_gateways.start([box])]
    wait_for(lambda: len(_polling(servers)) == 1, 20, message="one poller holding the lease")
    holder = _polling(servers)[0]
    standby = next(s for s in servers if s is not holder)
    assert holder.pollers is not None
    database = standby.gateway.db
    wait_polled(standby.gateway, "shared")  # the checkpoint exists: what follows is new mail
    assert leases.current_holder(database, "imap:shared") == holder.pollers.pollers[0].holder
    client = dovecot.client("support@support.example")
    try:
        client.multiappend("INBOX", [make_mail(subject=f"Node {n}",
                                               message_id=f"<node-{n}@client.example>")
                                     for n in range(10)])
        wait_all_processed(standby.gateway, 10)
        holder.stop()
        imap_gateways.servers.remove(holder)
        wait_for(lambda: _polling([standby]), 15, message="the standby taking the lease over")
        client.multiappend("INBOX", [make_mail(subject="After failover",
                                               message_id="<node-late@client.example>")])
    finally:
        client.logout()
    wait_all_processed(standby.gateway, 11)
    assert spool_count(standby.gateway) == 11
    with standby.gateway.db.reading() as session:
        assert max(Counter(session.scalars(select(SpoolEntry.message_id))).values()) == 1
