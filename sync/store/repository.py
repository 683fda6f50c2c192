"""The state store's library API: what the engine, the CLI and the reports call.

One `Store` per database URL (`open_store`). Every method is one short transaction; writes take the
write lock up front on SQLite (BEGIN IMMEDIATE) and rely on row locks on PostgreSQL.

The outbox (table `actions`) is the heart of exactly-once:
  planned --claim--> in_flight --mark_done--> done
                              --mark_failed--> failed --claim--> in_flight (retry)
                              --mark_uncertain--> uncertain --resolve_uncertain--> done | planned
                              --release--> planned (the effect provably did not happen)
  planned | failed --mark_superseded--> superseded (no longer due; never applied)
`claim` is a compare-and-set in one UPDATE, so two processes can never both claim an action.

History for planning (`history`) counts done, in_flight, uncertain and superseded actions as
already done, so nothing is planned again while its fate is unknown. An action superseded before
it was applied (cancelled) has had no effect: its charges are left out of the history (what was not
posted stays owed and rolls into the next charge), while its key and step still count.
"""

from __future__ import annotations

import dataclasses
import json
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from connectors.base import Cursor, Page, Quarantined
from policies.model.actions import ActionKind, Charge, DoneAction, PlannedAction
from policies.model.errors import RelanceError
from policies.model.ledger import (
    Allocation,
    Customer,
    Instalment,
    Invoice,
    InvoiceStatus,
    LedgerSnapshot,
    Settlement,
)
from policies.payment_plans import PaymentPlan
from sync.store import codec
from sync.store import schema as t
from sync.store.db import StoreError, create_engine, parse_url, sqlite_path, upgrade, writer

HISTORY_STATUSES = ("done", "superseded", "in_flight", "uncertain")
CLAIMABLE = ("planned", "failed")
_CHUNK = 5000  # rows per executemany (bounded memory, well under SQLite's variable limit per row)
_IN_CHUNK = 500  # ids per IN (...) list in streaming lookups


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- records returned by the store


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One outbox row."""

    key: str
    connection: str
    kind: str
    customer_id: str
    currency: str
    invoice_ids: tuple[str, ...]
    step: str | None
    channel: str | None
    template: str | None
    instalment: int | None
    charges: tuple[Charge, ...]
    reason: str
    status: str
    attempts: int
    ledger_ids: tuple[str, ...]
    error: str | None
    planned_for: date | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (amounts as strings, datetimes ISO)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["charges"] = codec.encode_charges(self.charges)
        return codec.jsonable(data)  # type: ignore[no-any-return]

    def to_planned(self) -> PlannedAction:
        return PlannedAction(
            key=self.key,
            kind=ActionKind(self.kind),
            customer_id=self.customer_id,
            currency=self.currency,
            invoice_ids=self.invoice_ids,
            reason=self.reason,
            step=self.step,
            channel=self.channel,
            template=self.template,
            charges=self.charges,
            instalment=self.instalment,
            due_on=self.planned_for,
            details=dict(self.details),
        )


@dataclass(frozen=True, slots=True)
class TaskRecord:
    id: int
    key: str
    connection: str
    kind: str
    customer_id: str | None
    invoice_ids: tuple[str, ...]
    title: str
    note: str | None
    payload: dict[str, Any]
    status: str
    created_at: datetime
    done_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return codec.jsonable({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    name: str
    ledger: str | None
    cursor: Cursor | None
    last_full_pull_at: datetime | None
    last_sync_at: datetime | None
    status: str
    last_error: str | None


@dataclass(frozen=True, slots=True)
class DisputeRecord:
    id: int
    connection: str
    invoice_id: str
    until: date | None
    reason: str
    created_at: datetime
    cleared_at: datetime | None


@dataclass(frozen=True, slots=True)
class PauseRecord:
    connection: str
    customer_id: str
    until: date
    reason: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PaymentPlanRecord:
    plan: PaymentPlan
    connection: str
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    connection: str | None
    actor: str
    event: str
    detail: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- streaming views

V = TypeVar("V")
_MISSING: Any = object()


class BatchLookup(Mapping[str, V]):
    """What one plan batch knows, by id (customer or invoice): complete for the ids in `scope`
    (absent = nothing), any other id is loaded on demand and remembered. Values are never None.

    Always truthy, so `mapping or {}` keeps it (its misses would otherwise be lost)."""

    __slots__ = ("_load", "_scope", "_values")

    def __init__(self, values: dict[str, V], scope: set[str], load: Callable[[str], V | None]) -> None:
        self._values = values
        self._scope = scope
        self._load = load

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        value = self._values.get(key)
        if value is not None:
            return value
        if key in self._scope:
            return default
        loaded = self._load(key)
        self._scope.add(key)
        if loaded is None:
            return default
        self._values[key] = loaded
        return loaded

    def __getitem__(self, key: str) -> V:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _MISSING) is not _MISSING

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class PlanBatch:
    """Invoices of whole customers, with what `plan_day` reads about them."""

    invoices: list[Invoice]
    customers: BatchLookup[Customer]
    settlements: BatchLookup[list[Settlement]]
    history: BatchLookup[list[DoneAction]]


class _Streamed(Generic[V]):
    """An iterable that queries afresh each time it is iterated."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[], Iterator[V]]) -> None:
        self._make = make

    def __iter__(self) -> Iterator[V]:
        return self._make()


class LazyRecords(Mapping[str, V]):
    """Records by id from the store on demand, with an LRU cache; iteration streams by pages."""

    def __init__(
        self,
        fetch: Callable[[str], V | None],
        stream: Callable[[], Iterator[V]],
        count: Callable[[], int],
        size: int,
    ) -> None:
        self._fetch = fetch
        self._stream = stream
        self._count = count
        self._size = max(1, size)
        self._cache: OrderedDict[str, V | None] = OrderedDict()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        cache = self._cache
        if key in cache:
            cache.move_to_end(key)
            value = cache[key]
        else:
            value = self._fetch(key)
            cache[key] = value
            if len(cache) > self._size:
                cache.popitem(last=False)
        return default if value is None else value

    def __getitem__(self, key: str) -> V:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value  # type: ignore[no-any-return]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key, _MISSING) is not _MISSING

    def __iter__(self) -> Iterator[str]:
        return (record.id for record in self._stream())  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return self._count()

    def values(self) -> _Streamed[V]:  # type: ignore[override]
        return _Streamed(self._stream)

    def items(self) -> _Streamed[tuple[str, V]]:  # type: ignore[override]
        return _Streamed(lambda: ((record.id, record) for record in self._stream()))  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class LedgerView:
    """A connection's ledger in the LedgerSnapshot's shape (customers, invoices, payments,
    credit_notes mappings), read from the store on demand instead of held in memory."""

    customers: LazyRecords[Customer]
    invoices: LazyRecords[Invoice]
    payments: LazyRecords[Any]
    credit_notes: LazyRecords[Any]


