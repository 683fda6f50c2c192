"""The neutral ledger model shared by connectors/, policies/ and sync/.

Dumb immutable records (beancount style): connectors map QuickBooks Online and Xero payloads into
them, the store persists them, the policy engine reads them. No behaviour beyond small derivations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from policies.model.money import Money


class CustomerKind(StrEnum):
    B2B = "b2b"
    B2C = "b2c"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"  # not yet approved: never chased, counted in exposure only if the policy says so
    OPEN = "open"  # approved and not fully paid
    PAID = "paid"
    VOID = "void"  # voided or deleted in the ledger


@dataclass(frozen=True, slots=True)
class Customer:
    id: str
    name: str
    emails: tuple[str, ...] = ()
    language: str | None = None  # ISO 639-1 ("fr", "en", "de"); None = the company default
    country: str | None = None  # ISO 3166-1 alpha-2
    kind: CustomerKind | None = None  # None = the policy's default customer kind
    tags: tuple[str, ...] = ()
    currency: str | None = None
    active: bool = True
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    description: str
    amount: Decimal  # line total incl. tax, in the invoice currency
    is_relance_fee: bool = False  # a fee line relance added (recognised by its marker)


@dataclass(frozen=True, slots=True)
class Instalment:
    """One instalment of an invoice (ledger terms, or an agreed payment plan)."""

    due_date: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    number: str
    customer_id: str
    issue_date: date
    due_date: date
    currency: str
    total: Money  # incl. tax
    balance: Money  # still owed, as the ledger says
    status: InvoiceStatus
    instalments: tuple[Instalment, ...] = ()
    lines: tuple[InvoiceLine, ...] = ()
    email_status: str | None = None  # QBO EmailStatus / Xero SentToContact, as reported
    last_emailed_at: datetime | None = None  # QBO DeliveryInfo.DeliveryTime when known
    pay_link: str | None = None  # the ledger's online payment link, where it has one
    reference: str | None = None  # free text / memo; fee invoices point at their original here
    updated_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status is InvoiceStatus.OPEN and self.balance.amount > 0

    @property
    def principal(self) -> Money:
        """The debt itself: the total without the fee lines relance added (QuickBooks puts fees on
        the invoice). Interest and compensation are computed on this, never on fees (no interest
        on interest)."""
        fees = sum((line.amount for line in self.lines if line.is_relance_fee), Decimal(0))
        return Money(self.total.amount - fees, self.total.currency) if fees else self.total

    @property
    def is_relance_fee_invoice(self) -> bool:
        """A separate invoice relance created for fees (Xero, or QuickBooks in fee_mode invoice)."""
        return bool(self.lines) and all(line.is_relance_fee for line in self.lines)


@dataclass(frozen=True, slots=True)
class Allocation:
    invoice_id: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    customer_id: str
    date: date
    amount: Money
    allocations: tuple[Allocation, ...] = ()
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CreditNote:
    id: str
    number: str
    customer_id: str
    date: date
    total: Money
    remaining: Money  # not yet allocated
    allocations: tuple[Allocation, ...] = ()
    reference: str | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """Money applied to one invoice on one day (payment or credit note): reduces its principal."""

    date: date
    amount: Decimal
    source: str = "payment"  # "payment" | "credit_note"
    source_id: str = ""


class LedgerLookup(Protocol):
    """The ledger as effects read it: customers and invoices by id (a LedgerSnapshot, or the state
    store's LedgerView that reads them on demand)."""

    @property
    def customers(self) -> Mapping[str, Customer]: ...

    @property
    def invoices(self) -> Mapping[str, Invoice]: ...


@dataclass(frozen=True, slots=True)
class LedgerSnapshot:
    """Everything the planner needs about one connection, as plain data."""

    customers: dict[str, Customer] = field(default_factory=dict)
    invoices: dict[str, Invoice] = field(default_factory=dict)
    payments: dict[str, Payment] = field(default_factory=dict)
    credit_notes: dict[str, CreditNote] = field(default_factory=dict)


def settlements_by_invoice(
    payments: Iterable[Payment], credit_notes: Iterable[CreditNote] = ()
) -> dict[str, list[Settlement]]:
    """Group payment and credit-note allocations per invoice, sorted by date."""
    result: dict[str, list[Settlement]] = defaultdict(list)
    for payment in payments:
        for allocation in payment.allocations:
            result[allocation.invoice_id].append(
                Settlement(payment.date, allocation.amount, "payment", payment.id)
            )
    for note in credit_notes:
        for allocation in note.allocations:
            result[allocation.invoice_id].append(
                Settlement(note.date, allocation.amount, "credit_note", note.id)
            )
    for items in result.values():
        items.sort(key=lambda s: (s.date, s.source_id))
    return dict(result)
