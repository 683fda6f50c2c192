"""Shipped rate tables: the issue's facts, carry-forward flagging, policy overrides."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from policies.laws.fr import FR_TAUX_LEGAL, legal_rate
from policies.model.errors import RelanceError
from policies.rates import (
    RateLookup,
    RateRow,
    RateTable,
    half_year_end,
    half_year_start,
    parse_csv,
)
from sync.rulebook import load_rulebook
from tests.support.rules import RULEBOOK

TABLE_NAMES = ("ecb_mro", "de_basiszins", "boe_bank_rate", "fr_taux_legal")  # the shipped tables
load_table = RULEBOOK.table


def fr_legal_rate(on: date) -> RateLookup:
    return legal_rate(RULEBOOK.table(FR_TAUX_LEGAL.name), on)


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_every_table_loads_sorted_with_a_source_per_row(name: str) -> None:
    table = load_table(name)
    dates = [row.effective_from for row in table.rows]
    assert dates == sorted(dates)
    assert all(row.source.strip() for row in table.rows)
    assert load_rulebook().table(name) is table  # read once, cached


# Issue #2 section 3, "Facts to start from" (ECB press releases; Bundesbank; Bank of England; arrêtés).
@pytest.mark.parametrize(
    ("name", "on", "rate"),
    [
        ("ecb_mro", date(2019, 1, 1), "0.00"),
        ("ecb_mro", date(2022, 7, 1), "0.00"),
        ("ecb_mro", date(2023, 1, 1), "2.50"),
        ("ecb_mro", date(2023, 7, 1), "4.00"),
        ("ecb_mro", date(2024, 1, 1), "4.50"),
        ("ecb_mro", date(2024, 7, 1), "4.25"),
        ("ecb_mro", date(2025, 1, 1), "3.15"),
        ("ecb_mro", date(2025, 7, 1), "2.15"),
        ("ecb_mro", date(2026, 1, 1), "2.15"),
        ("de_basiszins", date(2016, 7, 1), "-0.88"),
        ("de_basiszins", date(2022, 12, 31), "-0.88"),
        ("de_basiszins", date(2023, 1, 1), "1.62"),
        ("de_basiszins", date(2023, 7, 1), "3.12"),
        ("de_basiszins", date(2024, 1, 1), "3.62"),
        ("de_basiszins", date(2024, 7, 1), "3.37"),
        ("de_basiszins", date(2025, 1, 1), "2.27"),
        ("de_basiszins", date(2025, 7, 1), "1.27"),
        ("de_basiszins", date(2026, 1, 1), "1.27"),
        ("boe_bank_rate", date(2022, 12, 31), "3.50"),
        ("boe_bank_rate", date(2023, 6, 30), "5.00"),
        ("boe_bank_rate", date(2023, 12, 31), "5.25"),
        ("boe_bank_rate", date(2024, 6, 30), "5.25"),
        ("boe_bank_rate", date(2024, 12, 31), "4.75"),
        ("boe_bank_rate", date(2025, 6, 30), "4.25"),
        ("boe_bank_rate", date(2025, 12, 31), "3.75"),
        ("fr_taux_legal", date(2023, 1, 1), "2.06"),
        ("fr_taux_legal", date(2023, 7, 1), "4.22"),
        ("fr_taux_legal", date(2024, 1, 1), "5.07"),
        ("fr_taux_legal", date(2024, 7, 1), "4.92"),
        ("fr_taux_legal", date(2025, 1, 1), "3.71"),
        ("fr_taux_legal", date(2025, 7, 1), "2.76"),
        ("fr_taux_legal", date(2026, 1, 1), "2.62"),
    ],
)
def test_issue_facts(name: str, on: date, rate: str) -> None:
    found = load_table(name).lookup(on)
    assert found.rate == Decimal(rate)
    assert not found.carried_forward


def test_lookup_inside_a_half_year_returns_the_row_in_force() -> None:
    found = load_table("ecb_mro").lookup(date(2024, 9, 15))
    assert (found.rate, found.effective_from) == (Decimal("4.25"), date(2024, 7, 1))


def test_past_the_last_half_year_is_carried_forward() -> None:
    table = load_table("ecb_mro")
    assert not table.lookup(date(2026, 6, 30)).carried_forward
    later = table.lookup(date(2026, 7, 1))
    assert later.carried_forward
    assert later.rate == Decimal("2.15")
    assert later.effective_from == date(2026, 1, 1)


def test_boe_reference_after_the_last_one_is_carried_forward() -> None:
    table = load_table("boe_bank_rate")
    assert not table.lookup(date(2025, 12, 31)).carried_forward
    assert table.lookup(date(2026, 6, 30)).carried_forward


def test_before_the_first_row_is_a_clear_error() -> None:
    with pytest.raises(RelanceError) as raised:
        load_table("ecb_mro").lookup(date(2010, 1, 1))
    assert "ecb_mro" in str(raised.value)
    assert "interest.rates" in str(raised.value)


def test_overrides_add_and_replace_rows_without_touching_the_shipped_table() -> None:
    shipped = load_table("ecb_mro")
    patched = shipped.with_overrides([
        {"from": "2026-07-01", "rate": "1.90", "source": "ECB press release (test)"},
        {"from": date(2024, 7, 1), "rate": "4.00"},
    ])
    found = patched.lookup(date(2026, 7, 1))
    assert (found.rate, found.source, found.carried_forward) == (
        Decimal("1.90"), "ECB press release (test)", False,
    )
    assert patched.lookup(date(2024, 7, 1)).rate == Decimal("4.00")
    assert "policy override" in patched.lookup(date(2024, 7, 1)).source
    assert shipped.lookup(date(2024, 7, 1)).rate == Decimal("4.25")


@pytest.mark.parametrize(
    "row",
    [{"from": "soon", "rate": "1"}, {"from": "2026-07-01", "rate": "one"}, {"rate": "1.0"},
     {"from": "2026-07-01", "rate": 1.5}],
)
def test_bad_override_rows_are_user_errors(row: dict[str, object]) -> None:
    with pytest.raises(RelanceError) as raised:
        load_table("ecb_mro").with_overrides([row])
    assert "interest.rates" in str(raised.value)


def test_fr_legal_rate_uses_the_half_year() -> None:
    assert fr_legal_rate(date(2024, 3, 10)).rate == Decimal("5.07")
    assert fr_legal_rate(date(2024, 12, 31)).rate == Decimal("4.92")
    assert fr_legal_rate(date(2026, 8, 1)).carried_forward


def test_table_rejects_unsorted_rows_and_bad_csv() -> None:
    with pytest.raises(RelanceError):
        RateTable("x", (RateRow(date(2024, 7, 1), Decimal(1), "a"),
                        RateRow(date(2024, 1, 1), Decimal(2), "b")))
    with pytest.raises(RelanceError, match=r"x\.csv:3"):
        parse_csv("x", "effective_from,rate,source\n2024-01-01,1.0,a\nnot-a-date,2,b\n")
    with pytest.raises(RelanceError, match="unknown rate table"):
        load_table("nope")


def test_half_year_helpers() -> None:
    assert half_year_start(date(2024, 6, 30)) == date(2024, 1, 1)
    assert half_year_start(date(2024, 7, 1)) == date(2024, 7, 1)
    assert half_year_end(date(2024, 2, 29)) == date(2024, 6, 30)
    assert half_year_end(date(2024, 7, 1)) == date(2024, 12, 31)
