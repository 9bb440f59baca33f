"""The one-query look-ups threading relies on (issue 18 made them cheaper): which ticket each
Message-ID a reply names belongs to (``gateway.tickets.indexed_tickets``), and the live ticket
a number continues as after merges (``gateway.thread_index.live_ticket_at``)."""

from __future__ import annotations

from sqlalchemy import update

from gateway.models import Ticket
from gateway.runtime.app import Gateway
from gateway.thread_index import live_ticket_at
from gateway.tickets import indexed_tickets, record_message_ref
from tests.mail import make_mail
from tests.pipeline.build import processed


def _tickets(gateway: Gateway, count: int) -> list[int]:
    return [processed(gateway, make_mail(sender=f"customer{i}@example.org",
                                         subject=f"Question {i}", body=f"Text number {i}."))
            for i in range(count)]


def test_each_named_id_finds_the_ticket_that_indexed_it_first_in_the_order_named(
        gateway: Gateway) -> None:
    # Given three tickets, an id indexed on the second and later (a forward) on the third,
    # and an id only the first knows, written in another case than the reply writes it
    first, second, third = _tickets(gateway, 3)
    with gateway.db.transaction() as session:
        record_message_ref(session, "shared@client.example", second, "in")
        session.flush()
        record_message_ref(session, "shared@client.example", third, "in")
        record_message_ref(session, "Only.First@Client.Example", first, "in")
    # When a reply names them, with an unknown id among them
    with gateway.db.reading() as session:
        found = indexed_tickets(session, ["unknown@nowhere.example", "only.first@client.example",
                                          "shared@client.example"])
    # Then every known id is answered in the order given, by the ticket that indexed it first
    assert found == [("only.first@client.example", first), ("shared@client.example", second)]
    with gateway.db.reading() as session:
        assert indexed_tickets(session, []) == []


def test_a_merged_ticket_continues_as_the_end_of_its_merge_chain(gateway: Gateway) -> None:
    # Given ticket A merged into B, and B into C
    a, b, c = _tickets(gateway, 3)
    with gateway.db.transaction() as session:
        session.execute(update(Ticket).where(Ticket.number == a).values(merged_into=b))
        session.execute(update(Ticket).where(Ticket.number == b).values(merged_into=c))
    # Then each of them continues as C, and a number no ticket has is no ticket
    with gateway.db.transaction() as session:
        for number in (a, b, c):
            live = live_ticket_at(session, number)
            assert live is not None and live.number == c
        assert live_ticket_at(session, c + 100) is None