def _history_columns(a: sa.Table) -> tuple[sa.Column[Any], ...]:
    return (
        a.c.key,
        a.c.kind,
        a.c.invoice_ids,
        a.c.step,
        a.c.instalment,
        a.c.charges,
        a.c.planned_for,
        a.c.created_at,
        a.c.status,
    )


def _done_action(row: sa.Row[Any]) -> DoneAction:
    kind = ActionKind(row.kind)
    cancelled = row.status == "superseded" and kind is not ActionKind.SUPERSEDED
    return DoneAction(
        key=row.key,
        kind=kind,
        invoice_ids=tuple(row.invoice_ids),
        step=row.step,
        instalment=row.instalment,
        charges=() if cancelled else codec.decode_charges(row.charges),
        on=row.planned_for or row.created_at.date(),
    )


# ---------------------------------------------------------------- the store


def open_store(url: str, *, create: bool = True) -> Store:
    """Open (and create/upgrade to the latest schema) the state database at `url`.

    `sqlite:///relance.sqlite` (relative to the working directory), `sqlite:////abs/path.sqlite`,
    `sqlite://` (in memory, tests) or `postgresql+psycopg://user@host:5432/db`.
    """
    parsed = parse_url(url)
    engine = create_engine(parsed, create=create)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine)


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self.dialect = engine.dialect.name
        self._insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._upsert_sql: dict[str, str] = {}

    # ------------------------------------------------------------ plumbing

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def path(self) -> Any:
        """The SQLite database file (None on PostgreSQL or in memory)."""
        return sqlite_path(self.engine.url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _write(self) -> AbstractContextManager[sa.Connection]:
        return self._writer.begin()

    def _read(self) -> AbstractContextManager[sa.Connection]:
        return self.engine.connect()

    def _ensure_connection(self, conn: sa.Connection, name: str, ledger: str | None = None) -> None:
        values: dict[str, Any] = {"name": name, "status": "new", "created_at": utcnow()}
        if ledger is not None:
            values["ledger"] = ledger
        conn.execute(
            self._insert(t.connections).values(values).on_conflict_do_nothing(index_elements=["name"])
        )

    # ------------------------------------------------------------ connections and cursors

    def touch_connection(self, name: str, *, ledger: str | None = None, error: str | None = None) -> None:
        """Record the end of a run: last_sync_at now, status ok|error, the error if any."""
        with self._write() as conn:
            self._ensure_connection(conn, name, ledger)
            values: dict[str, Any] = {
                "last_sync_at": utcnow(),
                "status": "error" if error else "ok",
                "last_error": error,
            }
            if ledger is not None:
                values["ledger"] = ledger
            conn.execute(sa.update(t.connections).where(t.connections.c.name == name).values(values))

    def connection(self, name: str) -> ConnectionRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.connections).where(t.connections.c.name == name)).one_or_none()
        return None if row is None else self._connection_record(row)

    def connections(self) -> list[ConnectionRecord]:
        with self._read() as conn:
            rows = conn.execute(sa.select(t.connections).order_by(t.connections.c.name)).all()
        return [self._connection_record(row) for row in rows]

    @staticmethod
    def _connection_record(row: sa.Row[Any]) -> ConnectionRecord:
        cursor = None
        if row.cursor is not None and row.cursor_taken_at is not None:
            cursor = Cursor(row.cursor["ledger"], row.cursor["data"], row.cursor_taken_at)
        return ConnectionRecord(
            row.name, row.ledger, cursor, row.last_full_pull_at, row.last_sync_at, row.status, row.last_error
        )

    def get_cursor(self, connection: str) -> Cursor | None:
        record = self.connection(connection)
        return record.cursor if record else None

    def set_cursor(self, connection: str, cursor: Cursor | None, *, full: bool = False) -> None:
        """Save where the pull stopped (None forgets it: the next pull is full)."""
        with self._write() as conn:
            self._ensure_connection(conn, connection, cursor.ledger if cursor else None)
            values: dict[str, Any] = {
                "cursor": {"ledger": cursor.ledger, "data": codec.jsonable(cursor.data)} if cursor else None,
                "cursor_taken_at": cursor.taken_at if cursor else None,
            }
            if full and cursor is not None:
                values["last_full_pull_at"] = cursor.taken_at
            conn.execute(sa.update(t.connections).where(t.connections.c.name == connection).values(values))

    # ------------------------------------------------------------ snapshots

    def upsert_records(self, connection: str, page: Page) -> int:
        """Store one page: insert-or-update its records (bulk), apply its deletions. Returns rows written.

        Deleted invoices become void and deleted customers inactive (their history stays readable);
        deleted payments and credit notes are removed (they must stop settling invoices)."""
        table = t.SNAPSHOT_TABLES.get(page.entity)
        if table is None:
            raise ValueError(f"unknown entity {page.entity!r}")
        now = utcnow()
        rows = []
        for record in page.records:
            row = codec.row_for(page.entity, record)
            row["connection"] = connection
            row["stored_at"] = now
            rows.append(row)
        with self._write() as conn:
            self._ensure_connection(conn, connection)
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
            marks = [f":{name}" if self.dialect == "sqlite" else f"%({name})s" for name in columns]
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
            if (convert := _driver_converter(column, self.dialect)) is not _identity
        ]
        for row in rows:
            for name, convert in converters:
                row[name] = convert(row[name])
        conn.exec_driver_sql(sql, rows)  # type: ignore[arg-type]

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
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
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
                            "status": "void",
                            "is_open": False,
                            "stored_at": now,
                        }
                    )
                else:
                    payload["active"] = False
                    updates.append({"b_id": row.id, "payload": payload, "active": False, "stored_at": now})
            if updates:
                values = {k: sa.bindparam(k) for k in updates[0] if k != "b_id"}
                conn.execute(
                    sa.update(table).where(in_connection, table.c.id == sa.bindparam("b_id")).values(values),
                    updates,
                )

    def snapshot(self, connection: str) -> LedgerSnapshot:
        """Everything stored for one connection, as the planner's plain data."""
        parts: dict[str, dict[str, Any]] = {}
        with self._read() as conn:
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
        mark = "?" if self.dialect == "sqlite" else "%s"
        result = conn.exec_driver_sql(
            f"SELECT id, payload FROM {table.name} WHERE connection = {mark}", (connection,)
        )
        loads = json.loads
        for row_id, payload in result:
            yield row_id, loads(payload) if isinstance(payload, str | bytes) else payload

    def iter_invoices(
        self, connection: str, *, open_only: bool = False, batch: int = 2000
    ) -> Iterator[Invoice]:
        """Stream invoices (server-side cursor on PostgreSQL) in due-date order."""
        table = t.invoices
        query = sa.select(table.c.payload).where(table.c.connection == connection)
        if open_only:
            query = query.where(table.c.is_open.is_(True))
        query = query.order_by(table.c.due_date, table.c.id)
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(query)
            for row in result:
                yield codec.decode_invoice(row.payload)

    def invoice(self, connection: str, invoice_id: str) -> Invoice | None:
        with self._read() as conn:
            payload = conn.execute(
                sa.select(t.invoices.c.payload).where(
                    t.invoices.c.connection == connection, t.invoices.c.id == invoice_id
                )
            ).scalar_one_or_none()
        return None if payload is None else codec.decode_invoice(payload)

    def find_invoices(self, id_or_number: str, *, connection: str | None = None) -> list[tuple[str, Invoice]]:
        """Invoices whose ledger id or number is `id_or_number`, as (connection, invoice)."""
        table = t.invoices
        query = sa.select(table.c.connection, table.c.payload).where(
            sa.or_(table.c.id == id_or_number, table.c.number == id_or_number)
        )
        if connection is not None:
            query = query.where(table.c.connection == connection)
        with self._read() as conn:
            rows = conn.execute(query.order_by(table.c.connection, table.c.id)).all()
        return [(row.connection, codec.decode_invoice(row.payload)) for row in rows]

    def customer(self, connection: str, customer_id: str) -> Customer | None:
        with self._read() as conn:
            payload = conn.execute(
                sa.select(t.customers.c.payload).where(
                    t.customers.c.connection == connection, t.customers.c.id == customer_id
                )
            ).scalar_one_or_none()
        return None if payload is None else codec.decode_customer(payload)

    def counts(self, connection: str) -> dict[str, int]:
        """Rows stored per entity for one connection."""
        with self._read() as conn:
            return {
                entity: conn.execute(
                    sa.select(sa.func.count()).select_from(table).where(table.c.connection == connection)
                ).scalar_one()
                for entity, table in t.SNAPSHOT_TABLES.items()
            }

    # ------------------------------------------------------------ streaming reads (bounded memory)
    #
    # The planner and the applier never need the whole ledger at once: `iter_plan_batches` pages
    # through the invoices the planner can act on, whole customers at a time, each page with the
    # customers, settlements and history of its own invoices; `ledger_view` looks records up by id
    # on demand. Pages are keyset queries (no cursor left open between pages), so a page's consumer
    # may query the store freely, on every backend and pool.

    def iter_plan_batches(
        self,
        connection: str,
        *,
        paid_since: date | None,
        include_drafts: bool,
        batch: int = 5000,
    ) -> Iterator[PlanBatch]:
        """The invoices `plan_day` can act on, ordered by customer, in batches of about `batch`
        invoices that never split a customer, each with its customers, settlements and history.

        Streamed: open invoices (whatever their balance); paid ones issued on or after `paid_since`
        (payment-history suggestions; None: suggestions are off) or with anything in the outbox
        (thanks); drafts when the exposure counts them. Paid invoices older than that, voids and
        drafts otherwise have no effect on a plan. The lookups of a batch answer for ids outside
        it too (queried on demand): the planner's few post-pass lookups stay exact."""
        inv = t.invoices
        links = t.action_invoices
        paid_clauses: list[sa.ColumnElement[bool]] = [
            sa.exists().where(links.c.connection == inv.c.connection, links.c.invoice_id == inv.c.id)
        ]
        if paid_since is not None:
            paid_clauses.append(inv.c.payload["issue_date"].as_string() >= paid_since.isoformat())
        relevant = [inv.c.status == InvoiceStatus.OPEN.value]
        relevant.append(sa.and_(inv.c.status == InvoiceStatus.PAID.value, sa.or_(*paid_clauses)))
        if include_drafts:
            relevant.append(inv.c.status == InvoiceStatus.DRAFT.value)
        base = sa.select(inv.c.customer_id, inv.c.id, inv.c.payload).where(
            inv.c.connection == connection, sa.or_(*relevant)
        )
        strays = self._cross_customer_allocations(connection)
        after: str | None = None
        while True:
            page = base if after is None else base.where(inv.c.customer_id > after)
            with self._read() as conn:
                rows = conn.execute(page.order_by(inv.c.customer_id, inv.c.id).limit(batch)).all()
                if len(rows) == batch:  # finish the last customer: a batch never splits one
                    last_customer, last_id = rows[-1].customer_id, rows[-1].id
                    rows.extend(
                        conn.execute(
                            base.where(inv.c.customer_id == last_customer, inv.c.id > last_id).order_by(
                                inv.c.id
                            )
                        ).all()
                    )
            if not rows:
                return
            invoices = [codec.decode_invoice(row.payload) for row in rows]
            yield self._plan_batch(connection, invoices, strays)
            if len(rows) < batch:
                return
            after = rows[-1].customer_id

    def _plan_batch(
        self,
        connection: str,
        invoices: list[Invoice],
        strays: Mapping[str, list[tuple[int, str, Any, Allocation]]],
    ) -> PlanBatch:
        owner = {invoice.id: invoice.customer_id for invoice in invoices}
        customer_ids = list(dict.fromkeys(owner.values()))
        with self._read() as conn:
            customers = self._customers_by_id(conn, connection, customer_ids)
            history = self._history_for_ids(conn, connection, list(owner))
            payments = self._records_of_customers(conn, t.payments, "payment", connection, customer_ids)
            notes = self._records_of_customers(conn, t.credit_notes, "credit_note", connection, customer_ids)
        # Same order as settlements_by_invoice before its sort (payments, then credit notes): each
        # (record, invoice) pair comes from exactly one side, the record's customer or the strays.
        found: dict[str, list[Settlement]] = defaultdict(list)
        for order, records in ((0, payments), (1, notes)):
            source = "payment" if order == 0 else "credit_note"
            for record in records:
                for allocation in record.allocations:
                    if owner.get(allocation.invoice_id) == record.customer_id:
                        found[allocation.invoice_id].append(
                            Settlement(record.date, allocation.amount, source, record.id)
                        )
            for invoice_id in owner:
                for stray_order, stray_source, stray, allocation in strays.get(invoice_id, ()):
                    if stray_order == order and owner[invoice_id] != stray.customer_id:
                        found[invoice_id].append(
                            Settlement(stray.date, allocation.amount, stray_source, stray.id)
                        )
        for items in found.values():
            items.sort(key=lambda s: (s.date, s.source_id))
        return PlanBatch(
            invoices=invoices,
            customers=BatchLookup(customers, set(customer_ids), lambda i: self.customer(connection, i)),
            settlements=BatchLookup(
                dict(found), set(owner), lambda i: self.settlements_for(connection, [i]).get(i)
            ),
            history=BatchLookup(history, set(owner), lambda i: self.history_for(connection, [i]).get(i)),
        )

    def _cross_customer_allocations(
        self, connection: str
    ) -> dict[str, list[tuple[int, str, Any, Allocation]]]:
        """Payments and credit notes allocated to an invoice of another customer (a parent paying for
        a sub-customer): invoice id -> (0 payment | 1 credit note, source, record, allocation). Found
        in SQL (allocations are JSON); usually none."""
        result: dict[str, list[tuple[int, str, Any, Allocation]]] = defaultdict(list)
        with self._read() as conn:
            for order, (entity, table) in enumerate(
                (("payment", t.payments), ("credit_note", t.credit_notes))
            ):
                decode = codec.DECODERS[entity]
                sql = self._cross_customer_sql(table.name)
                for (payload,) in conn.exec_driver_sql(sql, (connection,)):
                    record = decode(json.loads(payload) if isinstance(payload, str | bytes) else payload)
                    for allocation in record.allocations:
                        result[allocation.invoice_id].append((order, entity, record, allocation))
        return dict(result)

    def _cross_customer_sql(self, table: str) -> str:
        if self.dialect == "sqlite":
            # CROSS JOIN fixes SQLite's join order: allocations first, then each invoice by its key
            # (left free, it scans the invoices for every payment).
            return (
                f"SELECT r.payload FROM {table} AS r WHERE r.connection = ? AND EXISTS ("
                "SELECT 1 FROM json_each(r.payload, '$.allocations') AS a CROSS JOIN invoices AS i "
                "ON i.connection = r.connection AND i.id = json_extract(a.value, '$[0]') "
                "WHERE i.customer_id <> r.customer_id)"
            )
        return (
            f"SELECT r.payload FROM {table} AS r WHERE r.connection = %s AND EXISTS ("
            "SELECT 1 FROM json_array_elements(r.payload::json -> 'allocations') AS a(value) "
            "JOIN invoices AS i ON i.connection = r.connection AND i.id = (a.value ->> 0) "
            "WHERE i.customer_id <> r.customer_id)"
        )

    def _records_of_customers(
        self, conn: sa.Connection, table: sa.Table, entity: str, connection: str, customer_ids: Sequence[str]
    ) -> list[Any]:
        decode = codec.DECODERS[entity]
        records = []
        for start in range(0, len(customer_ids), _IN_CHUNK):
            chunk = list(customer_ids[start : start + _IN_CHUNK])
            query = sa.select(table.c.payload).where(
                table.c.connection == connection, table.c.customer_id.in_(chunk)
            )
            records.extend(decode(payload) for payload in conn.execute(query).scalars())
        return records

    def _customers_by_id(
        self, conn: sa.Connection, connection: str, ids: Sequence[str]
    ) -> dict[str, Customer]:
        c = t.customers
        result: dict[str, Customer] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = list(ids[start : start + _IN_CHUNK])
            query = sa.select(c.c.id, c.c.payload).where(c.c.connection == connection, c.c.id.in_(chunk))
            for row_id, payload in conn.execute(query):
                result[row_id] = codec.decode_customer(payload)
        return result

    def _history_for_ids(
        self, conn: sa.Connection, connection: str, invoice_ids: Sequence[str]
    ) -> dict[str, list[DoneAction]]:
        a, links = t.actions, t.action_invoices
        result: dict[str, list[DoneAction]] = defaultdict(list)
        shared: dict[str, DoneAction] = {}  # one object per action, as in `history`
        for start in range(0, len(invoice_ids), _IN_CHUNK):
            chunk = list(invoice_ids[start : start + _IN_CHUNK])
            query = (
                sa.select(links.c.invoice_id, *_history_columns(a))
                .select_from(links.join(a, a.c.key == links.c.key))
                .where(
                    links.c.connection == connection,
                    links.c.invoice_id.in_(chunk),
                    a.c.connection == connection,
                    a.c.status.in_(HISTORY_STATUSES),
                )
                .order_by(a.c.created_at, a.c.key)
            )
            for row in conn.execute(query):
                done = shared.get(row.key)
                if done is None:
                    done = shared[row.key] = _done_action(row)
                result[row.invoice_id].append(done)
        return dict(result)

    def invoice_customers(self, connection: str, invoice_ids: Sequence[str]) -> dict[str, str]:
        """Invoice id -> its customer id, for the ids stored."""
        inv = t.invoices
        ids = list(dict.fromkeys(invoice_ids))
        result: dict[str, str] = {}
        with self._read() as conn:
            for start in range(0, len(ids), _IN_CHUNK):
                query = sa.select(inv.c.id, inv.c.customer_id).where(
                    inv.c.connection == connection, inv.c.id.in_(ids[start : start + _IN_CHUNK])
                )
                result.update({row.id: row.customer_id for row in conn.execute(query)})
        return result

    def history_for(self, connection: str, invoice_ids: Sequence[str]) -> dict[str, list[DoneAction]]:
        """`history` restricted to some invoices (same lists, same order)."""
        with self._read() as conn:
            return self._history_for_ids(conn, connection, list(dict.fromkeys(invoice_ids)))

    def customers_by_id(self, connection: str, ids: Sequence[str]) -> dict[str, Customer]:
        with self._read() as conn:
            return self._customers_by_id(conn, connection, list(dict.fromkeys(ids)))

    def settlements_for(self, connection: str, invoice_ids: Collection[str]) -> dict[str, list[Settlement]]:
        """`settlements_by_invoice` restricted to some invoices, found through the allocations in SQL
        (a scan of payments and credit notes: for the odd lookup, not for a loop)."""
        wanted = set(invoice_ids)
        found: dict[str, list[Settlement]] = defaultdict(list)
        with self._read() as conn:
            for entity, table in (("payment", t.payments), ("credit_note", t.credit_notes)):
                decode = codec.DECODERS[entity]
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
        if self.dialect == "sqlite":
            marks = ", ".join("?" for _ in invoice_ids)
            sql = (
                f"SELECT r.payload FROM {table} AS r WHERE r.connection = ? AND EXISTS (SELECT 1 FROM "
                "json_each(r.payload, '$.allocations') AS a "
                f"WHERE json_extract(a.value, '$[0]') IN ({marks}))"
            )
        else:
            marks = ", ".join("%s" for _ in invoice_ids)
            sql = (
                f"SELECT r.payload FROM {table} AS r WHERE r.connection = %s AND EXISTS (SELECT 1 FROM "
                f"json_array_elements(r.payload::json -> 'allocations') AS a(value) "
                f"WHERE (a.value ->> 0) IN ({marks}))"
            )
        for (payload,) in conn.exec_driver_sql(sql, (connection, *invoice_ids)):
            yield json.loads(payload) if isinstance(payload, str | bytes) else payload

    def ledger_view(self, connection: str, *, cache_size: int = 4096) -> LedgerView:
        """The snapshot's shape without the snapshot: records by id on demand (an LRU of
        `cache_size` per entity), `values()` streamed page by page."""
        return LedgerView(
            customers=LazyRecords(
                lambda i: self.customer(connection, i),
                lambda: self.iter_records(connection, "customer"),
                lambda: self.counts(connection)["customer"],
                cache_size,
            ),
            invoices=LazyRecords(
                lambda i: self.invoice(connection, i),
                lambda: self.iter_records(connection, "invoice"),
                lambda: self.counts(connection)["invoice"],
                cache_size,
            ),
            payments=LazyRecords(
                lambda i: self._record_by_id(connection, "payment", i),
                lambda: self.iter_records(connection, "payment"),
                lambda: self.counts(connection)["payment"],
                cache_size,
            ),
            credit_notes=LazyRecords(
                lambda i: self._record_by_id(connection, "credit_note", i),
                lambda: self.iter_records(connection, "credit_note"),
                lambda: self.counts(connection)["credit_note"],
                cache_size,
            ),
        )

    def _record_by_id(self, connection: str, entity: str, record_id: str) -> Any:
        table = t.SNAPSHOT_TABLES[entity]
        with self._read() as conn:
            payload = conn.execute(
                sa.select(table.c.payload).where(table.c.connection == connection, table.c.id == record_id)
            ).scalar_one_or_none()
        return None if payload is None else codec.DECODERS[entity](payload)

    def iter_records(self, connection: str, entity: str, *, page: int = 2000) -> Iterator[Any]:
        """Every record of one entity, by id, one keyset page at a time (nothing held open between
        pages, so the caller may query the store while iterating)."""
        table = t.SNAPSHOT_TABLES[entity]
        decode = codec.DECODERS[entity]
        query = sa.select(table.c.id, table.c.payload).where(table.c.connection == connection)
        after: str | None = None
        while True:
            selected = query if after is None else query.where(table.c.id > after)
            with self._read() as conn:
                rows = conn.execute(selected.order_by(table.c.id).limit(page)).all()
            for row in rows:
                yield decode(row.payload)
            if len(rows) < page:
                return
            after = rows[-1].id

    # ------------------------------------------------------------ the outbox: recording

    @staticmethod
    def _action_row(connection: str, action: PlannedAction, status: str, now: datetime) -> dict[str, Any]:
        return {
            "key": action.key,
            "connection": connection,
            "kind": action.kind.value,
            "customer_id": action.customer_id,
            "currency": action.currency,
            "invoice_ids": list(action.invoice_ids),
            "step": action.step,
            "channel": action.channel,
            "template": action.template,
            "instalment": action.instalment,
            "charges": codec.encode_charges(action.charges),
            "reason": action.reason,
            "status": status,
            "attempts": 0,
            "ledger_ids": [],
            "error": None,
            "planned_for": action.due_on,
            "created_at": now,
            "updated_at": now,
            "started_at": None,
            "finished_at": now if status == "superseded" else None,
            "details": codec.jsonable(action.details),
        }

    def _record(self, connection: str, actions: Sequence[PlannedAction], status: str) -> list[str]:
        now = utcnow()
        inserted: list[str] = []
        with self._write() as conn:
            self._ensure_connection(conn, connection)
            for start in range(0, len(actions), _CHUNK):
                chunk = actions[start : start + _CHUNK]
                rows = [self._action_row(connection, action, status, now) for action in chunk]
                statement = (
                    self._insert(t.actions)
                    .on_conflict_do_nothing(index_elements=["key"])
                    .returning(t.actions.c.key)
                )
                new = set(conn.execute(statement, rows).scalars().all())
                links = [
                    {"key": action.key, "invoice_id": invoice_id, "connection": connection}
                    for action in chunk
                    if action.key in new
                    for invoice_id in dict.fromkeys(action.invoice_ids)
                ]
                if links:
                    conn.execute(
                        self._insert(t.action_invoices).on_conflict_do_nothing(
                            index_elements=["key", "invoice_id"]
                        ),
                        links,
                    )
                inserted.extend(action.key for action in chunk if action.key in new)
        return inserted

    def record_planned(self, connection: str, actions: Sequence[PlannedAction]) -> list[str]:
        """Insert actions not yet in the outbox as `planned`; returns the keys newly inserted, in order.
        Keys already present (in any status) are left untouched."""
        return self._record(connection, _unique(actions), "planned")

    def record_superseded(self, connection: str, actions: Sequence[PlannedAction]) -> list[str]:
        """Record skipped steps (kind SUPERSEDED) as `superseded`: remembered, never applied."""
        return self._record(connection, _unique(actions), "superseded")

    def update_planned(self, actions: Sequence[PlannedAction]) -> int:
        """Refresh the intent (reason, charges, details, ...) of actions still planned or failed from a
        fresh plan of the same keys. Actions in any other status are never touched. Returns rows updated."""
        if not actions:
            return 0
        now = utcnow()
        rows = [
            {
                "b_key": a.key,
                "reason": a.reason,
                "charges": codec.encode_charges(a.charges),
                "details": codec.jsonable(a.details),
                "step": a.step,
                "channel": a.channel,
                "template": a.template,
                "instalment": a.instalment,
                "planned_for": a.due_on,
                "currency": a.currency,
                "updated_at": now,
            }
            for a in _unique(actions)
        ]
        values = {name: sa.bindparam(name) for name in rows[0] if name != "b_key"}
        statement = (
            sa.update(t.actions)
            .where(
                t.actions.c.key == sa.bindparam("b_key"),
                sa.or_(*(t.actions.c.status == status for status in CLAIMABLE)),
            )  # no IN: executemany
            .values(values)
        )
        with self._write() as conn:
            result = conn.execute(statement, rows)
        return max(result.rowcount, 0)

    # ------------------------------------------------------------ the outbox: transitions

    def _transition(
        self,
        key: str,
        from_statuses: Collection[str],
        values: Mapping[str, Any],
        *,
        merge_details: Mapping[str, Any] | None = None,
    ) -> bool:
        now = utcnow()
        with self._write() as conn:
            if merge_details:
                current = conn.execute(
                    sa.select(t.actions.c.details).where(t.actions.c.key == key).with_for_update()
                ).scalar_one_or_none()
                if current is None:
                    raise StoreError(f"state: no action with key {key!r}")
                values = {**values, "details": {**current, **codec.jsonable(dict(merge_details))}}
            result = conn.execute(
                sa.update(t.actions)
                .where(t.actions.c.key == key, t.actions.c.status.in_(tuple(from_statuses)))
                .values({**values, "updated_at": now})
            )
            if result.rowcount == 1:
                return True
            exists = conn.execute(sa.select(t.actions.c.key).where(t.actions.c.key == key)).first()
        if exists is None:
            raise StoreError(
                f"state: no action with key {key!r}", hint="check the key with `relance history`"
            )
        return False

    def claim(self, key: str) -> bool:
        """planned|failed -> in_flight (attempts + 1, started_at now), atomically. False when the action
        is in any other status (someone else claimed it, or it is settled)."""
        return self._transition(
            key,
            CLAIMABLE,
            {
                "status": "in_flight",
                "attempts": t.actions.c.attempts + 1,
                "started_at": utcnow(),
                "finished_at": None,
            },
        )

    def mark_done(
        self, key: str, ledger_ids: Sequence[str] = (), detail: Mapping[str, Any] | None = None
    ) -> bool:
        """in_flight|uncertain|planned|failed -> done, with the ledger ids and the outcome detail merged
        into `details`. False if it was already done or superseded."""
        return self._transition(
            key,
            ("in_flight", "uncertain", "planned", "failed"),
            {"status": "done", "ledger_ids": list(ledger_ids), "error": None, "finished_at": utcnow()},
            merge_details=detail,
        )

    def mark_failed(self, key: str, error: str) -> bool:
        """in_flight -> failed: the ledger refused, nothing happened; may be claimed again."""
        return self._transition(
            key, ("in_flight",), {"status": "failed", "error": error, "finished_at": utcnow()}
        )

    def mark_uncertain(self, key: str, error: str) -> bool:
        """in_flight -> uncertain: may or may not have happened; only a person (resolve) moves it on."""
        return self._transition(
            key, ("in_flight",), {"status": "uncertain", "error": error, "finished_at": utcnow()}
        )

    def mark_superseded(self, key: str, reason: str) -> bool:
        """planned|failed -> superseded (no longer due). Never touches in-flight or settled actions."""
        return self._transition(
            key, CLAIMABLE, {"status": "superseded", "error": reason, "finished_at": utcnow()}
        )

    def release(self, key: str, reason: str) -> bool:
        """in_flight -> planned when the effect provably did not happen (the attempt is not counted)."""
        return self._transition(
            key,
            ("in_flight",),
            {
                "status": "planned",
                "error": reason,
                "started_at": None,
                "attempts": sa.case((t.actions.c.attempts > 0, t.actions.c.attempts - 1), else_=0),
            },
        )

    def resolve_uncertain(self, key: str, *, happened: bool, actor: str = "operator", note: str = "") -> bool:
        """An operator settles an uncertain action: it happened (-> done) or it did not (-> planned)."""
        if happened:
            changed = self._transition(
                key,
                ("uncertain",),
                {"status": "done", "error": None, "finished_at": utcnow()},
                merge_details={"resolved": "happened", "resolved_note": note},
            )
        else:
            changed = self._transition(
                key,
                ("uncertain",),
                {"status": "planned", "error": None, "started_at": None, "finished_at": None},
                merge_details={"resolved": "not_happened", "resolved_note": note},
            )
        if changed:
            record = self.action(key)
            self.audit(
                "action_resolved",
                connection=record.connection if record else None,
                actor=actor,
                detail={"key": key, "happened": happened, "note": note},
            )
        return changed

    # ------------------------------------------------------------ the outbox: reading

    def action(self, key: str) -> ActionRecord | None:
        with self._read() as conn:
            row = conn.execute(sa.select(t.actions).where(t.actions.c.key == key)).one_or_none()
        return None if row is None else _action_record(row)

    def actions(
        self,
        connection: str | None = None,
        status: str | Collection[str] | None = None,
        kind: str | Collection[str] | None = None,
        invoice_id: str | None = None,
    ) -> list[ActionRecord]:
        """Outbox rows, oldest first. status/kind: one value or several."""
        query = sa.select(t.actions)
        if connection is not None:
            query = query.where(t.actions.c.connection == connection)
        if status is not None:
            query = query.where(t.actions.c.status.in_([status] if isinstance(status, str) else list(status)))
        if kind is not None:
            query = query.where(t.actions.c.kind.in_([kind] if isinstance(kind, str) else list(kind)))
        if invoice_id is not None:
            links = sa.select(t.action_invoices.c.key).where(t.action_invoices.c.invoice_id == invoice_id)
            if connection is not None:
                links = links.where(t.action_invoices.c.connection == connection)
            query = query.where(t.actions.c.key.in_(links))
        query = query.order_by(t.actions.c.created_at, t.actions.c.key)
        with self._read() as conn:
            return [_action_record(row) for row in conn.execute(query)]

    def in_flight(self, connection: str) -> list[ActionRecord]:
        return self.actions(connection, status="in_flight")

    def status_counts(self, connection: str | None = None) -> dict[str, int]:
        query = sa.select(t.actions.c.status, sa.func.count()).group_by(t.actions.c.status)
        if connection is not None:
            query = query.where(t.actions.c.connection == connection)
        with self._read() as conn:
            return {status: count for status, count in conn.execute(query)}

    def history(self, connection: str) -> dict[str, list[DoneAction]]:
        """What the planner must not repeat, by invoice id (done, superseded, in_flight, uncertain)."""
        a = t.actions
        query = sa.select(*_history_columns(a)).where(
            a.c.connection == connection, a.c.status.in_(HISTORY_STATUSES)
        )
        result: dict[str, list[DoneAction]] = defaultdict(list)
        with self._read() as conn:
            for row in conn.execute(query.order_by(a.c.created_at, a.c.key)):
                done = _done_action(row)
                for invoice_id in dict.fromkeys(row.invoice_ids):
                    result[invoice_id].append(done)
        return dict(result)

    def breaches(self, connection: str) -> list[dict[str, Any]]:
        """Credit-limit breaches recorded (CREDIT_ALERT or call TASK actions), newest first."""
        records = [
            r
            for r in self.actions(connection, kind=(ActionKind.CREDIT_ALERT.value, ActionKind.TASK.value))
            if r.step == "credit-limit" and r.status != "superseded"
        ]
        return [record.as_dict() for record in reversed(records)]

    # ------------------------------------------------------------ tasks

    def add_task(self, connection: str, entry: Any, *, note: str | None = None) -> bool:
        """Record a task (call, letter, agency hand-over) once per action key. `entry` is a dataclass or
        mapping with at least `key` (or `action_key`) and `kind`; the whole entry is kept as payload.
        Returns False when the task already exists (a repeated effect after a crash)."""
        data = _as_mapping(entry)
        key = data.get("key") or data.get("action_key")
        if not key:
            raise ValueError("a task entry needs the action key (`key` or `action_key`)")
        row = {
            "key": str(key),
            "connection": connection,
            "kind": str(data.get("kind") or "task"),
            "customer_id": data.get("customer_id"),
            "invoice_ids": list(data.get("invoice_ids") or data.get("invoices") or ()),
            "title": str(data.get("title") or data.get("summary") or data.get("subject") or ""),
            "note": note,
            "payload": codec.jsonable(data),
            "status": "open",
            "created_at": utcnow(),
        }
        with self._write() as conn:
            inserted = conn.execute(
                self._insert(t.tasks)
                .values(row)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(t.tasks.c.id)
            ).first()
        return inserted is not None

    def tasks(self, connection: str | None = None, status: str | None = None) -> list[TaskRecord]:
        query = sa.select(t.tasks)
        if connection is not None:
            query = query.where(t.tasks.c.connection == connection)
        if status is not None:
            query = query.where(t.tasks.c.status == status)
        with self._read() as conn:
            rows = conn.execute(query.order_by(t.tasks.c.created_at, t.tasks.c.id)).all()
        return [
            TaskRecord(
                row.id,
                row.key,
                row.connection,
                row.kind,
                row.customer_id,
                tuple(row.invoice_ids),
                row.title,
                row.note,
                row.payload,
                row.status,
                row.created_at,
                row.done_at,
            )
            for row in rows
        ]

    def complete_task(self, task: int | str, *, actor: str = "operator") -> bool:
        """Close an open task, by id or by action key."""
        column = t.tasks.c.id if isinstance(task, int) else t.tasks.c.key
        with self._write() as conn:
            result = conn.execute(
                sa.update(t.tasks)
                .where(column == task, t.tasks.c.status == "open")
                .values(status="done", done_at=utcnow())
            )
        if result.rowcount == 1:
            self.audit("task_done", actor=actor, detail={"task": task})
        return result.rowcount == 1

    # ------------------------------------------------------------ disputes

    def set_dispute(
        self,
        connection: str,
        invoice_id: str,
        *,
        until: date | None = None,
        reason: str = "",
        actor: str = "operator",
    ) -> None:
        """Open (or change) the dispute on an invoice; `until` None = until cleared."""
        now = utcnow()
        d = t.disputes
        with self._write() as conn:
            active = (
                conn.execute(
                    sa.select(d.c.id).where(
                        d.c.connection == connection, d.c.invoice_id == invoice_id, d.c.cleared_at.is_(None)
                    )
                )
                .scalars()
                .all()
            )
            if active:
                conn.execute(sa.update(d).where(d.c.id.in_(active)).values(until=until, reason=reason))
            else:
                conn.execute(
                    sa.insert(d).values(
                        connection=connection,
                        invoice_id=invoice_id,
                        until=until,
                        reason=reason,
                        created_at=now,
                    )
                )
        self.audit(
            "dispute_set",
            connection=connection,
            actor=actor,
            detail={"invoice_id": invoice_id, "until": until, "reason": reason},
        )

    def clear_dispute(self, connection: str, invoice_id: str, *, actor: str = "operator") -> bool:
        d = t.disputes
        with self._write() as conn:
            result = conn.execute(
                sa.update(d)
                .where(d.c.connection == connection, d.c.invoice_id == invoice_id, d.c.cleared_at.is_(None))
                .values(cleared_at=utcnow())
            )
        if result.rowcount:
            self.audit(
                "dispute_cleared", connection=connection, actor=actor, detail={"invoice_id": invoice_id}
            )
        return result.rowcount > 0

    def disputes(self, connection: str, today: date) -> dict[str, date | None]:
        """Invoices disputed on `today` (end date inclusive) -> end date (None: open-ended)."""
        d = t.disputes
        query = sa.select(d.c.invoice_id, d.c.until).where(
            d.c.connection == connection,
            d.c.cleared_at.is_(None),
            sa.or_(d.c.until.is_(None), d.c.until >= today),
        )
        result: dict[str, date | None] = {}
        with self._read() as conn:
            for invoice_id, until in conn.execute(query):
                previous = result.get(invoice_id, until)
                result[invoice_id] = None if until is None or previous is None else max(until, previous)
        return result

    def dispute_records(self, connection: str, *, include_cleared: bool = False) -> list[DisputeRecord]:
        d = t.disputes
        query = sa.select(d).where(d.c.connection == connection)
        if not include_cleared:
            query = query.where(d.c.cleared_at.is_(None))
        with self._read() as conn:
            rows = conn.execute(query.order_by(d.c.created_at, d.c.id)).all()
        return [
            DisputeRecord(r.id, r.connection, r.invoice_id, r.until, r.reason, r.created_at, r.cleared_at)
            for r in rows
        ]

    # ------------------------------------------------------------ pauses

    def set_pause(
        self, connection: str, customer_id: str, until: date, *, reason: str = "", actor: str = "operator"
    ) -> None:
        """Pause chasing a customer up to and including `until` (replaces an earlier pause)."""
        statement = self._insert(t.pauses).values(
            connection=connection, customer_id=customer_id, until=until, reason=reason, created_at=utcnow()
        )
        statement = statement.on_conflict_do_update(
            index_elements=["connection", "customer_id"],
            set_={
                "until": statement.excluded.until,
                "reason": statement.excluded.reason,
                "created_at": statement.excluded.created_at,
            },
        )
        with self._write() as conn:
            conn.execute(statement)
        self.audit(
            "pause_set",
            connection=connection,
            actor=actor,
            detail={"customer_id": customer_id, "until": until, "reason": reason},
        )

    def clear_pause(self, connection: str, customer_id: str, *, actor: str = "operator") -> bool:
        p = t.pauses
        with self._write() as conn:
            result = conn.execute(
                sa.delete(p).where(p.c.connection == connection, p.c.customer_id == customer_id)
            )
        if result.rowcount:
            self.audit(
                "pause_cleared", connection=connection, actor=actor, detail={"customer_id": customer_id}
            )
        return result.rowcount > 0

    def pauses(self, connection: str, today: date) -> dict[str, date]:
        """Customers paused on `today` (inclusive) -> last paused day."""
        p = t.pauses
        query = sa.select(p.c.customer_id, p.c.until).where(p.c.connection == connection, p.c.until >= today)
        with self._read() as conn:
            return dict(conn.execute(query).all())

    def pause_records(self, connection: str) -> list[PauseRecord]:
        p = t.pauses
        with self._read() as conn:
            rows = conn.execute(
                sa.select(p).where(p.c.connection == connection).order_by(p.c.customer_id)
            ).all()
        return [PauseRecord(r.connection, r.customer_id, r.until, r.reason, r.created_at) for r in rows]

    # ------------------------------------------------------------ payment plans

    def add_payment_plan(self, connection: str, plan: PaymentPlan, *, actor: str = "operator") -> str:
        """Store a new active plan (its id must be new). Returns the plan id."""
        now = utcnow()
        row = {
            "id": plan.id,
            "connection": connection,
            "customer_id": plan.customer_id,
            "invoice_ids": list(plan.invoice_ids),
            "instalments": [
                {"due_date": i.due_date.isoformat(), "amount": str(i.amount)} for i in plan.instalments
            ],
            "acceleration_days": plan.acceleration_days,
            "status": "active",
            "created_at": now,
            "updated_at": now,
        }
        with self._write() as conn:
            exists = conn.execute(
                sa.select(t.payment_plans.c.id).where(t.payment_plans.c.id == plan.id)
            ).first()
            if exists is not None:
                raise RelanceError(f"payment plan {plan.id!r} already exists", hint="choose another plan id")
            conn.execute(sa.insert(t.payment_plans).values(row))
        self.audit(
            "payment_plan_added",
            connection=connection,
            actor=actor,
            detail={
                "plan": plan.id,
                "customer_id": plan.customer_id,
                "invoice_ids": list(plan.invoice_ids),
                "total": str(plan.total),
            },
        )
        return plan.id

    def set_payment_plan_status(self, plan_id: str, status: str, *, actor: str = "relance") -> bool:
        if status not in t.PLAN_STATUSES:
            raise ValueError(f"payment plan status must be one of {', '.join(t.PLAN_STATUSES)}")
        pp = t.payment_plans
        with self._write() as conn:
            connection = conn.execute(
                sa.select(pp.c.connection).where(pp.c.id == plan_id)
            ).scalar_one_or_none()
            if connection is None:
                raise RelanceError(
                    f"no payment plan {plan_id!r}", hint="list them with `relance payment-plan --list`"
                )
            result = conn.execute(
                sa.update(pp)
                .where(pp.c.id == plan_id, pp.c.status != status)
                .values(status=status, updated_at=utcnow())
            )
        if result.rowcount:
            self.audit(
                "payment_plan_status",
                connection=connection,
                actor=actor,
                detail={"plan": plan_id, "status": status},
            )
        return result.rowcount > 0

    def payment_plans(self, connection: str) -> dict[str, PaymentPlan]:
        """Active plans by id: what the planner takes."""
        return {r.plan.id: r.plan for r in self.payment_plan_records(connection, status="active")}

    def payment_plan_records(self, connection: str, *, status: str | None = None) -> list[PaymentPlanRecord]:
        pp = t.payment_plans
        query = sa.select(pp).where(pp.c.connection == connection)
        if status is not None:
            query = query.where(pp.c.status == status)
        with self._read() as conn:
            rows = conn.execute(query.order_by(pp.c.created_at, pp.c.id)).all()
        return [
            PaymentPlanRecord(
                PaymentPlan(
                    id=r.id,
                    customer_id=r.customer_id,
                    invoice_ids=tuple(r.invoice_ids),
                    instalments=tuple(
                        Instalment(date.fromisoformat(i["due_date"]), Decimal(i["amount"]))
                        for i in r.instalments
                    ),
                    acceleration_days=r.acceleration_days,
                ),
                r.connection,
                r.status,
                r.created_at,
                r.updated_at,
            )
            for r in rows
        ]

    # ------------------------------------------------------------ audit and quarantine

    def audit(
        self,
        event: str,
        *,
        connection: str | None = None,
        actor: str = "relance",
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                sa.insert(t.audit).values(
                    at=utcnow(),
                    connection=connection,
                    actor=actor,
                    event=event,
                    detail=codec.jsonable(dict(detail or {})),
                )
            )

    def audit_log(self, connection: str | None = None, *, limit: int = 1000) -> list[AuditEntry]:
        """Newest first."""
        query = sa.select(t.audit)
        if connection is not None:
            query = query.where(t.audit.c.connection == connection)
        with self._read() as conn:
            rows = conn.execute(query.order_by(t.audit.c.id.desc()).limit(limit)).all()
        return [AuditEntry(r.id, r.at, r.connection, r.actor, r.event, r.detail) for r in rows]

    def quarantine(self, connection: str, item: Quarantined) -> None:
        with self._write() as conn:
            conn.execute(
                sa.insert(t.quarantine).values(
                    connection=connection,
                    entity=item.entity,
                    record_id=item.record_id,
                    reason=item.reason,
                    raw=item.raw[:10_000],
                    at=utcnow(),
                )
            )

    def quarantined(self, connection: str, *, since: datetime | None = None) -> list[dict[str, Any]]:
        q = t.quarantine
        query = sa.select(q).where(q.c.connection == connection)
        if since is not None:
            query = query.where(q.c.at >= since)
        with self._read() as conn:
            rows = conn.execute(query.order_by(q.c.id)).mappings().all()
        return [codec.jsonable(dict(row)) for row in rows]

    # ------------------------------------------------------------ leases

    def lease(
        self, connection: str, holder: str, ttl: float | timedelta = 3600.0, *, wait: float = 0.0
    ) -> AbstractContextManager[Any]:
        """Exclusive right to apply for `connection` (see sync.store.lease). Raises LeaseBusy."""
        from sync.store.lease import Lease

        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else float(ttl)
        return Lease(self, connection, holder, ttl=seconds, wait=wait)

    def lease_holder(self, connection: str) -> tuple[str, datetime, datetime] | None:
        """(holder, acquired_at, expires_at) of the last lease row written for a connection."""
        with self._read() as conn:
            row = conn.execute(sa.select(t.leases).where(t.leases.c.connection == connection)).one_or_none()
        return None if row is None else (row.holder, row.acquired_at, row.expires_at)


