"""Neutral records (policies.model.ledger) <-> JSON payloads and indexed row values, exactly.

Amounts travel as strings ("1200.50"), dates and datetimes as ISO 8601, tuples as lists: the round
trip gives back equal records. Written by hand per type, not by reflection: a snapshot of 100k
invoices is decoded in one pass and the generic route costs several times more.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from policies.model.actions import Charge
from policies.model.ledger import (
    Allocation,
    CreditNote,
    Customer,
    CustomerKind,
    Instalment,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
)
from policies.model.money import Money

Record = Customer | Invoice | Payment | CreditNote


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _allocations(items: tuple[Allocation, ...]) -> list[list[str]]:
    return [[item.invoice_id, str(item.amount)] for item in items]


def _parse_allocations(items: list[list[str]]) -> tuple[Allocation, ...]:
    return tuple(Allocation(invoice_id, Decimal(amount)) for invoice_id, amount in items)


# ---------------------------------------------------------------- encode


def encode_customer(c: Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "emails": list(c.emails),
        "language": c.language,
        "country": c.country,
        "kind": c.kind.value if c.kind is not None else None,
        "tags": list(c.tags),
        "currency": c.currency,
        "active": c.active,
        "updated_at": _dt(c.updated_at),
    }


def encode_invoice(i: Invoice) -> dict[str, Any]:
    return {
        "id": i.id,
        "number": i.number,
        "customer_id": i.customer_id,
        "issue_date": i.issue_date.isoformat(),
        "due_date": i.due_date.isoformat(),
        "currency": i.currency,
        "total": str(i.total.amount),
        "total_currency": i.total.currency,
        "balance": str(i.balance.amount),
        "balance_currency": i.balance.currency,
        "status": i.status.value,
        "instalments": [[x.due_date.isoformat(), str(x.amount)] for x in i.instalments],
        "lines": [[x.description, str(x.amount), x.is_relance_fee] for x in i.lines],
        "email_status": i.email_status,
        "last_emailed_at": _dt(i.last_emailed_at),
        "pay_link": i.pay_link,
        "reference": i.reference,
        "updated_at": _dt(i.updated_at),
    }


def encode_payment(p: Payment) -> dict[str, Any]:
    return {
        "id": p.id,
        "customer_id": p.customer_id,
        "date": p.date.isoformat(),
        "amount": str(p.amount.amount),
        "currency": p.amount.currency,
        "allocations": _allocations(p.allocations),
        "updated_at": _dt(p.updated_at),
    }


def encode_credit_note(n: CreditNote) -> dict[str, Any]:
    return {
        "id": n.id,
        "number": n.number,
        "customer_id": n.customer_id,
        "date": n.date.isoformat(),
        "total": str(n.total.amount),
        "remaining": str(n.remaining.amount),
        "currency": n.total.currency,
        "remaining_currency": n.remaining.currency,
        "allocations": _allocations(n.allocations),
        "reference": n.reference,
        "updated_at": _dt(n.updated_at),
    }


# ---------------------------------------------------------------- decode


def decode_customer(d: dict[str, Any]) -> Customer:
    kind = d.get("kind")
    return Customer(
        id=d["id"],
        name=d["name"],
        emails=tuple(d.get("emails") or ()),
        language=d.get("language"),
        country=d.get("country"),
        kind=CustomerKind(kind) if kind else None,
        tags=tuple(d.get("tags") or ()),
        currency=d.get("currency"),
        active=d.get("active", True),
        updated_at=_parse_dt(d.get("updated_at")),
    )


def decode_invoice(d: dict[str, Any]) -> Invoice:
    currency = d["currency"]
    return Invoice(
        id=d["id"],
        number=d["number"],
        customer_id=d["customer_id"],
        issue_date=date.fromisoformat(d["issue_date"]),
        due_date=date.fromisoformat(d["due_date"]),
        currency=currency,
        total=Money(Decimal(d["total"]), d.get("total_currency") or currency),
        balance=Money(Decimal(d["balance"]), d.get("balance_currency") or currency),
        status=InvoiceStatus(d["status"]),
        instalments=tuple(
            Instalment(date.fromisoformat(due), Decimal(amount)) for due, amount in d["instalments"]
        ),
        lines=tuple(InvoiceLine(text, Decimal(amount), bool(fee)) for text, amount, fee in d["lines"]),
        email_status=d.get("email_status"),
        last_emailed_at=_parse_dt(d.get("last_emailed_at")),
        pay_link=d.get("pay_link"),
        reference=d.get("reference"),
        updated_at=_parse_dt(d.get("updated_at")),
    )


def decode_payment(d: dict[str, Any]) -> Payment:
    return Payment(
        id=d["id"],
        customer_id=d["customer_id"],
        date=date.fromisoformat(d["date"]),
        amount=Money(Decimal(d["amount"]), d["currency"]),
        allocations=_parse_allocations(d["allocations"]),
        updated_at=_parse_dt(d.get("updated_at")),
    )


def decode_credit_note(d: dict[str, Any]) -> CreditNote:
    return CreditNote(
        id=d["id"],
        number=d["number"],
        customer_id=d["customer_id"],
        date=date.fromisoformat(d["date"]),
        total=Money(Decimal(d["total"]), d["currency"]),
        remaining=Money(Decimal(d["remaining"]), d.get("remaining_currency") or d["currency"]),
        allocations=_parse_allocations(d["allocations"]),
        reference=d.get("reference"),
        updated_at=_parse_dt(d.get("updated_at")),
    )


DECODERS: dict[str, Callable[[dict[str, Any]], Record]] = {
    "customer": decode_customer,
    "invoice": decode_invoice,
    "payment": decode_payment,
    "credit_note": decode_credit_note,
}


# ---------------------------------------------------------------- rows (indexed columns + payload)


def row_for(entity: str, record: Record) -> dict[str, Any]:
    """The snapshot-table row of one record (without connection and stored_at)."""
    if entity == "invoice":
        assert isinstance(record, Invoice)
        return {
            "id": record.id,
            "number": record.number,
            "customer_id": record.customer_id,
            "status": record.status.value,
            "is_open": record.is_open,
            "due_date": record.due_date,
            "balance": record.balance.amount,
            "currency": record.currency,
            "payload": encode_invoice(record),
            "updated_at": record.updated_at,
        }
    if entity == "customer":
        assert isinstance(record, Customer)
        return {
            "id": record.id,
            "name": record.name,
            "currency": record.currency,
            "active": record.active,
            "payload": encode_customer(record),
            "updated_at": record.updated_at,
        }
    if entity == "payment":
        assert isinstance(record, Payment)
        return {
            "id": record.id,
            "customer_id": record.customer_id,
            "date": record.date,
            "amount": record.amount.amount,
            "currency": record.amount.currency,
            "payload": encode_payment(record),
            "updated_at": record.updated_at,
        }
    if entity == "credit_note":
        assert isinstance(record, CreditNote)
        return {
            "id": record.id,
            "number": record.number,
            "customer_id": record.customer_id,
            "date": record.date,
            "remaining": record.remaining.amount,
            "currency": record.total.currency,
            "payload": encode_credit_note(record),
            "updated_at": record.updated_at,
        }
    raise ValueError(f"unknown entity {entity!r}")


# ---------------------------------------------------------------- charges (actions.charges JSON)


def encode_charges(charges: tuple[Charge, ...] | list[Charge]) -> list[dict[str, str]]:
    return [
        {
            "component": c.component,
            "amount": str(c.amount.amount),
            "currency": c.amount.currency,
            "description": c.description,
        }
        for c in charges
    ]


def decode_charges(items: list[dict[str, str]] | None) -> tuple[Charge, ...]:
    return tuple(
        Charge(
            item["component"], Money(Decimal(item["amount"]), item["currency"]), item.get("description", "")
        )
        for item in items or ()
    )


def jsonable(value: Any) -> Any:
    """Make details/detail dicts JSON-safe: Decimals and dates as strings, tuples as lists.
    Floats are refused (money must never pass through one)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        raise TypeError(f"floats are not stored (money must be Decimal or str): {value!r}")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Money):
        return {"amount": str(value.amount), "currency": value.currency}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if hasattr(value, "value") and isinstance(value.value, str):  # enums
        return value.value
    return str(value)
