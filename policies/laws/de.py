"""Germany, BGB § 288 and § 247: Basiszinssatz + 9 points between businesses, + 5 for consumers,
half-year fixing on 1 January / 1 July; EUR 40 (B2B only, § 288 (5))."""

from __future__ import annotations

from decimal import Decimal

from policies.laws import CompensationTier, ConsumerInterest, Fixing, Law, RateTableSource

DE_BASISZINS = RateTableSource("de_basiszins", "policies.data", "de_basiszins.csv")

LAW = Law(
    code="de",
    title="BGB §§ 288, 247",
    countries=("DE",),
    base_table="de_basiszins",
    margin=Decimal(9),
    fixing=Fixing.HALF_YEARLY,
    compensation_currency="EUR",
    compensation=(CompensationTier(None, Decimal(40)),),
    consumer=ConsumerInterest(table="de_basiszins", margin=Decimal(5)),
    tables=(DE_BASISZINS,),
    rank=20,
)
