"""QuickBooks Online JSON <-> the neutral ledger model.

Field names follow Intuit's Finance.xsd and real responses (Invoice.Line[SalesItemLineDetail],
CustomerRef, TxnDate, DueDate, TotalAmt, Balance, CurrencyRef, EmailStatus, DeliveryInfo,
LinkedTxn, MetaData.LastUpdatedTime...).

Conventions relance adds on top of QBO (QBO has no field for them):
- customer kind, tags and notice language live in the customer's `Notes`, on one line:
  ``relance: kind=b2c; tags=key,no-dunning; lang=fr`` (any part optional; other text in Notes is
  left alone). Absent language means "the company's language" (None in the neutral model).
- a fee line relance added starts its Description with FEE_MARKER ("[relance fee]").
- a voided invoice is what QBO returns after operation=void: TotalAmt 0 and PrivateNote "Voided".
- a credit memo applied to one invoice links it through LinkedTxn (TxnType Invoice); the applied
  amount is TotalAmt - RemainingCredit. With several linked invoices the split is unknown, so no
  allocation is reported (the invoices' balances still say what is owed).

Reading is defensive: `map_records` turns a record that cannot be read into a Quarantined entry,
never an exception, so one malformed record never stops a pull.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
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
from policies.model.money import Money, minor_unit

FEE_MARKER = "[relance fee]"
NOTES_PREFIX = "relance:"
VOIDED_NOTE = "Voided"

QBO_ENTITY: dict[Entity, str] = {
    "customer": "Customer",
    "invoice": "Invoice",
    "payment": "Payment",
    "credit_note": "CreditMemo",
}
NEUTRAL_ENTITY: dict[str, Entity] = {qbo: neutral for neutral, qbo in QBO_ENTITY.items()}

_COUNTRY_NAMES = {
    "FRANCE": "FR",
    "UNITED KINGDOM": "GB",
    "UK": "GB",
    "GREAT BRITAIN": "GB",
    "ENGLAND": "GB",
    "GERMANY": "DE",
    "DEUTSCHLAND": "DE",
    "UNITED STATES": "US",
    "USA": "US",
    "CANADA": "CA",
    "AUSTRALIA": "AU",
    "IRELAND": "IE",
    "BELGIUM": "BE",
    "BELGIQUE": "BE",
    "SWITZERLAND": "CH",
    "SPAIN": "ES",
    "ITALY": "IT",
    "NETHERLANDS": "NL",
    "AUSTRIA": "AT",
    "LUXEMBOURG": "LU",
    "NEW ZEALAND": "NZ",
}
_RELANCE_NOTES = re.compile(r"^\s*relance:(?P<body>.*)$", re.IGNORECASE | re.MULTILINE)


class MappingError(ValueError):
    """A QBO record lacks a field relance needs, or has one it cannot read."""


# ---------------------------------------------------------------- primitives


def _require(data: Mapping[str, Any], key: str) -> Any:
    value = data.get(key)
    if value is None or value == "":
        raise MappingError(f"missing {key}")
    return value


def _ref(data: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    ref = data.get(key)
    if isinstance(ref, Mapping) and ref.get("value") not in (None, ""):
        return str(ref["value"])
    if required:
        raise MappingError(f"missing {key}.value")
    return None


def parse_amount(value: Any, field: str = "amount") -> Decimal:
    if isinstance(value, bool) or value is None:
        raise MappingError(f"{field} is not a number")
    try:
        if isinstance(value, float):
            amount = Decimal(repr(value))  # SDK without use_decimal: the shortest repr keeps the digits
        else:
            amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise MappingError(f"{field} is not a number: {str(value)[:40]!r}") from None
    if not amount.is_finite():
        raise MappingError(f"{field} is not a finite number")
    return amount


def _money(value: Any, currency: str, field: str) -> Money:
    amount = checked_amount(parse_amount(value, field), currency, field)
    digits = minor_unit(currency)
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent < digits:
        amount = amount.quantize(Decimal(1).scaleb(-digits))  # exact: only adds zeros
    return Money(amount, currency)


def parse_date(value: Any, field: str) -> date:
    if not isinstance(value, str):
        raise MappingError(f"{field} is missing or not a date")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise MappingError(f"{field} is not a date: {value[:40]!r}") from None


def parse_datetime(value: Any) -> datetime | None:
    """QBO timestamps ("2020-09-29T04:46:06-07:00"), as aware UTC datetimes; None if unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_datetime(moment: datetime) -> str:
    """A QBO timestamp: whole seconds with an offset."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.replace(microsecond=0).isoformat()


def _currency(data: Mapping[str, Any]) -> str:
    currency = _ref(data, "CurrencyRef")
    assert currency is not None
    if not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise MappingError(f"CurrencyRef is not an ISO currency: {currency[:10]!r}")
    return currency.upper()


def _updated_at(data: Mapping[str, Any]) -> datetime | None:
    meta = data.get("MetaData")
    return parse_datetime(meta.get("LastUpdatedTime")) if isinstance(meta, Mapping) else None


def country_code(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().upper()
    if re.fullmatch(r"[A-Z]{2}", text):
        return "GB" if text == "UK" else text
    return _COUNTRY_NAMES.get(text)


# ---------------------------------------------------------------- customer notes convention


def parse_relance_notes(notes: Any) -> dict[str, str]:
    """{"kind": ..., "tags": ..., "lang": ...} from the `relance:` line of Customer.Notes."""
    if not isinstance(notes, str):
        return {}
    found = _RELANCE_NOTES.search(notes)
    if not found:
        return {}
    result: dict[str, str] = {}
    for part in found["body"].split(";"):
        key, sep, value = part.partition("=")
        if sep:
            result[key.strip().lower()] = value.strip()
    return result


def format_relance_notes(
    kind: CustomerKind | None, tags: Iterable[str], language: str | None, existing: str | None = None
) -> str | None:
    """Customer.Notes with the `relance:` line set (other lines kept)."""
    parts = []
    if kind is not None:
        parts.append(f"kind={kind.value}")
    tag_list = [t for t in tags if t]
    if tag_list:
        parts.append(f"tags={','.join(tag_list)}")
    if language:
        parts.append(f"lang={language}")
    kept = [line for line in (existing or "").splitlines() if not _RELANCE_NOTES.match(line)]
    if parts:
        kept.append(f"{NOTES_PREFIX} " + "; ".join(parts))
    text = "\n".join(kept).strip()
    return text or None


# ---------------------------------------------------------------- QBO -> neutral


def customer_from_qbo(data: Mapping[str, Any]) -> Customer:
    customer_id = str(_require(data, "Id"))
    name = str(data.get("DisplayName") or data.get("CompanyName") or data.get("FullyQualifiedName") or "")
    if not name:
        raise MappingError("missing DisplayName")
    name = header_safe_name(name, "DisplayName")
    email_field = data.get("PrimaryEmailAddr")
    address = email_field.get("Address") if isinstance(email_field, Mapping) else None
    text = "" if address is None else str(address)  # a non-text Address is dropped like any bad address
    emails = usable_email_addresses(
        (e.strip() for e in re.split(r"[,;]", text) if e.strip()), record=f"Customer {customer_id}"
    )
    bill = data.get("BillAddr")
    country = country_code(bill.get("Country")) if isinstance(bill, Mapping) else None
    convention = parse_relance_notes(data.get("Notes"))
    kind_text = convention.get("kind", "").lower()
    kind = CustomerKind(kind_text) if kind_text in ("b2b", "b2c") else None
    tags = tuple(t.strip() for t in convention.get("tags", "").split(",") if t.strip())
    language = convention.get("lang", "").lower() or None
    currency = _currency(data) if data.get("CurrencyRef") else None
    active = data.get("Active", True)
    return Customer(
        id=customer_id,
        name=name,
        emails=emails,
        language=language,
        country=country,
        kind=kind,
        tags=tags,
        currency=currency,
        active=active is not False and str(active).lower() != "false",
        updated_at=_updated_at(data),
    )


def _invoice_lines(data: Mapping[str, Any], currency: str) -> tuple[InvoiceLine, ...]:
    lines = data.get("Line") or []
    if not isinstance(lines, list):
        raise MappingError("Line is not a list")
    result = []
    for line in lines:
        if not isinstance(line, Mapping):
            raise MappingError("a Line entry is not an object")
        if line.get("DetailType") not in ("SalesItemLineDetail", "DescriptionOnly", "GroupLineDetail"):
            continue  # SubTotal / Discount lines are derived, not items
        description = line.get("Description")
        if not description:
            detail = line.get("SalesItemLineDetail")
            item = detail.get("ItemRef") if isinstance(detail, Mapping) else None
            description = item.get("name") if isinstance(item, Mapping) else ""
        amount = _money(line.get("Amount", 0), currency, "Line.Amount").amount
        text = str(description or "")
        result.append(InvoiceLine(text, amount, is_relance_fee=text.startswith(FEE_MARKER)))
    return tuple(result)


def is_voided(data: Mapping[str, Any]) -> bool:
    note = data.get("PrivateNote")
    total = data.get("TotalAmt")
    try:
        zero = total is not None and parse_amount(total) == 0
    except MappingError:
        zero = False
    return isinstance(note, str) and note.startswith(VOIDED_NOTE) and zero


def invoice_from_qbo(data: Mapping[str, Any]) -> Invoice:
    invoice_id = str(_require(data, "Id"))
    currency = _currency(data)
    issue = parse_date(data.get("TxnDate"), "TxnDate")
    due = parse_date(data["DueDate"], "DueDate") if data.get("DueDate") else issue
    total = _money(_require(data, "TotalAmt"), currency, "TotalAmt")
    balance = _money(_require(data, "Balance"), currency, "Balance")
    if is_voided(data):
        status = InvoiceStatus.VOID
    elif balance.amount <= 0:
        status = InvoiceStatus.PAID
    else:
        status = InvoiceStatus.OPEN
    delivery = data.get("DeliveryInfo")
    delivered = parse_datetime(delivery.get("DeliveryTime")) if isinstance(delivery, Mapping) else None
    reference = data.get("PrivateNote")
    return Invoice(
        id=invoice_id,
        number=str(data.get("DocNumber") or invoice_id),
        customer_id=str(_ref(data, "CustomerRef")),
        issue_date=issue,
        due_date=due,
        currency=currency,
        total=total,
        balance=balance,
        status=status,
        lines=_invoice_lines(data, currency),
        email_status=str(data["EmailStatus"]) if data.get("EmailStatus") else None,
        last_emailed_at=delivered,
        pay_link=str(data["InvoiceLink"]) if data.get("InvoiceLink") else None,
        reference=str(reference) if reference and status is not InvoiceStatus.VOID else None,
        updated_at=_updated_at(data),
    )


def _linked(line: Mapping[str, Any], txn_type: str) -> list[str]:
    linked = line.get("LinkedTxn") or []
    if not isinstance(linked, list):
        raise MappingError("LinkedTxn is not a list")
    return [
        str(item["TxnId"])
        for item in linked
        if isinstance(item, Mapping) and item.get("TxnType") == txn_type and item.get("TxnId")
    ]


def payment_from_qbo(data: Mapping[str, Any]) -> Payment:
    payment_id = str(_require(data, "Id"))
    currency = _currency(data)
    allocations = []
    lines = data.get("Line") or []
    if not isinstance(lines, list):
        raise MappingError("Line is not a list")
    for line in lines:
        if not isinstance(line, Mapping):
            raise MappingError("a Line entry is not an object")
        invoices = _linked(line, "Invoice")
        if invoices:
            amount = _money(_require(line, "Amount"), currency, "Line.Amount").amount
            allocations.append(Allocation(invoices[0], amount))
    return Payment(
        id=payment_id,
        customer_id=str(_ref(data, "CustomerRef")),
        date=parse_date(data.get("TxnDate"), "TxnDate"),
        amount=_money(_require(data, "TotalAmt"), currency, "TotalAmt"),
        allocations=tuple(allocations),
        updated_at=_updated_at(data),
    )


def credit_note_from_qbo(data: Mapping[str, Any]) -> CreditNote:
    note_id = str(_require(data, "Id"))
    currency = _currency(data)
    total = _money(_require(data, "TotalAmt"), currency, "TotalAmt")
    remaining_raw = data.get("RemainingCredit", data.get("Balance", 0))
    remaining = _money(remaining_raw if remaining_raw is not None else 0, currency, "RemainingCredit")
    invoices = _linked(data, "Invoice")
    applied = total.amount - remaining.amount
    allocations = (Allocation(invoices[0], applied),) if len(invoices) == 1 and applied > 0 else ()
    reference = data.get("PrivateNote")
    return CreditNote(
        id=note_id,
        number=str(data.get("DocNumber") or note_id),
        customer_id=str(_ref(data, "CustomerRef")),
        date=parse_date(data.get("TxnDate"), "TxnDate"),
        total=total,
        remaining=remaining,
        allocations=allocations,
        reference=str(reference) if reference else None,
        updated_at=_updated_at(data),
    )


MAPPERS: dict[Entity, Callable[[Mapping[str, Any]], Customer | Invoice | Payment | CreditNote]] = {
    "customer": customer_from_qbo,
    "invoice": invoice_from_qbo,
    "payment": payment_from_qbo,
    "credit_note": credit_note_from_qbo,
}


def _excerpt(record: Any, limit: int = 500) -> str:
    try:
        text = json.dumps(record, default=str, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(record)
    return text[:limit]


def map_records(
    entity: Entity, records: Iterable[Any]
) -> tuple[list[Customer | Invoice | Payment | CreditNote], list[Quarantined]]:
    """Map QBO records of one entity; unreadable ones are quarantined with the reason."""
    mapper = MAPPERS[entity]
    mapped: list[Customer | Invoice | Payment | CreditNote] = []
    quarantined: list[Quarantined] = []
    for record in records:
        record_id = str(record.get("Id")) if isinstance(record, Mapping) and record.get("Id") else None
        try:
            if not isinstance(record, Mapping):
                raise MappingError("not a JSON object")
            mapped.append(mapper(record))
        except (MappingError, KeyError, TypeError, ValueError, AttributeError, ArithmeticError) as error:
            reason = f"{QBO_ENTITY[entity]} {record_id or '?'}: {error}"
            quarantined.append(Quarantined(entity, record_id, reason, _excerpt(record)))
    return mapped, quarantined


# ---------------------------------------------------------------- neutral -> QBO (sandbox seeding)


def _meta(updated: datetime | None, created: datetime | None = None) -> dict[str, str]:
    stamp = format_datetime(updated or datetime.now(UTC))
    return {"CreateTime": format_datetime(created) if created else stamp, "LastUpdatedTime": stamp}


def customer_to_qbo(customer: Customer) -> dict[str, Any]:
    data: dict[str, Any] = {
        "domain": "QBO",
        "sparse": False,
        "Id": customer.id,
        "SyncToken": "0",
        "MetaData": _meta(customer.updated_at),
        "DisplayName": customer.name,
        "CompanyName": customer.name,
        "FullyQualifiedName": customer.name,
        "PrintOnCheckName": customer.name,
        "Active": customer.active,
        "Taxable": False,
        "Job": False,
        "BillWithParent": False,
        "Balance": Decimal(0),
        "BalanceWithJobs": Decimal(0),
        "PreferredDeliveryMethod": "Email",
    }
    if customer.currency:
        data["CurrencyRef"] = {"value": customer.currency, "name": customer.currency}
    if customer.emails:
        data["PrimaryEmailAddr"] = {"Address": ", ".join(customer.emails)}
    if customer.country:
        data["BillAddr"] = {"Id": customer.id, "Country": customer.country}
    notes = format_relance_notes(customer.kind, customer.tags, customer.language)
    if notes:
        data["Notes"] = notes
    return data


DEFAULT_ITEM_REF = {"value": "1", "name": "Services"}  # a new QBO company's "Services" item


def sales_line(
    line_id: str, description: str, amount: Decimal, line_num: int, item_ref: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A SalesItemLineDetail line; QBO refuses sales lines without an ItemRef."""
    return {
        "Id": line_id,
        "LineNum": line_num,
        "Description": description,
        "Amount": amount,
        "DetailType": "SalesItemLineDetail",
        "SalesItemLineDetail": {
            "ItemRef": dict(item_ref or DEFAULT_ITEM_REF),
            "UnitPrice": amount,
            "Qty": 1,
            "TaxCodeRef": {"value": "NON"},
        },
    }


