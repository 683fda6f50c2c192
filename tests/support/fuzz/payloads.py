"""API payloads: QuickBooks and Xero records from realistic templates, mutated, into each connector's
page mapper. No exception escapes; a bad record is quarantined with a reason; a survivor is sane."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from connectors.base import Entity, Quarantined
from connectors.quickbooks.mapping import map_records as map_quickbooks
from connectors.xero.mapping import map_records as map_xero
from policies.model.ledger import CreditNote, Customer, Invoice, Payment
from policies.model.money import Money, round_half_up
from tests.support.fuzz.values import HEADER_BREAKERS, INJECTION, Draw, containers, mutate_list, odd_scalar

MS_DATE = "/Date(1767225600000+0000)/"  # 2026-01-01

XERO_TEMPLATES: dict[str, dict[str, Any]] = {
    "invoice": {
        "Type": "ACCREC",
        "InvoiceID": "6e4e0a36-7b5c-4f39-9d62-1f0a0c7a2b11",
        "InvoiceNumber": "INV-0042",
        "Reference": "PO 77",
        "Contact": {"ContactID": "c0a1b2c3-0000-4000-8000-000000000001", "Name": "Dupont SARL"},
        "Date": MS_DATE,
        "DueDate": "2026-01-31T00:00:00",
        "Status": "AUTHORISED",
        "LineAmountTypes": "Exclusive",
        "LineItems": [
            {
                "Description": "Consulting",
                "Quantity": 2,
                "UnitAmount": "500.00",
                "LineAmount": "1000.00",
                "TaxAmount": "200.00",
            },
            {"Description": "[relance fee] Late fee", "LineAmount": "15.00"},
        ],
        "SubTotal": "1015.00",
        "TotalTax": "200.00",
        "Total": "1215.00",
        "AmountDue": "1215.00",
        "AmountPaid": "0.00",
        "CurrencyCode": "EUR",
        "SentToContact": True,
        "UpdatedDateUTC": "/Date(1767312000000+0000)/",
    },
    "payment": {
        "PaymentID": "p0000000-0000-4000-8000-000000000001",
        "Date": MS_DATE,
        "Amount": "500.00",
        "Status": "AUTHORISED",
        "Invoice": {
            "InvoiceID": "6e4e0a36-7b5c-4f39-9d62-1f0a0c7a2b11",
            "CurrencyCode": "EUR",
            "Contact": {"ContactID": "c0a1b2c3-0000-4000-8000-000000000001"},
        },
        "UpdatedDateUTC": "/Date(1767312000000+0000)/",
    },
    "customer": {
        "ContactID": "c0a1b2c3-0000-4000-8000-000000000001",
        "Name": "Dupont SARL",
        "EmailAddress": "compta@dupont.example",
        "ContactStatus": "ACTIVE",
        "DefaultCurrency": "EUR",
        "Addresses": [{"AddressType": "POBOX", "Country": "FR"}],
        "ContactPersons": [
            {"FirstName": "Ana", "EmailAddress": "ana@dupont.example", "IncludeInEmails": True}
        ],
        "ContactGroups": [{"Name": "relance:kind=b2b"}, {"Name": "relance:lang=fr"}, {"Name": "key"}],
        "UpdatedDateUTC": "/Date(1767312000000+0000)/",
    },
    "credit_note": {
        "CreditNoteID": "cn000000-0000-4000-8000-000000000001",
        "CreditNoteNumber": "CN-0007",
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": "c0a1b2c3-0000-4000-8000-000000000001"},
        "Date": "2026-01-15",
        "Status": "AUTHORISED",
        "Total": "120.00",
        "RemainingCredit": "20.00",
        "CurrencyCode": "EUR",
        "Allocations": [
            {"Amount": "100.00", "Invoice": {"InvoiceID": "6e4e0a36-7b5c-4f39-9d62-1f0a0c7a2b11"}}
        ],
        "UpdatedDateUTC": "/Date(1767312000000+0000)/",
    },
}

QUICKBOOKS_TEMPLATES: dict[str, dict[str, Any]] = {
    "invoice": {
        "Id": "130",
        "SyncToken": "0",
        "DocNumber": "1037",
        "TxnDate": "2026-01-01",
        "DueDate": "2026-01-31",
        "CustomerRef": {"value": "58", "name": "Dupont SARL"},
        "CurrencyRef": {"value": "EUR", "name": "Euro"},
        "Line": [
            {
                "Id": "1",
                "LineNum": 1,
                "Amount": 1000.0,
                "DetailType": "SalesItemLineDetail",
                "Description": "Consulting",
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
            },
            {"Amount": 1000.0, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
        ],
        "TxnTaxDetail": {"TotalTax": 200.0},
        "TotalAmt": 1200.0,
        "Balance": 1200.0,
        "EmailStatus": "EmailSent",
        "BillEmail": {"Address": "compta@dupont.example"},
        "DeliveryInfo": {"DeliveryType": "Email", "DeliveryTime": "2026-01-01T10:00:00-08:00"},
        "PrivateNote": "PO 77",
        "MetaData": {
            "CreateTime": "2026-01-01T09:00:00-08:00",
            "LastUpdatedTime": "2026-01-02T09:00:00-08:00",
        },
    },
    "payment": {
        "Id": "201",
        "SyncToken": "0",
        "TxnDate": "2026-01-20",
        "CustomerRef": {"value": "58", "name": "Dupont SARL"},
        "CurrencyRef": {"value": "EUR"},
        "TotalAmt": 500.0,
        "UnappliedAmt": 0,
        "Line": [{"Amount": 500.0, "LinkedTxn": [{"TxnId": "130", "TxnType": "Invoice"}]}],
        "MetaData": {
            "CreateTime": "2026-01-20T09:00:00-08:00",
            "LastUpdatedTime": "2026-01-20T09:00:00-08:00",
        },
    },
    "customer": {
        "Id": "58",
        "SyncToken": "0",
        "DisplayName": "Dupont SARL",
        "CompanyName": "Dupont SARL",
        "Active": True,
        "PrimaryEmailAddr": {"Address": "compta@dupont.example"},
        "BillAddr": {"Country": "FR", "City": "Paris"},
        "CurrencyRef": {"value": "EUR"},
        "Balance": 1200.0,
        "Notes": "relance: kind=b2b lang=fr tags=key",
        "MetaData": {
            "CreateTime": "2026-01-01T09:00:00-08:00",
            "LastUpdatedTime": "2026-01-02T09:00:00-08:00",
        },
    },
    "credit_note": {
        "Id": "301",
        "SyncToken": "0",
        "DocNumber": "CM-7",
        "TxnDate": "2026-01-15",
        "CustomerRef": {"value": "58"},
        "CurrencyRef": {"value": "EUR"},
        "TotalAmt": 120.0,
        "RemainingCredit": 20.0,
        "Line": [{"Amount": 120.0, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": {}}],
        "MetaData": {
            "CreateTime": "2026-01-15T09:00:00-08:00",
            "LastUpdatedTime": "2026-01-15T09:00:00-08:00",
        },
    },
}

ODD_PAYLOAD_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    -1200.5,
    "-1200.50",
    1e308,
    "1e400",
    "-1e400",
    10**30,
    str(10**30),
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "sNaN",
    "1,200.00",
    "12.3.4",
    "",
    " ",
    "\x00",
    "\u202eevil\u202c",
    "zero\u200bwidth\u200d",
    "😀💸",
    "line\r\nBcc: victim@example.com",
    "name\nX-Injected: 1",
    "cr\ronly",
    "sep\u2028arator\u2029",
    "x" * 2000,
    "2026-02-30",
    "2026-13-01",
    "31/01/2026",
    "01/31/2026",
    "2026-1-1",
    "20260131",
    "/Date(abc)/",
    "/Date(99999999999999999999)/",
    "/Date(-62135596800001+0000)/",
    "/Date(253402300800000+0000)/",
    "0001-01-01",
    "9999-12-31T23:59:59",
    "2026-01-01T00:00:00+25:00",
    [],
    [None],
    [[None, [None]]],
    {},
    {"value": None},
    {"Address": None},
    {"Address": "evil@example.com\r\nBcc: victim@example.com"},
    {"value": "EUR\r\n"},
    {"nested": {"null": None}},
)


def _json_scalar_for(draw: Draw) -> Any:
    return odd_scalar(draw, ODD_PAYLOAD_VALUES, kinds=7, text_size=20, int_bound=10**32, specials=False)


def _mutate_record(draw: Draw, record: Any) -> Any:
    _, container = draw(st.sampled_from(containers(record)))
    operation = draw(
        st.sampled_from(["drop", "swap", "swap", "swap", "null", "wrap", "rename", "empty", "inject"])
    )
    if isinstance(container, dict):
        if not container:
            container["x"] = _json_scalar_for(draw)
            return record
        key = draw(st.sampled_from(sorted(container)))
        if operation == "inject":  # a header breaker inside text, e.g. a name or an email address
            texts = sorted(k for k, v in container.items() if isinstance(v, str)) or [key]
            key = draw(st.sampled_from(texts))
            breaker = draw(st.sampled_from((*HEADER_BREAKERS, "\r\n")))
            container[key] = f"{container[key]}{breaker}{draw(st.sampled_from(INJECTION))}"
        elif operation == "drop":
            del container[key]
        elif operation == "swap":
            container[key] = _json_scalar_for(draw)
        elif operation == "null":
            container[key] = None
        elif operation == "wrap":
            container[key] = [container[key]]
        elif operation == "rename":
            container[key.lower()] = container.pop(key)
        else:
            container[key] = copy.deepcopy(draw(st.sampled_from([{}, [], "", None])))
    else:
        mutate_list(draw, container, operation, _json_scalar_for, lambda item: [item])
    return record


def _loads(text: str) -> Any:
    """How the connectors decode JSON: numbers as Decimal so no float ever holds money."""
    return json.loads(text, parse_float=Decimal)


@st.composite
def raw_records(draw: Draw, templates: Mapping[str, Mapping[str, Any]], entity: str) -> Any:
    """One raw JSON record of `entity` as the connector would see it after decoding, mutated; or an
    undecodable body (truncated JSON), returned as the exception-free fallback the SDK would give: the
    raw text itself (a record that is not an object)."""
    record: Any = json.loads(json.dumps(templates[entity]))  # deep copy, JSON types only
    for _ in range(draw(st.integers(0, 4))):
        record = _mutate_record(draw, record)
    how = draw(st.integers(0, 9))
    text = json.dumps(record, ensure_ascii=draw(st.booleans()))
    if how == 0:  # truncated on the wire: the page decoder gets a broken body
        cut = draw(st.integers(0, max(len(text) - 1, 0)))
        try:
            return _loads(text[:cut])
        except ValueError:
            return text[:cut]
    if how == 1:  # NaN/Infinity literals (Python's json accepts them, JavaScript's does not)
        text = text.replace('"Total": "1215.00"', '"Total": NaN').replace(
            '"TotalAmt": 1200.0', '"TotalAmt": Infinity'
        )
    if how == 2:  # a number too big for a double
        text = re.sub(r'"(Amount|Total|TotalAmt|Balance|AmountDue)": [^,}]+', r'"\1": 1e400', text, count=1)
    try:
        return _loads(text)
    except ValueError:
        return text


# One connector's page mapper: (entity, rows) -> (records, deleted ids, quarantined).
PageMapper = Callable[[Entity, list[Any]], tuple[list[Any], list[str], list[Quarantined]]]


@dataclasses.dataclass
class MapperUnderTest:
    """One connector's page mapper, with the templates its fuzzed records start from."""

    ledger: str
    templates: Mapping[str, Mapping[str, Any]]
    map_page: PageMapper


