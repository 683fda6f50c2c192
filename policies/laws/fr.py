"""France, C. com. L441-10 and D441-5: ECB MRO + 10 points, half-year fixing as the directive;
EUR 40 per late invoice. Consumers: the taux de l'intérêt légal of each half-year (C. civ. 1231-6,
"autres cas" rate since the creditor is not a private person)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from policies.laws import CompensationTier, ConsumerInterest, Fixing, Law, RateTableSource
from policies.laws.eu import ECB_MRO
from policies.rates import RateLookup, RateTable, half_year_start

FR_TAUX_LEGAL = RateTableSource("fr_taux_legal", "policies.data", "fr_taux_legal.csv")

LAW = Law(
    code="fr",
    title="C. com. L441-10, D441-5",
    countries=("FR",),
    base_table="ecb_mro",
    margin=Decimal(10),
    fixing=Fixing.HALF_YEARLY,
    compensation_currency="EUR",
    compensation=(CompensationTier(None, Decimal(40)),),
    consumer=ConsumerInterest(
        table="fr_taux_legal",
        margin=Decimal(0),
        note="consumer debt: taux de l'intérêt légal (C. civ. 1231-6) instead of the B2B rate; in law "
        "it runs from a formal notice (mise en demeure), computed here from the day after the due date",
    ),
    tables=(ECB_MRO, FR_TAUX_LEGAL),
    rank=10,
)


def legal_rate(taux_legal: RateTable, on: date) -> RateLookup:
    """Taux de l'intérêt légal (creditors who are not private persons) for the half-year of `on`.
    A contractual rate below 3x this is unenforceable (C. com. L441-10): the policy linter checks."""
    return taux_legal.lookup(half_year_start(on))
