"""United Kingdom, Late Payment of Commercial Debts (Interest) Act 1998 and SI 2002/1675: Bank Rate
+ 8 points, FIXED for the whole debt at the rate in force on the 31 December or 30 June just before
the half-year in which interest starts; compensation GBP 40 (debt under 1,000), 70 (under 10,000),
100 (10,000 or more); business debts only."""

from __future__ import annotations

from decimal import Decimal

from policies.laws import CompensationTier, Fixing, Law, RateTableSource

BOE_BANK_RATE = RateTableSource("boe_bank_rate", "policies.data", "boe_bank_rate.csv")

LAW = Law(
    code="uk",
    title="Late Payment of Commercial Debts (Interest) Act 1998",
    countries=("GB", "UK"),
    base_table="boe_bank_rate",
    margin=Decimal(8),
    fixing=Fixing.FIXED_PER_DEBT,
    compensation_currency="GBP",
    compensation=(
        CompensationTier(Decimal(1000), Decimal(40)),
        CompensationTier(Decimal(10000), Decimal(70)),
        CompensationTier(None, Decimal(100)),
    ),
    consumer_exclusion="the Late Payment of Commercial Debts (Interest) Act 1998 covers business debts only",
    tables=(BOE_BANK_RATE,),
    rank=30,
)
