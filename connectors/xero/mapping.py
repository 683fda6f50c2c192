"""Xero Accounting JSON <-> the neutral ledger model.

Pulls map the raw JSON of each record (the SDK fetches it; per-record mapping means one malformed
record is quarantined instead of failing its whole page). Writes build xero-python models so the
SDK serialises them exactly as it would for real Xero (MS-JSON dates, field names).

Xero has no customer kind, language or tags. Convention (documented in the README of connectors):
contact groups carry them. A group named `relance:kind=b2c` / `relance:kind=b2b` sets the kind,
`relance:lang=fr` the notice language; every other contact group name is a tag (so a Xero user's
own "key" or "no-dunning" group works as the policy tag of the same name).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.base import Entity, Quarantined
from connectors.values import checked_amount, header_safe_name, usable_email_addresses
from policies.model.ledger import (
    Allocation,
    CreditNote,
    Customer,
    CustomerKind,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
)
from policies.model.money import Money

KIND_GROUP_PREFIX = "relance:kind="
LANGUAGE_GROUP_PREFIX = "relance:lang="
FEE_MARKER = "[relance fee]"  # prefix of the description of lines relance creates

STATUS_MAP: dict[str, InvoiceStatus] = {
    "DRAFT": InvoiceStatus.DRAFT,
    "SUBMITTED": InvoiceStatus.DRAFT,
    "AUTHORISED": InvoiceStatus.OPEN,
    "PAID": InvoiceStatus.PAID,
    "VOIDED": InvoiceStatus.VOID,
    "DELETED": InvoiceStatus.VOID,
}

EMAIL_SENT = "sent"  # Invoice.email_status when SentToContact is true
EMAIL_NOT_SENT = "not_sent"

_MS_DATE = re.compile(r"^/Date\((?P<ms>-?\d+)(?P<tz>[+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class MappingError(ValueError):
    """A record the mapper cannot read (becomes a Quarantined entry)."""


# ---------------------------------------------------------------- scalars


def parse_datetime(value: Any) -> datetime:
    """Xero timestamps: "/Date(1700000000000+0000)/" or ISO 8601 (naive = UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        raise MappingError(f"not a date: {value!r}")
    found = _MS_DATE.match(value.strip())
    if found:
        # The offset in MS-JSON dates is informative: the milliseconds are already UTC.
        return _EPOCH + timedelta(milliseconds=int(found["ms"]))
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MappingError(f"not a date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return parse_datetime(value).astimezone(UTC).date()


def ms_date(day: date) -> str:
    """A calendar date as Xero writes it: midnight UTC in MS-JSON form."""
    moment = datetime.combine(day, time(0, 0), UTC)
    return f"/Date({int((moment - _EPOCH).total_seconds()) * 1000}+0000)/"


def ms_datetime(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment.astimezone(UTC) - _EPOCH
    millis = delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000
    return f"/Date({millis}+0000)/"


def parse_amount(value: Any, field: str) -> Decimal:
    """JSON numbers arrive as Decimal (parse_float=Decimal) or int; strings are tolerated."""
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{field} is missing")
    if isinstance(value, float):  # only when a caller parsed JSON without parse_float=Decimal
        value = repr(value)
    try:
        amount = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, TypeError, ValueError):
        raise MappingError(f"{field} is not an amount: {value!r}") from None
    if not amount.is_finite():
        raise MappingError(f"{field} is not a finite amount: {value!r}")
    return checked_amount(amount, None, field)  # the currency is checked with the record; any fits here


def _text(record: Mapping[str, Any], field: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"{field} is missing")
    return value


def _optional_text(record: Mapping[str, Any], field: str) -> str | None:
    value = record.get(field)
    return value if isinstance(value, str) and value else None


def _updated(record: Mapping[str, Any]) -> datetime | None:
    value = record.get("UpdatedDateUTC")
    return parse_datetime(value) if value else None


def _currency(record: Mapping[str, Any]) -> str:
    value = record.get("CurrencyCode")
    if not isinstance(value, str) or len(value) != 3:
        raise MappingError(f"CurrencyCode is not an ISO currency: {value!r}")
    return value.upper()


def _nested_id(record: Mapping[str, Any], outer: str, field: str) -> str:
    inner = record.get(outer)
    if not isinstance(inner, Mapping):
        raise MappingError(f"{outer} is missing")
    return _text(inner, field)


# ---------------------------------------------------------------- records


def contact_to_customer(raw: Mapping[str, Any]) -> Customer:
    contact_id = _text(raw, "ContactID")
    emails: list[str] = []
    primary = _optional_text(raw, "EmailAddress")
    if primary:
        emails.append(primary)
    for person in raw.get("ContactPersons") or ():
        if isinstance(person, Mapping) and person.get("IncludeInEmails"):
            address = _optional_text(person, "EmailAddress")
            if address and address not in emails:
                emails.append(address)
    country = None
    for address in raw.get("Addresses") or ():
        if isinstance(address, Mapping) and _optional_text(address, "Country"):
            country = str(address["Country"]).upper()
            break
    kind: CustomerKind | None = None
    language: str | None = None
    tags: list[str] = []
    for group in raw.get("ContactGroups") or ():
        name = _optional_text(group, "Name") if isinstance(group, Mapping) else None
        if not name or (isinstance(group, Mapping) and group.get("Status") == "DELETED"):
            continue
        if name.startswith(KIND_GROUP_PREFIX):
            try:
                kind = CustomerKind(name[len(KIND_GROUP_PREFIX) :].strip().lower())
            except ValueError:
                raise MappingError(f"contact group {name!r}: kind must be b2b or b2c") from None
        elif name.startswith(LANGUAGE_GROUP_PREFIX):
            language = name[len(LANGUAGE_GROUP_PREFIX) :].strip().lower() or None
        else:
            tags.append(name)
    currency = raw.get("DefaultCurrency")
    return Customer(
        id=contact_id,
        name=header_safe_name(_text(raw, "Name"), "Name"),
        emails=usable_email_addresses(emails, record=f"Contact {contact_id}"),
        language=language,
        country=country,
        kind=kind,
        tags=tuple(sorted(tags)),
        currency=currency.upper() if isinstance(currency, str) and currency else None,
        active=raw.get("ContactStatus", "ACTIVE") == "ACTIVE",
        updated_at=_updated(raw),
    )


def _line(raw: Any, currency: str, line_amount_types: str) -> InvoiceLine:
    if not isinstance(raw, Mapping):
        raise MappingError("a line item is not an object")
    amount = parse_amount(raw.get("LineAmount"), "LineItems.LineAmount")
    if line_amount_types == "Exclusive" and raw.get("TaxAmount") is not None:
        amount += parse_amount(raw.get("TaxAmount"), "LineItems.TaxAmount")
    text = raw.get("Description")
    description = text if isinstance(text, str) else ""
    del currency
    return InvoiceLine(
        description=description.removeprefix(FEE_MARKER).strip() if description else "",
        amount=amount,
        is_relance_fee=bool(description) and description.startswith(FEE_MARKER),
    )


def xero_invoice_to_invoice(raw: Mapping[str, Any]) -> Invoice:
    invoice_id = _text(raw, "InvoiceID")
    status_text = raw.get("Status")
    if status_text not in STATUS_MAP:
        raise MappingError(f"unknown Status {status_text!r}")
    currency = _currency(raw)
    total = parse_amount(raw.get("Total"), "Total")
    due = raw.get("AmountDue")
    balance = parse_amount(due, "AmountDue") if due is not None else total
    status = STATUS_MAP[status_text]
    if status is InvoiceStatus.VOID:
        balance = Decimal(0)
    issue = parse_date(raw.get("Date"))
    due_value = raw.get("DueDate")
    line_types = raw.get("LineAmountTypes") or "Exclusive"
    return Invoice(
        id=invoice_id,
        number=_optional_text(raw, "InvoiceNumber") or invoice_id,
        customer_id=_nested_id(raw, "Contact", "ContactID"),
        issue_date=issue,
        due_date=parse_date(due_value) if due_value else issue,
        currency=currency,
        total=Money(total, currency),
        balance=Money(balance, currency),
        status=status,
        lines=tuple(_line(item, currency, line_types) for item in raw.get("LineItems") or ()),
        email_status=EMAIL_SENT if raw.get("SentToContact") is True else EMAIL_NOT_SENT,
        reference=_optional_text(raw, "Reference"),
        updated_at=_updated(raw),
    )


def xero_payment_to_payment(raw: Mapping[str, Any]) -> Payment:
    """A Xero payment settles exactly one invoice (batch payments are split per invoice)."""
    payment_id = _text(raw, "PaymentID")
    invoice = raw.get("Invoice")
    if not isinstance(invoice, Mapping):
        raise MappingError("Invoice is missing")
    invoice_id = _text(invoice, "InvoiceID")
    customer_id = _nested_id(invoice, "Contact", "ContactID")
    currency = _currency(invoice)
    amount = parse_amount(raw.get("Amount"), "Amount")
    return Payment(
        id=payment_id,
        customer_id=customer_id,
        date=parse_date(raw.get("Date")),
        amount=Money(amount, currency),
        allocations=(Allocation(invoice_id, amount),),
        updated_at=_updated(raw),
    )


def xero_credit_note_to_credit_note(raw: Mapping[str, Any]) -> CreditNote:
    note_id = _text(raw, "CreditNoteID")
    currency = _currency(raw)
    total = parse_amount(raw.get("Total"), "Total")
    remaining_raw = raw.get("RemainingCredit")
    allocations: list[Allocation] = []
    for item in raw.get("Allocations") or ():
        if not isinstance(item, Mapping):
            raise MappingError("an allocation is not an object")
        if item.get("IsDeleted") is True:
            continue
        allocations.append(
            Allocation(_nested_id(item, "Invoice", "InvoiceID"), parse_amount(item.get("Amount"), "Amount"))
        )
    remaining = (
        parse_amount(remaining_raw, "RemainingCredit")
        if remaining_raw is not None
        else total - sum((a.amount for a in allocations), Decimal(0))
    )
    return CreditNote(
        id=note_id,
        number=_optional_text(raw, "CreditNoteNumber") or note_id,
        customer_id=_nested_id(raw, "Contact", "ContactID"),
        date=parse_date(raw.get("Date")),
        total=Money(total, currency),
        remaining=Money(remaining, currency),
        allocations=tuple(allocations),
        reference=_optional_text(raw, "Reference"),
        updated_at=_updated(raw),
    )


# ---------------------------------------------------------------- pages

ID_FIELD: dict[Entity, str] = {
    "customer": "ContactID",
    "invoice": "InvoiceID",
    "payment": "PaymentID",
    "credit_note": "CreditNoteID",
}
MAPPERS: dict[Entity, Callable[[Mapping[str, Any]], Any]] = {
    "customer": contact_to_customer,
    "invoice": xero_invoice_to_invoice,
    "payment": xero_payment_to_payment,
    "credit_note": xero_credit_note_to_credit_note,
}
# Records in these states are gone for credit control: reported as deletions.
DELETED_STATUSES: dict[Entity, frozenset[str]] = {
    "customer": frozenset(),
    "invoice": frozenset(),  # voided/deleted invoices stay, as status void
    "payment": frozenset({"DELETED"}),
    "credit_note": frozenset({"DELETED", "VOIDED"}),
}


def excerpt(raw: Any, limit: int = 400) -> str:
    try:
        text = json.dumps(raw, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(raw)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def map_records(entity: Entity, rows: Iterable[Any]) -> tuple[list[Any], list[str], list[Quarantined]]:
    """Map one page: (records, deleted ids, quarantined). Never raises for a bad record."""
    mapper = MAPPERS[entity]
    id_field = ID_FIELD[entity]
    gone = DELETED_STATUSES[entity]
    records: list[Any] = []
    deleted: list[str] = []
    quarantined: list[Quarantined] = []
    for raw in rows:
        record_id = raw.get(id_field) if isinstance(raw, Mapping) else None
        record_id = record_id if isinstance(record_id, str) else None
        try:
            if not isinstance(raw, Mapping):
                raise MappingError("the record is not an object")
            if gone and raw.get("Status") in gone:
                deleted.append(_text(raw, id_field))
                continue
            records.append(mapper(raw))
        except (MappingError, ValueError, TypeError, KeyError, ArithmeticError) as error:
            quarantined.append(
                Quarantined(entity, record_id, str(error) or type(error).__name__, excerpt(raw))
            )
    return records, deleted, quarantined


def embedded_credit_note_ids(raw_invoices: Iterable[Any]) -> set[str]:
    """CreditNoteIDs allocated to these invoices (Invoice.CreditNotes[])."""
    ids: set[str] = set()
    for raw in raw_invoices:
        if isinstance(raw, Mapping):
            for note in raw.get("CreditNotes") or ():
                if isinstance(note, Mapping) and isinstance(note.get("CreditNoteID"), str):
                    ids.add(note["CreditNoteID"])
    return ids


# ---------------------------------------------------------------- write models (xero-python)
# Each builder imports xero-python when called (lazy: it is heavy, and the registry must not load it).


def fee_line_model(description: str, amount: Decimal, account_code: str) -> Any:
    """One line of a fee invoice or credit note: quantity 1, its description after the relance
    fee marker."""
    from xero_python.accounting import LineItem

    return LineItem(
        description=f"{FEE_MARKER} {description}".strip(),
        quantity=Decimal(1),
        unit_amount=amount,
        line_amount=amount,
        account_code=account_code,
    )


def fee_invoice_model(
    *,
    contact_id: str,
    currency: str,
    lines: Iterable[tuple[str, Decimal]],
    reference: str,
    issue_date: date,
    due_date: date,
    account_code: str,
) -> Any:
    """An AUTHORISED ACCREC invoice for fees; line descriptions carry the relance fee marker."""
    from xero_python.accounting import Contact, CurrencyCode, LineAmountTypes
    from xero_python.accounting import Invoice as XeroInvoice

    return XeroInvoice(
        type="ACCREC",
        contact=Contact(contact_id=contact_id),
        line_items=[fee_line_model(description, amount, account_code) for description, amount in lines],
        date=issue_date,
        due_date=due_date,
        line_amount_types=LineAmountTypes.NOTAX,
        reference=reference,
        currency_code=CurrencyCode(currency.upper()),
        status="AUTHORISED",
    )


def credit_note_model(
    *,
    contact_id: str,
    currency: str,
    amount: Decimal,
    description: str,
    reference: str,
    issue_date: date,
    account_code: str,
) -> Any:
    from xero_python.accounting import Contact, CurrencyCode, LineAmountTypes
    from xero_python.accounting import CreditNote as XeroCreditNote

    return XeroCreditNote(
        type="ACCRECCREDIT",
        contact=Contact(contact_id=contact_id),
        date=issue_date,
        line_amount_types=LineAmountTypes.NOTAX,
        line_items=[fee_line_model(description, amount, account_code)],
        reference=reference,
        currency_code=CurrencyCode(currency.upper()),
        status="AUTHORISED",
    )


def allocation_model(*, invoice_id: str, amount: Decimal, on: date) -> Any:
    from xero_python.accounting import Allocation as XeroAllocation
    from xero_python.accounting import Allocations
    from xero_python.accounting import Invoice as XeroInvoice

    return Allocations(
        allocations=[XeroAllocation(invoice=XeroInvoice(invoice_id=invoice_id), amount=amount, date=on)]
    )


def history_model(text: str) -> Any:
    from xero_python.accounting import HistoryRecord, HistoryRecords

    return HistoryRecords(history_records=[HistoryRecord(details=text)])