def xero_mapper() -> MapperUnderTest:
    return MapperUnderTest("xero", XERO_TEMPLATES, map_xero)


def quickbooks_mapper() -> MapperUnderTest:
    return MapperUnderTest("quickbooks", QUICKBOOKS_TEMPLATES, _quickbooks_page)


def _quickbooks_page(entity: Entity, rows: list[Any]) -> tuple[list[Any], list[str], list[Quarantined]]:
    """QuickBooks maps a page to (records, quarantined): its deletions come from CDC, not from pages."""
    records, quarantined = map_quickbooks(entity, rows)
    return list(records), [], quarantined


ENTITIES: tuple[Entity, ...] = ("invoice", "payment", "customer", "credit_note")


def _finite_decimal(value: Any, where: str, currency: str = "EUR") -> None:
    """Finite, and usable: the engine rounds every amount to the minor unit (1E+400 is finite but
    cannot be quantized at Decimal's default precision, so it would crash the planner later)."""
    assert isinstance(value, Decimal), f"{where}: {value!r} is not a Decimal"
    assert value.is_finite(), f"{where}: {value!r} is not finite"
    try:
        round_half_up(value, currency)
    except ArithmeticError:
        raise AssertionError(f"{where}: {value!r} cannot be rounded to the minor unit") from None


