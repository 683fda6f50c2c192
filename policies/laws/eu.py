"""Directive 2011/7/EU art. 2(6), 3 and 6: ECB main refinancing rate + 8 points, re-fixed every
half-year (rate of 1 January for H1, of 1 July for H2); EUR 40 per late invoice; B2B only."""

from __future__ import annotations

from decimal import Decimal

from policies.laws import CompensationTier, Fixing, Law, RateTableSource

ECB_MRO = RateTableSource("ecb_mro", "policies.data", "ecb_mro.csv")

LAW = Law(
    code="eu",
    title="Directive 2011/7/EU",
    countries=(),
    base_table="ecb_mro",
    margin=Decimal(8),
    fixing=Fixing.HALF_YEARLY,
    compensation_currency="EUR",
    compensation=(CompensationTier(None, Decimal(40)),),
    consumer_exclusion="Directive 2011/7 covers commercial transactions only",
    tables=(ECB_MRO,),
    rank=40,
    eu_default=True,
)
