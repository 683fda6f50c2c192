"""The records the Xero sandbox keeps: contacts, invoices, payments, credit notes and history,
as plain dataclasses (rendered to Xero JSON by `render`, persisted by `state`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

Line = tuple[str, Decimal]  # (description, amount)
Credit = tuple[str, Decimal, dt.date]  # on an invoice: (credit note id, amount, day)
CreditAllocation = tuple[
    str, str, Decimal, dt.date
]  # on a credit note: (allocation id, invoice, amount, day)


@dataclass
class XContact:
    id: str
    name: str
    email: str | None
    country: str | None
    currency: str | None
    groups: list[str]
    status: str  # ACTIVE | ARCHIVED
    updated: dt.datetime


@dataclass
class XInvoice:
    id: str
    number: str
    type: str
    contact_id: str
    date: dt.date
    due_date: dt.date
    currency: str
    status: str
    lines: list[Line]
    total: Decimal
    sent: bool
    reference: str | None
    updated: dt.datetime
    payment_ids: list[str] = field(default_factory=list)
    credited: list[Credit] = field(default_factory=list)
    fully_paid_on: dt.date | None = None


@dataclass
class XPayment:
    id: str
    invoice_id: str
    date: dt.date
    amount: Decimal
    status: str  # AUTHORISED | DELETED
    updated: dt.datetime
    reference: str | None = None


@dataclass
class XCreditNote:
    id: str
    number: str
    contact_id: str
    date: dt.date
    currency: str
    total: Decimal
    lines: list[Line]
    status: str  # AUTHORISED | PAID | VOIDED
    reference: str | None
    updated: dt.datetime
    allocations: list[CreditAllocation] = field(default_factory=list)


@dataclass
class XHistory:
    changes: str
    details: str
    user: str
    at: dt.datetime