# ---------------------------------------------------------------- helpers


def _unique(actions: Iterable[PlannedAction]) -> list[PlannedAction]:
    """First occurrence of each key (a plan never repeats a key; a bad caller must not fail the insert)."""
    seen: dict[str, PlannedAction] = {}
    for action in actions:
        seen.setdefault(action.key, action)
    return list(seen.values())


def _identity(value: Any) -> Any:
    return value


def _aware_datetime(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware datetimes")
    return value


def _sqlite_datetime(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME storage format, so ORM-level reads parse what we write here.
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the store only takes timezone-aware datetimes")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _driver_converter(column: sa.Column[Any], dialect: str) -> Any:
    """Python value -> what the DB driver takes for this column, matching the column types' own
    bind processing (schema.UTCDateTime, schema.Amount, JSON)."""
    kind = column.type
    if isinstance(kind, sa.JSON):
        if dialect == "sqlite":
            return lambda value: None if value is None else json.dumps(value)
        from psycopg.types.json import Json

        return lambda value: None if value is None else Json(value)
    if isinstance(kind, t.UTCDateTime):
        return _sqlite_datetime if dialect == "sqlite" else _aware_datetime
    if dialect != "sqlite":
        return _identity
    if isinstance(kind, t.Amount):
        return lambda value: None if value is None else str(value)
    if isinstance(kind, sa.Date):
        return lambda value: None if value is None else value.isoformat()
    if isinstance(kind, sa.Boolean):
        return lambda value: None if value is None else int(value)
    return _identity


def _action_record(row: sa.Row[Any]) -> ActionRecord:
    return ActionRecord(
        key=row.key,
        connection=row.connection,
        kind=row.kind,
        customer_id=row.customer_id,
        currency=row.currency,
        invoice_ids=tuple(row.invoice_ids),
        step=row.step,
        channel=row.channel,
        template=row.template,
        instalment=row.instalment,
        charges=codec.decode_charges(row.charges),
        reason=row.reason,
        status=row.status,
        attempts=row.attempts,
        ledger_ids=tuple(row.ledger_ids),
        error=row.error,
        planned_for=row.planned_for,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        details=dict(row.details or {}),
    )


def _as_mapping(entry: Any) -> dict[str, Any]:
    if isinstance(entry, Mapping):
        return dict(entry)
    if callable(getattr(entry, "as_dict", None)):  # the entry's own JSON shape (channels.handover.TaskEntry)
        return dict(entry.as_dict())
    if dataclasses.is_dataclass(entry) and not isinstance(entry, type):
        return {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
    if hasattr(entry, "_asdict"):
        return dict(entry._asdict())
    return dict(vars(entry))
