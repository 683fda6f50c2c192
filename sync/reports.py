"""Receivables reports: aging buckets, DSO, credit-limit breaches, expected recovery.

Pure functions over a LedgerSnapshot; the CLI renders them as a table, CSV or JSON.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from policies.model.ledger import Invoice, InvoiceStatus, LedgerSnapshot
from policies.model.money import round_half_up

# Collectability by days late (seed 003, Commercial Law League survey figures): the chance of
# collecting falls about one point per week once late; 26% are never paid at 90 days; under 50%
# are collectable after seven months. Straight lines between these anchors, then one point per
# week down to zero.
COLLECTABILITY_ANCHORS: tuple[tuple[int, Decimal], ...] = (
    (0, Decimal("1.00")),
    (90, Decimal("0.74")),
    (213, Decimal("0.49")),  # seven months (~213 days): "under 50%"
)
_WEEKLY_LOSS = Decimal("0.01")

BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("not due", -(10**6), 0),
    ("1-30", 1, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181+", 181, None),
)


def collectability(days_late: int) -> Decimal:
    """Probability (0..1) that an invoice this many days late is eventually collected."""
    if days_late <= 0:
        return Decimal(1)
    days = [point[0] for point in COLLECTABILITY_ANCHORS]
    index = bisect_right(days, days_late)
    if index >= len(COLLECTABILITY_ANCHORS):
        last_day, last_value = COLLECTABILITY_ANCHORS[-1]
        value = last_value - _WEEKLY_LOSS * Decimal(days_late - last_day) / 7
        return max(value, Decimal(0))
    (d0, v0), (d1, v1) = COLLECTABILITY_ANCHORS[index - 1], COLLECTABILITY_ANCHORS[index]
    return v0 + (v1 - v0) * Decimal(days_late - d0) / Decimal(d1 - d0)


def bucket_for(days_late: int) -> str:
    for name, low, high in BUCKETS:
        if days_late >= low and (high is None or days_late <= high):
            return name
    return BUCKETS[-1][0]


@dataclass
class BucketTotals:
    count: int = 0
    balance: Decimal = Decimal(0)
    expected: Decimal = Decimal(0)


@dataclass
class AgingReport:
    as_of: date
    # currency -> bucket -> totals
    buckets: dict[str, dict[str, BucketTotals]] = field(default_factory=dict)
    dso: dict[str, Decimal | None] = field(default_factory=dict)
    breaches: list[dict[str, Any]] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        rows = []
        for currency, buckets in sorted(self.buckets.items()):
            for name, _, _ in BUCKETS:
                totals = buckets.get(name, BucketTotals())
                rows.append(
                    {
                        "currency": currency,
                        "bucket": name,
                        "invoices": totals.count,
                        "balance": str(round_half_up(totals.balance, currency)),
                        "expected_recovery": str(round_half_up(totals.expected, currency)),
                    }
                )
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "buckets": self.rows(),
            "dso_days": {cur: (None if v is None else str(v)) for cur, v in sorted(self.dso.items())},
            "credit_limit_breaches": self.breaches,
        }


def open_invoices(invoices: Iterable[Invoice]) -> Iterable[Invoice]:
    return (
        invoice for invoice in invoices if invoice.status is InvoiceStatus.OPEN and invoice.balance.amount > 0
    )


def aging(snapshot: LedgerSnapshot, as_of: date, *, dso_window_days: int = 90) -> AgingReport:
    report = AgingReport(as_of)
    buckets: dict[str, dict[str, BucketTotals]] = defaultdict(lambda: defaultdict(BucketTotals))
    for invoice in open_invoices(snapshot.invoices.values()):
        days_late = (as_of - invoice.due_date).days
        totals = buckets[invoice.currency][bucket_for(days_late)]
        totals.count += 1
        totals.balance += invoice.balance.amount
        totals.expected += invoice.balance.amount * collectability(days_late)
    report.buckets = {cur: dict(b) for cur, b in buckets.items()}
    report.dso = days_sales_outstanding(snapshot, as_of, window_days=dso_window_days)
    return report


def days_sales_outstanding(
    snapshot: LedgerSnapshot, as_of: date, *, window_days: int = 90
) -> dict[str, Decimal | None]:
    """DSO = open receivable / credit sales of the last `window_days` x window_days, per currency."""
    start = as_of - timedelta(days=window_days)
    receivable: dict[str, Decimal] = defaultdict(Decimal)
    sales: dict[str, Decimal] = defaultdict(Decimal)
    for invoice in snapshot.invoices.values():
        if invoice.status in (InvoiceStatus.VOID, InvoiceStatus.DRAFT):
            continue
        if invoice.status is InvoiceStatus.OPEN:
            receivable[invoice.currency] += invoice.balance.amount
        if start < invoice.issue_date <= as_of:
            sales[invoice.currency] += invoice.total.amount
    result: dict[str, Decimal | None] = {}
    for currency in set(receivable) | set(sales):
        if not sales[currency]:
            result[currency] = None
        else:
            value = receivable[currency] / sales[currency] * window_days
            result[currency] = value.quantize(Decimal("0.1"))
    return result
