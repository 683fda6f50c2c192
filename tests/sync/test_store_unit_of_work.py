"""The unit of work behind the repositories, on SQLite and PostgreSQL: inside `store.transaction()`
every repository call shares one connection and commits or rolls back with the others; outside one,
each call is its own short transaction."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import date

import pytest

from connectors.base import Page
from policies.model.actions import ActionKind, ActionStatus, PlannedAction
from policies.model.ledger import Customer
from sync.store import Store, StoreError, open_store

CONN = "acme"


def planned(key: str) -> PlannedAction:
    return PlannedAction(key, ActionKind.REMINDER, "C1", "EUR", ("I1",), f"why {key}", step="first")


class Boom(Exception):
    pass


@pytest.fixture
def other(store_url: str, store: Store) -> Iterator[Store]:
    """A second Store on the same database: its own engine, its own connections."""
    second = open_store(store_url)
    try:
        yield second
    finally:
        second.close()


def test_writes_of_several_repositories_roll_back_together(store: Store) -> None:
    with pytest.raises(Boom), store.transaction():
        store.outbox.record_planned(CONN, [planned("k1")])
        store.cases.set_dispute(CONN, "I1", reason="wrong quantity")  # a write and an audit row
        store.ledger.upsert_records(CONN, Page("customer", (Customer("C1", "Acme"),)))
        assert store.outbox.action("k1") is not None  # reads inside see the transaction's writes
        raise Boom
    assert store.outbox.actions(CONN) == []
    assert store.cases.dispute_records(CONN) == []
    assert store.audit.entries(CONN) == []
    assert store.ledger.counts(CONN)["customer"] == 0
    assert store.connections.get(CONN) is None  # even the connection row the writes created


def test_a_transaction_commits_everything_at_its_end(store: Store, other: Store) -> None:
    with store.transaction():
        store.outbox.record_planned(CONN, [planned("k1")])
        assert store.outbox.claim("k1")
        store.cases.set_pause(CONN, "C1", date(2026, 4, 30))
        assert other.outbox.action("k1") is None  # not committed yet: another connection sees nothing
    record = other.outbox.action("k1")
    assert record is not None and record.status is ActionStatus.IN_FLIGHT
    assert other.cases.pauses(CONN, date(2026, 4, 1)) == {"C1": date(2026, 4, 30)}
    assert [e.event for e in other.audit.entries(CONN)] == ["pause_set"]


def test_outside_a_transaction_each_call_commits_on_its_own(store: Store, other: Store) -> None:
    assert store.outbox.record_planned(CONN, [planned("k1")]) == ["k1"]
    assert other.outbox.action("k1") is not None  # committed as soon as the call returned
    with pytest.raises(StoreError, match="no action with key 'nope'"):
        store.outbox.claim("nope")
    assert store.outbox.claim("k1")  # the failure above undid nothing
    assert other.outbox.action("k1").status is ActionStatus.IN_FLIGHT  # type: ignore[union-attr]


def test_a_nested_transaction_is_a_savepoint(store: Store) -> None:
    with store.transaction():
        store.outbox.record_planned(CONN, [planned("outer")])
        with pytest.raises(Boom), store.transaction():
            store.outbox.record_planned(CONN, [planned("inner")])
            store.audit.record("inner", connection=CONN)
            raise Boom
        store.audit.record("outer", connection=CONN)
    assert [r.key for r in store.outbox.actions(CONN)] == ["outer"]
    assert [e.event for e in store.audit.entries(CONN)] == ["outer"]


def test_the_transaction_belongs_to_its_thread_and_its_store(store: Store, other: Store) -> None:
    seen: list[object] = []
    with store.transaction():
        store.outbox.record_planned(CONN, [planned("k1")])
        reader = threading.Thread(target=lambda: seen.append(store.outbox.action("k1")))
        reader.start()
        reader.join(30)
        seen.append(other.outbox.action("k1"))
    assert seen == [None, None]  # neither another thread nor another Store joined the transaction
    assert store.outbox.action("k1") is not None


def test_a_lease_taken_inside_a_transaction_writes_through_it(store: Store) -> None:
    with store.transaction():
        with store.lease(CONN, "me:1"):
            holder = store.leases.holder(CONN)
            assert holder is not None and holder[0] == "me:1"
        store.outbox.record_planned(CONN, [planned("k1")])
    assert store.leases.holder(CONN) is None
    assert store.outbox.action("k1") is not None
