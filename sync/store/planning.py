"""What the planner reads, in bounded memory: the ledger mirror and the outbox history together.

The planner never needs the whole ledger at once: `iter_batches` pages through the invoices the
planner can act on, whole customers at a time, each page with the customers, settlements and history
of its own invoices. Pages are keyset queries (no cursor left open between pages), so a page's
consumer may query the store freely, on every backend and pool.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa

from policies.model.actions import DoneAction
from policies.model.ledger import (
    Allocation,
    CreditNote,
    Customer,
    Invoice,
    InvoiceStatus,
    Payment,
    Settlement,
)
from sync.store import codec
from sync.store import schema as t
from sync.store.db import Database, loads
from sync.store.ledger import Ledger
from sync.store.outbox import Outbox
from sync.store.views import BatchLookup

# invoice id -> (0 payment | 1 credit note, source, record, allocation)
Strays = Mapping[str, list[tuple[int, str, Payment | CreditNote, Allocation]]]


@dataclass(frozen=True, slots=True)
class PlanBatch:
    """Invoices of whole customers, with what `plan_day` reads about them."""

    invoices: list[Invoice]
    customers: BatchLookup[Customer]
    settlements: BatchLookup[list[Settlement]]
    history: BatchLookup[list[DoneAction]]


class Planning:
    """`store.planning`: the planner's inputs, streamed."""

    def __init__(self, db: Database, ledger: Ledger, outbox: Outbox) -> None:
        self._db = db
        self._ledger = ledger
        self._outbox = outbox

    def iter_batches(
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
            with self._db.read() as conn:
                rows = list(conn.execute(page.order_by(inv.c.customer_id, inv.c.id).limit(batch)).all())
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
            yield self._batch(connection, invoices, strays)
            if len(rows) < batch:
                return
            after = rows[-1].customer_id

    def _batch(self, connection: str, invoices: list[Invoice], strays: Strays) -> PlanBatch:
        owner = {invoice.id: invoice.customer_id for invoice in invoices}
        customer_ids = list(dict.fromkeys(owner.values()))
        with self._db.read():  # one connection, one consistent view for the four reads
            customers = self._ledger.customers_by_id(connection, customer_ids)
            history = self._outbox.history_for(connection, list(owner))
            payments = self._ledger.payments_of_customers(connection, customer_ids)
            notes = self._ledger.credit_notes_of_customers(connection, customer_ids)
        # Same order as settlements_by_invoice before its sort (payments, then credit notes): each
        # (record, invoice) pair comes from exactly one side, the record's customer or the strays.
        found: dict[str, list[Settlement]] = defaultdict(list)
        sides: tuple[tuple[int, str, list[Payment] | list[CreditNote]], ...] = (
            (0, "payment", payments),
            (1, "credit_note", notes),
        )
        for order, source, records in sides:
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
        ledger, outbox = self._ledger, self._outbox
        return PlanBatch(
            invoices=invoices,
            customers=BatchLookup(customers, set(customer_ids), lambda i: ledger.customer(connection, i)),
            settlements=BatchLookup(
                dict(found), set(owner), lambda i: ledger.settlements_for(connection, [i]).get(i)
            ),
            history=BatchLookup(history, set(owner), lambda i: outbox.history_for(connection, [i]).get(i)),
        )

    def _cross_customer_allocations(self, connection: str) -> Strays:
        """Payments and credit notes allocated to an invoice of another customer (a parent paying for
        a sub-customer), by invoice id. Found in SQL (allocations are JSON); usually none."""
        result: dict[str, list[tuple[int, str, Payment | CreditNote, Allocation]]] = defaultdict(list)
        sources: tuple[tuple[str, sa.Table, Callable[[dict[str, Any]], Payment | CreditNote]], ...] = (
            ("payment", t.payments, codec.decode_payment),
            ("credit_note", t.credit_notes, codec.decode_credit_note),
        )
        with self._db.read() as conn:
            for order, (entity, table, decode) in enumerate(sources):
                sql = self._cross_customer_sql(table.name)
                for (payload,) in conn.exec_driver_sql(sql, (connection,)):
                    record = decode(loads(payload))
                    for allocation in record.allocations:
                        result[allocation.invoice_id].append((order, entity, record, allocation))
        return dict(result)

    def _cross_customer_sql(self, table: str) -> str:
        if self._db.dialect == "sqlite":
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
