"""Fuzzed QuickBooks and Xero records into each connector's page mapper: no exception escapes, a bad
record is quarantined with a reason, a surviving record is sane, good records on a page survive bad ones.
Generators and checks live in tests/support/fuzz/payloads.py (`python -m bench.fuzz` runs 10,000 per
ledger)."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import Entity
from tests.support.fuzz.gaps import tolerating_known_gaps
from tests.support.fuzz.payloads import (
    ENTITIES,
    MapperUnderTest,
    check_page,
    check_payload,
    quickbooks_mapper,
    raw_records,
    xero_mapper,
)

FUZZ = settings(
    max_examples=150,  # per ledger: 300 in all
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PAGES = settings(FUZZ, max_examples=25)


def _mapper(ledger: str) -> MapperUnderTest:
    try:
        return quickbooks_mapper() if ledger == "quickbooks" else xero_mapper()
    except ImportError as error:
        pytest.skip(f"connectors/{ledger}/mapping.py is not usable yet: {error}")


@pytest.fixture(params=["quickbooks", "xero"])
def mapper(request: pytest.FixtureRequest) -> MapperUnderTest:
    return _mapper(request.param)


def _record(mapper: MapperUnderTest, entity: str, **changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(dict(mapper.templates[entity]))
    record.update(changes)
    return record


@pytest.mark.parametrize("entity", ENTITIES)
def test_templates_map_cleanly(mapper: MapperUnderTest, entity: Entity) -> None:
    """The fuzzer's seeds are good records: otherwise every mutation would only test quarantining."""
    assert check_payload(mapper, entity, _record(mapper, entity)) == "mapped"


@pytest.mark.parametrize("ledger", ["quickbooks", "xero"])
@given(data=st.data())
@FUZZ
def test_fuzzed_record_is_mapped_sanely_or_quarantined(ledger: str, data: st.DataObject) -> None:
    mapper = _mapper(ledger)
    entity = data.draw(st.sampled_from(ENTITIES), label="entity")
    raw = data.draw(raw_records(mapper.templates, entity), label="raw")
    tolerating_known_gaps(lambda: check_payload(mapper, entity, raw))


@pytest.mark.parametrize("ledger", ["quickbooks", "xero"])
@given(data=st.data())
@PAGES
def test_a_page_with_bad_records_still_yields_the_good_ones(ledger: str, data: st.DataObject) -> None:
    mapper = _mapper(ledger)
    entity = data.draw(st.sampled_from(ENTITIES), label="entity")
    rows = data.draw(st.lists(raw_records(mapper.templates, entity), min_size=1, max_size=6), label="rows")
    tolerating_known_gaps(lambda: (check_page(mapper, entity, rows), "ok")[1])


# Hand-picked bad records (the fuzz test reaches them too; these make sure each class is covered).
AMOUNT_FIELD = {"quickbooks": "TotalAmt", "xero": "Total"}
DATE_FIELD = {"quickbooks": "TxnDate", "xero": "Date"}
NAME_FIELD = {"quickbooks": "DisplayName", "xero": "Name"}


@pytest.mark.parametrize(
    "value",
    ["NaN", "Infinity", "-Infinity", "sNaN", "12.3.4", "", None, True, [], {"value": None}, "1,200.00"],
)
def test_unreadable_amount_is_quarantined(mapper: MapperUnderTest, value: Any) -> None:
    raw = _record(mapper, "invoice", **{AMOUNT_FIELD[mapper.ledger]: value})
    assert check_payload(mapper, "invoice", raw) == "quarantined"


@pytest.mark.parametrize(
    "value", ["2026-02-30", "2026-13-01", "31/01/2026", "", None, 20260131, "/Date(abc)/", ["2026-01-01"]]
)
def test_impossible_date_is_quarantined(mapper: MapperUnderTest, value: Any) -> None:
    raw = _record(mapper, "invoice", **{DATE_FIELD[mapper.ledger]: value})
    assert check_payload(mapper, "invoice", raw) == "quarantined"


@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("value", ['{"Id": "1", "Total', "", "null", "[1, 2", 42, None, ["a"]])
def test_truncated_or_non_object_record_is_quarantined(
    mapper: MapperUnderTest, entity: Entity, value: Any
) -> None:
    assert check_payload(mapper, entity, value) == "quarantined"


def test_negative_amount_stays_a_finite_decimal(mapper: MapperUnderTest) -> None:
    raw = _record(mapper, "invoice", **{AMOUNT_FIELD[mapper.ledger]: "-1200.50"})
    records, _, quarantined = mapper.map_page("invoice", [raw])
    if records:
        assert records[0].total.amount == Decimal("-1200.50")
    else:
        assert quarantined and quarantined[0].reason


@pytest.mark.parametrize(
    "name", ["Dupont \u202eSARL\u202c", "Zero\u200bwidth\u200d", "Café 😀💸", "x" * 2000]
)
def test_odd_unicode_names_survive_unchanged(mapper: MapperUnderTest, name: str) -> None:
    records, _, quarantined = mapper.map_page(
        "customer", [_record(mapper, "customer", **{NAME_FIELD[mapper.ledger]: name})]
    )
    assert not quarantined and records[0].name == name


# --- gaps the fuzzer found, now fixed (connectors/values.py holds the shared rules) -------------------


@pytest.mark.parametrize("value", ["1e400", str(10**30), 10**30])
def test_huge_amount_is_quarantined(mapper: MapperUnderTest, value: Any) -> None:
    """1E+400 and 10**30 are finite Decimals, yet cannot be rounded to the cent (and no invoice is that
    big): the record is quarantined with the reason, the page goes on."""
    raw = _record(mapper, "invoice", **{AMOUNT_FIELD[mapper.ledger]: value})
    assert check_payload(mapper, "invoice", raw) == "quarantined"
    _, _, quarantined = mapper.map_page("invoice", [raw])
    assert "out of range" in quarantined[0].reason, quarantined[0].reason


@pytest.mark.parametrize("field", ["name", "email"])
def test_header_breaking_text_does_not_survive_mapping(mapper: MapperUnderTest, field: str) -> None:
    injected = (
        "Dupont\r\nBcc: victim@evil.example" if field == "name" else "a@b.example\r\nBcc: victim@evil.example"
    )
    if field == "name":
        raw = _record(mapper, "customer", **{NAME_FIELD[mapper.ledger]: injected})
    elif mapper.ledger == "quickbooks":
        raw = _record(mapper, "customer", PrimaryEmailAddr={"Address": injected})
    else:
        raw = _record(mapper, "customer", EmailAddress=injected)
    assert check_payload(mapper, "customer", raw) == "mapped"  # the customer is kept, made header-safe
    customer = mapper.map_page("customer", [raw])[0][0]
    if field == "name":
        assert customer.name == "Dupont Bcc: victim@evil.example"  # folded onto one line
    else:
        assert injected not in customer.emails and not any("evil" in email for email in customer.emails)
