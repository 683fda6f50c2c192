"""Regression tests for the bad ledger values the fuzzer found (tests/support/fuzz/payloads.py): exact
messages and behaviours behind the fuzz properties (amounts, names, addresses, huge balances)."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from connectors.quickbooks.mapping import map_records as map_quickbooks
from connectors.values import AMOUNT_LIMIT, address_problem, checked_amount, header_safe_name
from connectors.xero.mapping import map_records as map_xero
from policies.model.ledger import Customer
from tests.support.fuzz.payloads import QUICKBOOKS_TEMPLATES, XERO_TEMPLATES

# --- ledger values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [Decimal("1E+400"), Decimal(10**30), AMOUNT_LIMIT, -AMOUNT_LIMIT, 10**12, Decimal("-1e12")]
)
def test_checked_amount_refuses_what_cannot_be_money(value: Decimal | int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        checked_amount(value, "EUR", "Total")


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), "12", 1.5, True, None])
def test_checked_amount_refuses_non_amounts(value: object) -> None:
    with pytest.raises(ValueError, match="Total"):
        checked_amount(value, "EUR", "Total")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["EUR", "JPY", "BHD", None])
def test_checked_amount_keeps_usable_amounts(currency: str | None) -> None:
    assert checked_amount(Decimal("999999999999.999"), currency) == Decimal("999999999999.999")
    assert checked_amount(-5, currency) == Decimal(-5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Dupont\r\nBcc: x@evil.example", "Dupont Bcc: x@evil.example"),
        ("Dupont\u2028SARL", "Dupont SARL"),
        ("Dupont\x85\x00\tSARL\n", "Dupont SARL"),
        ("  Dupont  SARL ", "  Dupont  SARL "),  # nothing folded: left exactly as the ledger has it
        ("Dupont \u202eSARL\u202c", "Dupont \u202eSARL\u202c"),  # format characters are legitimate
    ],
)
def test_header_safe_name_folds_line_breaks(name: str, expected: str) -> None:
    assert header_safe_name(name) == expected


def test_header_safe_name_refuses_a_name_of_control_characters() -> None:
    with pytest.raises(ValueError, match="empty"):
        header_safe_name("\x00\r\n")


@pytest.mark.parametrize(
    ("address", "usable"),
    [
        ("compta@dupont.example", True),
        ("first.last+tag@sub.dupont.example", True),
        ("zoë@bâtiment.example", True),
        ("a@b.example\r\nBcc: victim@evil.example", False),
        ("a b@dupont.example", False),
        ("a@dupont.example\u2028", False),
        ("a\x00b@dupont.example", False),
        ("Dupont <a@dupont.example>", False),
        ("no-at-sign", False),
        ("a@@dupont.example", False),
        (".a@dupont.example", False),
        ("a@", False),
    ],
)
def test_address_problem(address: str, usable: bool) -> None:
    assert (address_problem(address) is None) is usable


def test_quickbooks_customer_keeps_its_good_addresses_and_reports_the_bad_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = dict(QUICKBOOKS_TEMPLATES["customer"])
    raw["DisplayName"] = "Dupont\nSARL"
    raw["PrimaryEmailAddr"] = {
        "Address": "a@dupont.example, evil@x.example\r\nBcc: v@evil.example; b@dupont.example"
    }
    with caplog.at_level(logging.WARNING, logger="relance.connectors"):
        records, quarantined = map_quickbooks("customer", [raw])
    assert not quarantined
    (customer,) = records
    assert isinstance(customer, Customer)
    assert customer.name == "Dupont SARL"
    assert customer.emails == ("a@dupont.example", "b@dupont.example")
    assert "Customer 58" in caplog.text and "whitespace or a control character" in caplog.text


def test_xero_contact_keeps_its_good_addresses_and_reports_the_bad_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = dict(XERO_TEMPLATES["customer"])
    raw["Name"] = "Dupont\u2029SARL"
    raw["EmailAddress"] = "compta@dupont.example\x85Bcc: victim@evil.example"
    with caplog.at_level(logging.WARNING, logger="relance.connectors"):
        records, _, quarantined = map_xero("customer", [raw])
    assert not quarantined
    assert records[0].name == "Dupont SARL"
    assert records[0].emails == ("ana@dupont.example",)  # the contact person's address survives
    assert "c0a1b2c3-0000-4000-8000-000000000001" in caplog.text


@pytest.mark.parametrize(
    ("mapper", "template", "field"),
    [
        (lambda rows: map_quickbooks("invoice", rows)[1], QUICKBOOKS_TEMPLATES["invoice"], "Balance"),
        (lambda rows: map_xero("invoice", rows)[2], XERO_TEMPLATES["invoice"], "AmountDue"),
    ],
    ids=["quickbooks", "xero"],
)
def test_a_huge_balance_quarantines_only_its_record(mapper: object, template: dict, field: str) -> None:
    bad = {**template, field: Decimal("1E+400")}
    quarantined = mapper([template, bad, template])  # type: ignore[operator]
    assert len(quarantined) == 1
    assert field in quarantined[0].reason and "out of range" in quarantined[0].reason
