"""Schema migrations: the store upgrades itself at open, never loses data, and the shipped
migrations build exactly the schema the code declares."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from connectors.base import Page
from policies.model.actions import ActionKind, PlannedAction
from policies.model.ledger import Invoice, InvoiceStatus
from policies.model.money import Money
from sync.store import Store, StoreError, open_store
from sync.store import schema as t
from sync.store.db import MIGRATIONS, create_engine, current_revision, head_revision, upgrade


def _invoice() -> Invoice:
    return Invoice(
        "I1",
        "F-1",
        "C1",
        date(2026, 1, 1),
        date(2026, 2, 1),
        "EUR",
        Money.of("10.10", "EUR"),
        Money.of("10.10", "EUR"),
        InvoiceStatus.OPEN,
    )


def _action() -> PlannedAction:
    return PlannedAction("k1", ActionKind.REMINDER, "C1", "EUR", ("I1",), "pre-due notice", step="before-due")


def test_new_database_is_at_head(store_url: str) -> None:
    store = open_store(store_url)
    try:
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


def test_upgrade_from_first_revision_keeps_data_and_rerun_is_a_noop(store_url: str) -> None:
    engine = create_engine(store_url)
    upgrade(engine, "0001")
    first = Store(engine)
    first.ledger.upsert_records("acme", Page("invoice", (_invoice(),)))
    first.outbox.record_planned("acme", [_action()])
    first.outbox.claim("k1")
    first.outbox.mark_done("k1", ["L1"], {"message_id": "<k1@relance>"})
    first.close()

    for _ in range(2):  # upgrade to head, then again: nothing changes, nothing is lost
        store = open_store(store_url, create=False)
        try:
            assert current_revision(store.engine) == head_revision()
            assert store.ledger.snapshot("acme").invoices == {"I1": _invoice()}
            record = store.outbox.action("k1")
            assert record is not None
            assert (record.status, record.ledger_ids, record.outcome["message_id"]) == (
                "done",
                ("L1",),
                "<k1@relance>",
            )
            assert store.outbox.history("acme")["I1"][0].key == "k1"
            assert store.ledger.snapshot("acme").invoices["I1"].balance.amount == Decimal("10.10")
        finally:
            store.close()


def test_migrations_build_exactly_the_declared_schema(store: Store) -> None:
    with store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), t.metadata)
    assert differences == []


def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() == 30_000
    finally:
        store.close()


def test_migrations_ship_inside_the_package() -> None:
    # Found by path from the package itself (works from an installed wheel: *.py and *.mako are package data).
    assert (MIGRATIONS / "env.py").is_file() and (MIGRATIONS / "script.py.mako").is_file()
    assert (MIGRATIONS / "__init__.py").is_file() and (MIGRATIONS / "versions" / "__init__.py").is_file()
    assert head_revision() == "0001"


def test_missing_database_file_with_create_false(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        open_store(f"sqlite:///{tmp_path / 'missing.sqlite'}", create=False)


@pytest.mark.parametrize(
    "url, message",
    [
        ("not a url", "is not a database URL"),
        ("mysql://user@host/db", "unsupported database"),
        ("sqlite:////no/such/folder/state.sqlite", "does not exist"),
    ],
)
def test_bad_state_urls_are_one_line_errors(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as caught:
        open_store(url)
    assert "\n" not in str(caught.value)


def test_unreachable_postgres_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="cannot open postgresql") as caught:
        open_store("postgresql+psycopg://postgres@127.0.0.1:1/nothing")
    assert caught.value.hint and "database server" in caught.value.hint
