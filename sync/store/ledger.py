"""The ledger mirror: each connection's customers, invoices, payments and credit notes as last
pulled (tables `customers`, `invoices`, `payments`, `credit_notes`), written page by page and read
whole (`snapshot`), streamed, by id, or on demand in the snapshot's shape (`view`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa

from connectors.base import Page
from policies.model.ledger import (
    CreditNote,
    Customer,
    Invoice,
    InvoiceStatus,
    LedgerSnapshot,
    Payment,
    Settlement,
)
from sync.store import codec
from sync.store import schema as t
from sync.store.connections import Connections
from sync.store.db import CHUNK, IN_CHUNK, Database, loads
from sync.store.views import LazyRecords, LedgerView

R = TypeVar("R", bound=codec.Record)


class Ledger:
    """`store.ledger`: the mirror of each connection's ledger."""

    def __init__(self, db: Database, connections: Connections) -> None:
        self._db = db
        self._connections = connections
        self._upsert_sql: dict[str, str] = {}

    # ------------------------------------------------------------ writing pages

    def upsert_records(self, connection: str, page: Page) -> int:
        """Store one page: insert-or-update its records (bulk), apply its deletions. Returns rows written.

        Deleted invoices become void and deleted customers inactive (their history stays readable);
        deleted payments and credit notes are removed (they must stop settling invoices)."""
        table = t.SNAPSHOT_TABLES.get(page.entity)
        if table is None:
            raise ValueError(f"unknown entity {page.entity!r}")
        now = self._db.now()
        rows = []
        for record in page.records:
            row = codec.row_for(page.entity, record)
            row["connection"] = connection
            row["stored_at"] = now
            rows.append(row)
        with self._db.write() as conn:
            self._connections.ensure(conn, connection)
            if rows:
                self._bulk_upsert(conn, table, rows)
            if page.deleted_ids:
                self._delete(conn, connection, page.entity, table, page.deleted_ids, now)
        return len(rows)

    def _bulk_upsert(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """INSERT .. ON CONFLICT DO UPDATE through the driver's executemany, values converted here once:
        SQLAlchemy's per-row bind processing would cost several times the database work."""
        columns = [column.name for column in table.columns]
        sql = self._upsert_sql.get(table.name)
        if sql is None:
            marks = [self._db.named_mark(name) for name in columns]
            updates = ", ".join(
                f"{name} = excluded.{name}" for name in columns if name not in ("connection", "id")
            )
            sql = (
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(marks)}) "
                f"ON CONFLICT (connection, id) DO UPDATE SET {updates}"
            )
            self._upsert_sql[table.name] = sql
        converters = [
            (column.name, convert)
            for column in table.columns
            if (convert := self._db.driver_converter(column)) is not None
        ]
        for row in rows:
            for name, convert in converters:
                row[name] = convert(row[name])
        conn.exec_driver_sql(sql, rows)

    def _delete(
        self,
        conn: sa.Connection,
        connection: str,
        entity: str,
        table: sa.Table,
        ids: Sequence[str],
        now: datetime,
    ) -> None:
        in_connection = table.c.connection == connection
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            if entity in ("payment", "credit_note"):
                conn.execute(sa.delete(table).where(in_connection, table.c.id.in_(chunk)))
                continue
            rows = conn.execute(
                sa.select(table.c.id, table.c.payload).where(in_connection, table.c.id.in_(chunk))
            )
            updates = []
            for row in rows:
                payload = dict(row.payload)
                if entity == "invoice":
                    payload["status"] = InvoiceStatus.VOID.value
                    updates.append(
                        {
                            "b_id": row.id,
                            "payload": payload,
                            "status": InvoiceStatus.VOID.value,
                            "is_open": False,
                            "stored_at": now,
                        }
                    )
                else:
                    payload["active"] = False
                    updates.append({"b_id": row.id, "payload": payload, "active": False, "stored_at": now})
            if updates:
                values: dict[str, Any] = {k: sa.bindparam(k) for k in updates[0] if k != "b_id"}
                conn.execute(
                    sa.update(table).where(in_connection, table.c.id == sa.bindparam("b_id")).values(values),
                    updates,
                )

    # ------------------------------------------------------------ reading

    def snapshot(self, connection: str) -> LedgerSnapshot:
        """Everything stored for one connection, as the planner's plain data."""
        parts: dict[str, dict[str, Any]] = {}
        with self._db.read() as conn:
            for entity, table in t.SNAPSHOT_TABLES.items():
                decode = codec.DECODERS[entity]
                parts[entity] = {
                    row_id: decode(payload) for row_id, payload in self._payloads(conn, table, connection)
                }
        return LedgerSnapshot(
            customers=parts["customer"],
            invoices=parts["invoice"],
            payments=parts["payment"],
            credit_notes=parts["credit_note"],
        )

    def _payloads(self, conn: sa.Connection, table: sa.Table, connection: str) -> Iterator[tuple[str, Any]]:
        """(id, payload dict) of one connection's rows, through the driver (a snapshot is a hot path)."""
        result = conn.exec_driver_sql(
            f"SELECT id, payload FROM {table.name} WHERE connection = {self._db.mark}", (connection,)
        )
        decode = json.loads
        for row_id, payload in result:  # loads() inlined: a function call per row shows at 1M rows
            yield row_id, decode(payload) if isinstance(payload, str | bytes) else payload

    def iter_invoices(
        self, connection: str, *, open_only: bool = False, batch: int = 2000
    ) -> Iterator[Invoice]:
        """Stream invoices (server-side cursor on PostgreSQL) in due-date order."""
        table = t.invoices
        query = sa.select(table.c.payload).where(table.c.connection == connection)
        if open_only:
            query = query.where(table.c.is_open.is_(True))
        query = query.order_by(table.c.due_date, table.c.id)
        with self._db.stream() as conn:
            result = conn.execution_options(yield_per=batch).execute(query)
            for row in result:
                yield codec.decode_invoice(row.payload)

    def invoice(self, connection: str, invoice_id: str) -> Invoice | None:
        return self._by_id(connection, t.invoices, invoice_id, codec.decode_invoice)

    def customer(self, connection: str, customer_id: str) -> Customer | None:
        return self._by_id(connection, t.customers, customer_id, codec.decode_customer)

    def payment(self, connection: str, payment_id: str) -> Payment | None:
        return self._by_id(connection, t.payments, payment_id, codec.decode_payment)

    def credit_note(self, connection: str, note_id: str) -> CreditNote | None:
        return self._by_id(connection, t.credit_notes, note_id, codec.decode_credit_note)

    def _by_id(
        self, connection: str, table: sa.Table, record_id: str, decode: Callable[[dict[str, Any]], R]
    ) -> R | None:
        with self._db.read() as conn:
            payload = conn.execute(
                sa.select(table.c.payload).where(table.c.connection == connection, table.c.id == record_id)
            ).scalar_one_or_none()
        return None if payload is None else decode(payload)

    def find_invoices(self, id_or_number: str, *, connection: str | None = None) -> list[tuple[str, Invoice]]:
        """Invoices whose ledger id or number is `id_or_number`, as (connection, invoice)."""
        table = t.invoices
        query = sa.select(table.c.connection, table.c.payload).where(
            sa.or_(table.c.id == id_or_number, table.c.number == id_or_number)
        )
        if connection is not None:
            query = query.where(table.c.connection == connection)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(table.c.connection, table.c.id)).all()
        return [(row.connection, codec.decode_invoice(row.payload)) for row in rows]

    def counts(self, connection: str) -> dict[str, int]:
        """Rows stored per entity for one connection."""
        with self._db.read() as conn:
            return {
                entity: conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c.connection == connection)
                ).scalar_one()
                for entity, table in t.SNAPSHOT_TABLES.items()
            }

    # ------------------------------------------------------------ lookups by many ids

    def customers_by_id(self, connection: str, ids: Sequence[str]) -> dict[str, Customer]:
        c = t.customers
        unique = list(dict.fromkeys(ids))
        result: dict[str, Customer] = {}
        with self._db.read() as conn:
            for start in range(0, len(unique), IN_CHUNK):
                chunk = unique[start : start + IN_CHUNK]
                query = sa.select(c.c.id, c.c.payload).where(c.c.connection == connection, c.c.id.in_(chunk))
                for row_id, payload in conn.execute(query):
                    result[row_id] = codec.decode_customer(payload)
        return result

    def invoice_customers(self, connection: str, invoice_ids: Sequence[str]) -> dict[str, str]:
        """Invoice id -> its customer id, for the ids stored."""
        inv = t.invoices
        ids = list(dict.fromkeys(invoice_ids))
        result: dict[str, str] = {}
        with self._db.read() as conn:
            for start in range(0, len(ids), IN_CHUNK):
                query = sa.select(inv.c.id, inv.c.customer_id).where(
                    inv.c.connection == connection, inv.c.id.in_(ids[start : start + IN_CHUNK])
                )
                result.update({row.id: row.customer_id for row in conn.execute(query)})
        return result

    def payments_of_customers(self, connection: str, customer_ids: Sequence[str]) -> list[Payment]:
        return self._of_customers(connection, t.payments, customer_ids, codec.decode_payment)

    def credit_notes_of_customers(self, connection: str, customer_ids: Sequence[str]) -> list[CreditNote]:
        return self._of_customers(connection, t.credit_notes, customer_ids, codec.decode_credit_note)

    def _of_customers(
        self,
        connection: str,
        table: sa.Table,
        customer_ids: Sequence[str],
        decode: Callable[[dict[str, Any]], R],
    ) -> list[R]:
        records: list[R] = []
        with self._db.read() as conn:
            for start in range(0, len(customer_ids), IN_CHUNK):
                chunk = list(customer_ids[start : start + IN_CHUNK])
                query = sa.select(table.c.payload).where(
                    table.c.connection == connection, table.c.customer_id.in_(chunk)
                )
                records.extend(decode(payload) for payload in conn.execute(query).scalars())
        return records

    def settlements_for(self, connection: str, invoice_ids: Collection[str]) -> dict[str, list[Settlement]]:
        """`settlements_by_invoice` restricted to some invoices, found through the allocations in SQL
        (a scan of payments and credit notes: for the odd lookup, not for a loop)."""
        wanted = set(invoice_ids)
        found: dict[str, list[Settlement]] = defaultdict(list)
        sources: tuple[tuple[str, sa.Table, Callable[[dict[str, Any]], Payment | CreditNote]], ...] = (
            ("payment", t.payments, codec.decode_payment),
            ("credit_note", t.credit_notes, codec.decode_credit_note),
        )
        with self._db.read() as conn:
            for entity, table, decode in sources:
                for payload in self._payloads_allocated_to(conn, table.name, connection, sorted(wanted)):
                    record = decode(payload)
                    for allocation in record.allocations:
                        if allocation.invoice_id in wanted:
                            found[allocation.invoice_id].append(
                                Settlement(record.date, allocation.amount, entity, record.id)
                            )
        for items in found.values():
            items.sort(key=lambda s: (s.date, s.source_id))
        return dict(found)

    def _payloads_allocated_to(
        self, conn: sa.Connection, table: str, connection: str, invoice_ids: list[str]
    ) -> Iterator[Any]:
        if not invoice_ids:
            return
        marks = ", ".join(self._db.mark for _ in invoice_ids)
        if self._db.dialect == "sqlite":
            sql = (
                f"SELECT r.payload FROM {table} AS r WHERE r.connection = ? AND EXISTS (SELECT 1 FROM "
                "json_each(r.payload, '$.allocations') AS a "
                f"WHERE json_extract(a.value, '$[0]') IN ({marks}))"
            )
        else:
            sql = (
                f"SELECT r.payload FROM {table} AS r WHERE r.connection = %s AND EXISTS (SELECT 1 FROM "
                f"json_array_elements(r.payload::json -> 'allocations') AS a(value) "
                f"WHERE (a.value ->> 0) IN ({marks}))"
            )
        for (payload,) in conn.exec_driver_sql(sql, (connection, *invoice_ids)):
            yield loads(payload)

    # ------------------------------------------------------------ on demand (bounded memory)

    def view(self, connection: str, *, cache_size: int = 4096) -> LedgerView:
        """The snapshot's shape without the snapshot: records by id on demand (an LRU of
        `cache_size` per entity), `values()` streamed page by page."""
        return LedgerView(
            customers=self._lazy(connection, "customer", self.customer, codec.decode_customer, cache_size),
            invoices=self._lazy(connection, "invoice", self.invoice, codec.decode_invoice, cache_size),
            payments=self._lazy(connection, "payment", self.payment, codec.decode_payment, cache_size),
            credit_notes=self._lazy(
                connection, "credit_note", self.credit_note, codec.decode_credit_note, cache_size
            ),
        )

    def _lazy(
        self,
        connection: str,
        entity: str,
        fetch: Callable[[str, str], R | None],
        decode: Callable[[dict[str, Any]], R],
        cache_size: int,
    ) -> LazyRecords[R]:
        table = t.SNAPSHOT_TABLES[entity]
        return LazyRecords(
            lambda i: fetch(connection, i),
            lambda: self._iter(connection, table, decode, 2000),
            lambda: self.counts(connection)[entity],
            cache_size,
        )

    def iter_records(self, connection: str, entity: str, *, page: int = 2000) -> Iterator[codec.Record]:
        """Every record of one entity, by id, one keyset page at a time (nothing held open between
        pages, so the caller may query the store while iterating)."""
        return self._iter(connection, t.SNAPSHOT_TABLES[entity], codec.DECODERS[entity], page)

    def _iter(
        self, connection: str, table: sa.Table, decode: Callable[[dict[str, Any]], R], page: int
    ) -> Iterator[R]:
        query = sa.select(table.c.id, table.c.payload).where(table.c.connection == connection)
        after: str | None = None
        while True:
            selected = query if after is None else query.where(table.c.id > after)
            with self._db.read() as conn:
                rows = conn.execute(selected.order_by(table.c.id).limit(page)).all()
            for row in rows:
                yield decode(row.payload)
            if len(rows) < page:
                return
            after = rows[-1].id