def invoice_to_qbo(invoice: Invoice, customer_name: str, bill_email: str | None) -> dict[str, Any]:
    voided = invoice.status is InvoiceStatus.VOID
    lines = [
        sales_line(str(n), line.description, Decimal(0) if voided else line.amount, n)
        for n, line in enumerate(invoice.lines, start=1)
    ]
    total = Decimal(0) if voided else invoice.total.amount
    lines.append({"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    data: dict[str, Any] = {
        "AllowIPNPayment": False,
        "AllowOnlinePayment": False,
        "AllowOnlineCreditCardPayment": False,
        "AllowOnlineACHPayment": False,
        "domain": "QBO",
        "sparse": False,
        "Id": invoice.id,
        "SyncToken": "0",
        "MetaData": _meta(invoice.updated_at),
        "DocNumber": invoice.number,
        "TxnDate": invoice.issue_date.isoformat(),
        "CurrencyRef": {"value": invoice.currency, "name": invoice.currency},
        "LinkedTxn": [],
        "Line": lines,
        "TxnTaxDetail": {"TotalTax": Decimal(0)},
        "CustomerRef": {"value": invoice.customer_id, "name": customer_name},
        "DueDate": invoice.due_date.isoformat(),
        "TotalAmt": total,
        "ApplyTaxAfterDiscount": False,
        "PrintStatus": "NotSet",
        "EmailStatus": invoice.email_status or "NotSet",
        "Balance": Decimal(0) if voided else invoice.balance.amount,
    }
    if bill_email:
        data["BillEmail"] = {"Address": bill_email}
    if invoice.last_emailed_at is not None:
        data["DeliveryInfo"] = {
            "DeliveryType": "Email",
            "DeliveryTime": format_datetime(invoice.last_emailed_at),
        }
    if voided:
        data["PrivateNote"] = VOIDED_NOTE
    elif invoice.reference:
        data["PrivateNote"] = invoice.reference
    if invoice.pay_link:
        data["InvoiceLink"] = invoice.pay_link
    return data


def payment_to_qbo(payment: Payment, customer_name: str) -> dict[str, Any]:
    applied = sum((a.amount for a in payment.allocations), Decimal(0))
    return {
        "domain": "QBO",
        "sparse": False,
        "Id": payment.id,
        "SyncToken": "0",
        "MetaData": _meta(payment.updated_at),
        "TxnDate": payment.date.isoformat(),
        "CurrencyRef": {"value": payment.amount.currency, "name": payment.amount.currency},
        "CustomerRef": {"value": payment.customer_id, "name": customer_name},
        "TotalAmt": payment.amount.amount,
        "UnappliedAmt": payment.amount.amount - applied,
        "ProcessPayment": False,
        "Line": [
            {"Amount": a.amount, "LinkedTxn": [{"TxnId": a.invoice_id, "TxnType": "Invoice"}]}
            for a in payment.allocations
        ],
    }


def credit_memo_to_qbo(note: CreditNote, customer_name: str) -> dict[str, Any]:
    total = note.total.amount
    data: dict[str, Any] = {
        "domain": "QBO",
        "sparse": False,
        "Id": note.id,
        "SyncToken": "0",
        "MetaData": _meta(note.updated_at),
        "DocNumber": note.number,
        "TxnDate": note.date.isoformat(),
        "CurrencyRef": {"value": note.total.currency, "name": note.total.currency},
        "LinkedTxn": [{"TxnId": a.invoice_id, "TxnType": "Invoice"} for a in note.allocations],
        "Line": [
            sales_line("1", note.reference or "Credit", total, 1),
            {"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
        ],
        "TxnTaxDetail": {"TotalTax": Decimal(0)},
        "CustomerRef": {"value": note.customer_id, "name": customer_name},
        "TotalAmt": total,
        "RemainingCredit": note.remaining.amount,
        "Balance": note.remaining.amount,
        "ApplyTaxAfterDiscount": False,
        "PrintStatus": "NotSet",
        "EmailStatus": "NotSet",
    }
    if note.reference:
        data["PrivateNote"] = note.reference
    return data
