"""Pulling a ledger into the state store: pages streamed in, the cursor saved only once every page
is stored (a building block of the run; sync.engine orchestrates)."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from connectors.base import Connector, PullMode
from sync.store import Store


def pull_into_store(
    connector: Connector, store: Store, name: str, *, history_from: date, full: bool = False
) -> tuple[Counter[str], int]:
    """Stream pages into the store; the cursor is saved only once every page is stored."""
    cursor = None if full else store.connections.cursor(name)
    stream = connector.pull(cursor, history_from=history_from)
    counts: Counter[str] = Counter()
    quarantined = 0
    for page in stream:
        store.ledger.upsert_records(name, page)
        counts[page.entity] += len(page.records)
        for bad in page.quarantined:
            store.quarantine.add(name, bad)
            quarantined += 1
    store.connections.set_cursor(name, stream.cursor, full=stream.mode is PullMode.FULL)
    return counts, quarantined


def history_from(history_months: int, today: date) -> date:
    """First day of the paid history a full pull covers (`history_months` before today)."""
    return today - timedelta(days=round(history_months * 365.25 / 12))
