"""Hypothesis properties of the interest engine (issue #2, Acceptance)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from policies.interest import InterestTerms, compute_interest
from policies.model.ledger import Settlement
from policies.model.money import Money
from tests.support.rules import terms as interest_terms

SETTINGS = settings(max_examples=200, deadline=None)

TERMS = st.sampled_from([
    interest_terms(law="fr"), interest_terms(law="de"), interest_terms(law="uk"), interest_terms(law="eu"),
    interest_terms(annual_rate=Decimal("12")), interest_terms(monthly_rate=Decimal("1.5")),
    interest_terms(annual_rate=Decimal("10"), compounding=True),
])
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("2000000"), places=2)
DUE_DATES = st.dates(min_value=date(2020, 1, 1), max_value=date(2026, 12, 31))
DAYS = st.integers(min_value=0, max_value=1500)


def exact(terms: InterestTerms, amount: Decimal, due: date, days: int,
          settlements: list[Settlement] = (), b2c: bool = False) -> Decimal:  # type: ignore[assignment]
    result = compute_interest(terms, total=Money(amount, "EUR"), due=due, until=due + timedelta(days=days),
                              settlements=settlements, b2c=b2c)
    return result.exact_interest


@SETTINGS
@given(TERMS, AMOUNTS, DUE_DATES, DAYS, st.integers(min_value=1, max_value=400), st.booleans())
def test_more_days_never_less_interest(terms: InterestTerms, amount: Decimal, due: date, days: int,
                                       extra: int, b2c: bool) -> None:
    assert exact(terms, amount, due, days + extra, b2c=b2c) >= exact(terms, amount, due, days, b2c=b2c)


@SETTINGS
@given(TERMS, AMOUNTS, AMOUNTS, DUE_DATES, DAYS)
def test_more_principal_never_less_interest(terms: InterestTerms, a: Decimal, b: Decimal, due: date,
                                            days: int) -> None:
    low, high = sorted((a, b))
    assert exact(terms, high, due, days) >= exact(terms, low, due, days)


@SETTINGS
@given(TERMS, AMOUNTS, DUE_DATES, DAYS, st.integers(min_value=-30, max_value=1500),
       st.decimals(min_value=Decimal("0.01"), max_value=Decimal("3000000"), places=2))
def test_a_payment_never_increases_interest(terms: InterestTerms, amount: Decimal, due: date, days: int,
                                            offset: int, paid: Decimal) -> None:
    payment = Settlement(due + timedelta(days=offset), paid)
    assert exact(terms, amount, due, days, [payment]) <= exact(terms, amount, due, days)


@SETTINGS
@given(TERMS, AMOUNTS, DUE_DATES, DAYS, st.booleans())
def test_segments_tile_the_delay_and_sum_to_the_total(terms: InterestTerms, amount: Decimal, due: date,
                                                      days: int, b2c: bool) -> None:
    until = due + timedelta(days=days)
    result = compute_interest(terms, total=Money(amount, "EUR"), due=due, until=until, settlements=[],
                              b2c=b2c)
    if not result.segments:
        return
    assert result.segments[0].start == due + timedelta(days=1)
    assert result.segments[-1].end == until
    for before, after in zip(result.segments, result.segments[1:], strict=False):
        assert before.end + timedelta(days=1) == after.start
        assert (before.principal, before.annual_rate) != (after.principal, after.annual_rate)
    assert sum(s.days for s in result.segments) == days
    # the exact segment values add up to the exact total (beyond any rounding that matters)
    with localcontext(prec=80):
        assert abs(sum(s.interest for s in result.segments) - result.exact_interest) < Decimal("1e-40")
    # rounded once: within half a cent of the exact total
    assert abs(result.interest.amount - result.exact_interest) <= Decimal("0.005")


@SETTINGS
@given(st.sampled_from(["fr", "de", "uk", "eu"]), AMOUNTS, DUE_DATES, DAYS,
       st.integers(min_value=0, max_value=1500))
def test_splitting_a_period_never_changes_the_total(law: str, amount: Decimal, due: date, days: int,
                                                    split: int) -> None:
    """Interest to a split date, plus each later segment recomputed on its own, equals the whole."""
    terms = interest_terms(law=law)
    split = min(split, days)
    whole = compute_interest(terms, total=Money(amount, "EUR"), due=due, until=due + timedelta(days=days),
                             settlements=[], b2c=False)
    first = compute_interest(terms, total=Money(amount, "EUR"), due=due, until=due + timedelta(days=split),
                             settlements=[], b2c=False)
    split_day = due + timedelta(days=split)
    with localcontext(prec=80):
        rest = Decimal(0)
        for segment in whole.segments:
            start = max(segment.start, split_day + timedelta(days=1))
            if start <= segment.end:
                rest += segment.principal * segment.annual_rate * ((segment.end - start).days + 1) / 36500
        assert abs(first.exact_interest + rest - whole.exact_interest) < Decimal("1e-40")
        assert abs(first.interest.amount + rest - whole.interest.amount) <= Decimal("0.01")


@SETTINGS
@given(AMOUNTS, DUE_DATES, DAYS,
       st.lists(st.tuples(st.integers(min_value=1, max_value=1500),
                          st.decimals(min_value=Decimal("0.01"), max_value=Decimal("500000"), places=2)),
                max_size=4))
def test_uk_rate_is_constant_per_debt(amount: Decimal, due: date, days: int,
                                      payments: list[tuple[int, Decimal]]) -> None:
    settlements = [Settlement(due + timedelta(days=offset), paid) for offset, paid in payments]
    result = compute_interest(interest_terms(law="uk"), total=Money(amount, "GBP"), due=due,
                              until=due + timedelta(days=days), settlements=settlements, b2c=False)
    assert len({segment.annual_rate for segment in result.segments}) <= 1
