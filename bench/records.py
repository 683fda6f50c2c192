"""What both sides of a bench pull share: the page size, the history window, record fingerprints."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

LEDGERS = ("quickbooks", "xero")
PAGE_SIZE = 1000
HISTORY_DAYS = 730  # the connectors' default 24 months of history


def history_from(today: date | None = None) -> date:
    return (today or datetime.now(UTC).date()) - timedelta(days=HISTORY_DAYS)


def _amount(value: Any) -> str:
    """Equal amounts compare equal whatever their exponent (2285.80 from JSON is 2285.8)."""
    return str(Decimal(value).normalize()) if value is not None else "None"


def record_fingerprint(entity: str, record: Any) -> Any:
    """What must survive a pull exactly: ids, amounts, status."""
    if entity == "invoice":
        return [
            _amount(record.total.amount),
            _amount(record.balance.amount),
            str(record.status),
            record.customer_id,
        ]
    if entity in ("payment", "credit_note"):
        total = record.amount.amount if entity == "payment" else record.total.amount
        return [_amount(total), sorted([a.invoice_id, _amount(a.amount)] for a in record.allocations)]
    return [record.name]


def truth_fingerprint(snapshot: Any) -> dict[str, dict[str, Any]]:
    return {
        "customer": {
            c.id: record_fingerprint("customer", c) for c in snapshot.customers.values() if c.active
        },
        "invoice": {i.id: record_fingerprint("invoice", i) for i in snapshot.invoices.values()},
        "payment": {p.id: record_fingerprint("payment", p) for p in snapshot.payments.values()},
        "credit_note": {n.id: record_fingerprint("credit_note", n) for n in snapshot.credit_notes.values()},
    }