def _money(value: Any, where: str) -> None:
    assert isinstance(value, Money), f"{where}: {value!r} is not Money"
    assert isinstance(value.currency, str) and re.fullmatch(r"[A-Z]{3}", value.currency), (
        f"{where}: currency {value.currency!r}"
    )
    _finite_decimal(value.amount, where, value.currency)


def _real_date(value: Any, where: str) -> None:
    assert isinstance(value, date) and not isinstance(value, datetime), f"{where}: {value!r} is not a date"


def _header_safe(value: Any, where: str) -> None:
    """No control character and nothing str.splitlines() breaks at (CR, LF, NUL, NEL, U+2028...)."""
    assert isinstance(value, str), f"{where}: {value!r} is not text"
    bad = [char for char in value if unicodedata.category(char) in ("Cc", "Zl", "Zp")]
    assert not bad, f"{where}: {value!r} carries {bad[0]!r}, which would break an email header"


def check_sane(record: Any) -> None:
    """A record that survived mapping holds only values the engine can trust."""
    if isinstance(record, Customer):
        assert record.id, "customer without id"
        _header_safe(record.name, f"customer {record.id} name")
        for address in record.emails:
            _header_safe(address, f"customer {record.id} email")
        return
    if isinstance(record, Invoice):
        where = f"invoice {record.id}"
        assert record.id and record.customer_id, f"{where}: missing ids"
        _real_date(record.issue_date, f"{where} issue date")
        _real_date(record.due_date, f"{where} due date")
        _money(record.total, f"{where} total")
        _money(record.balance, f"{where} balance")
        for line in record.lines:
            _finite_decimal(line.amount, f"{where} line")
        return
    if isinstance(record, Payment):
        where = f"payment {record.id}"
        _real_date(record.date, f"{where} date")
        _money(record.amount, f"{where} amount")
        for allocation in record.allocations:
            assert allocation.invoice_id, f"{where}: allocation without invoice"
            _finite_decimal(allocation.amount, f"{where} allocation")
        return
    if isinstance(record, CreditNote):
        where = f"credit note {record.id}"
        _real_date(record.date, f"{where} date")
        _money(record.total, f"{where} total")
        _money(record.remaining, f"{where} remaining")
        for allocation in record.allocations:
            _finite_decimal(allocation.amount, f"{where} allocation")
        return
    raise AssertionError(f"mapper returned {type(record).__name__}, not a ledger record")


