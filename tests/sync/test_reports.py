"""sync.reports: the collectability curve (seed 003), aging buckets, expected recovery and DSO."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from policies.model.ledger import Invoice, InvoiceStatus, LedgerSnapshot
from policies.model.money import Money
from sync.reports import BUCKETS, aging, bucket_for, collectability, days_sales_outstanding

AS_OF = date(2026, 6, 30)


def invoice(
    number: str,
    *,
    due_days_ago: int,
    balance: str,
    total: str | None = None,
    currency: str = "EUR",
    status: InvoiceStatus = InvoiceStatus.OPEN,
    issued_days_before_due: int = 30,
) -> Invoice:
    due = AS_OF - timedelta(days=due_days_ago)
    return Invoice(
        id=number,
        number=number,
        customer_id="c1",
        issue_date=due - timedelta(days=issued_days_before_due),
        due_date=due,
        currency=currency,
        total=Money(Decimal(total or balance), currency),
        balance=Money(Decimal(balance), currency),
        status=status,
    )


def snapshot(*invoices: Invoice) -> LedgerSnapshot:
    return LedgerSnapshot(customers={}, invoices={i.id: i for i in invoices}, payments={}, credit_notes={})


# ---------------------------------------------------------------- the curve


def test_collectability_anchors() -> None:
    assert collectability(0) == Decimal(1)
    assert collectability(-30) == Decimal(1)  # not due yet
    assert collectability(90) == Decimal("0.74")  # 26% never paid at 90 days
    seven_months = (date(2026, 8, 1) - date(2026, 1, 1)).days + 1  # 213 days
    assert collectability(seven_months) < Decimal("0.50")
    assert collectability(seven_months - 30) > Decimal("0.50")


def test_collectability_falls_steadily_to_zero() -> None:
    values = [collectability(days) for days in range(0, 2000)]
    assert all(later <= earlier for earlier, later in itertools.pairwise(values))
    assert all(Decimal(0) <= value <= Decimal(1) for value in values)
    assert values[-1] == 0
    # Early on, more than a point lost per week (seed 003: "more than one per cent a week").
    assert Decimal("0.01") < collectability(0) - collectability(7) < Decimal("0.03")
    # After seven months, one point a week.
    assert collectability(220) - collectability(227) == Decimal("0.01")


@pytest.mark.parametrize(
    ("days_late", "bucket"),
    [
        (-40, "not due"),
        (0, "not due"),
        (1, "1-30"),
        (30, "1-30"),
        (31, "31-60"),
        (60, "31-60"),
        (61, "61-90"),
        (90, "61-90"),
        (91, "91-180"),
        (180, "91-180"),
        (181, "181+"),
        (5000, "181+"),
    ],
)
def test_buckets(days_late: int, bucket: str) -> None:
    assert bucket_for(days_late) == bucket


# ---------------------------------------------------------------- aging


def test_aging_buckets_and_expected_recovery() -> None:
    report = aging(
        snapshot(
            invoice("A", due_days_ago=-10, balance="1000.00"),
            invoice("B", due_days_ago=0, balance="500.00"),
            invoice("C", due_days_ago=90, balance="100.00"),
            invoice("D", due_days_ago=75, balance="200.00", total="300.00"),  # part paid
            invoice("E", due_days_ago=600, balance="50.00"),
            invoice("F", due_days_ago=20, balance="0.00", total="80.00", status=InvoiceStatus.PAID),
            invoice("G", due_days_ago=20, balance="70.00", status=InvoiceStatus.VOID),
            invoice("H", due_days_ago=20, balance="70.00", status=InvoiceStatus.DRAFT),
            invoice("I", due_days_ago=45, balance="333.33", currency="GBP"),
        ),
        AS_OF,
    )
    rows = {(row["currency"], row["bucket"]): row for row in report.rows()}
    assert len(rows) == 2 * len(BUCKETS)  # every bucket for every currency, empty ones too
    assert rows[("EUR", "not due")] == {
        "currency": "EUR",
        "bucket": "not due",
        "invoices": 2,
        "balance": "1500.00",
        "expected_recovery": "1500.00",
    }
    sixty_ninety = rows[("EUR", "61-90")]
    assert sixty_ninety["invoices"] == 2 and sixty_ninety["balance"] == "300.00"
    expected = Decimal("100") * Decimal("0.74") + Decimal("200") * collectability(75)
    assert Decimal(sixty_ninety["expected_recovery"]) == expected.quantize(Decimal("0.01"))
    assert rows[("EUR", "181+")]["expected_recovery"] == "0.00"  # 600 days late: nothing expected
    assert rows[("EUR", "1-30")]["invoices"] == 0  # paid, void and draft are not receivables
    assert rows[("GBP", "31-60")]["invoices"] == 1 and rows[("GBP", "31-60")]["balance"] == "333.33"

    payload = report.to_json()
    assert payload["as_of"] == "2026-06-30" and payload["credit_limit_breaches"] == []
    assert set(payload["dso_days"]) == {"EUR", "GBP"}


def test_dso() -> None:
    # Sales in the last 90 days: 9,000 (issued in the window); receivable: 3,000 open -> 30 days.
    issued_recently: dict[str, Any] = dict(issued_days_before_due=30)
    data = snapshot(
        invoice("A", due_days_ago=0, balance="3000.00", **issued_recently),  # issued 30 days ago, open
        invoice(
            "B", due_days_ago=10, balance="0", total="6000.00", status=InvoiceStatus.PAID, **issued_recently
        ),
        invoice("C", due_days_ago=200, balance="0", total="99999", status=InvoiceStatus.PAID),  # outside
        invoice("D", due_days_ago=0, balance="5000.00", status=InvoiceStatus.VOID, **issued_recently),
    )
    assert days_sales_outstanding(data, AS_OF) == {"EUR": Decimal("30.0")}
    # A shorter window that sees no sales: DSO is undefined, not infinite.
    assert days_sales_outstanding(data, AS_OF, window_days=10) == {"EUR": None}
    assert aging(data, AS_OF).to_json()["dso_days"] == {"EUR": "30.0"}