def check_payload(mapper: MapperUnderTest, entity: Entity, raw: Any) -> str:
    """'mapped', 'deleted' or 'quarantined'; AssertionError when a property fails; any other exception
    escaping the page mapper is a crash."""
    records, deleted, quarantined = mapper.map_page(entity, [raw])
    outcomes = len(records) + len(deleted) + len(quarantined)
    assert outcomes == 1, (
        f"one record in, {outcomes} outcomes out ({records!r}, {deleted!r}, {quarantined!r})"
    )
    if quarantined:
        entry = quarantined[0]
        assert isinstance(entry.reason, str) and entry.reason.strip(), (
            f"quarantined without a reason: {entry!r}"
        )
        assert entry.entity == entity, entry
        assert isinstance(entry.raw, str), entry
        return "quarantined"
    if deleted:
        assert all(isinstance(item, str) and item for item in deleted), deleted
        return "deleted"
    check_sane(records[0])
    return "mapped"


def check_page(mapper: MapperUnderTest, entity: Entity, rows: list[Any]) -> tuple[int, int]:
    """A page with bad records among good ones still yields every good one, in order."""
    good_raw = json.loads(json.dumps(mapper.templates[entity]))
    expected = mapper.map_page(entity, [good_raw])[0]
    assert len(expected) == 1, f"the {mapper.ledger} {entity} template itself does not map: {expected!r}"
    page = [good_raw, *rows, good_raw]
    records, deleted, quarantined = mapper.map_page(entity, page)
    assert len(records) + len(deleted) + len(quarantined) == len(page), "records lost or invented"
    assert records[0] == expected[0] and records[-1] == expected[0], "good records did not survive the page"
    for record in records:
        check_sane(record)
    return len(records), len(quarantined)
