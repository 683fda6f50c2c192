"""Late-payment interest and fixed recovery compensation: pure arithmetic, no clock, no I/O.

The law, as implemented (issue #2, section 3):

* Simple interest: the sum over segments of principal x annual rate x days / 365 (act/365 in every
  year, leap years included). A new segment starts at every change of principal and every change of
  rate. Days of delay run from the day after the due date through `until` inclusive; a settlement on
  day P leaves day P at the old principal, the new principal starts on P+1. Settlements on or before
  the due date reduce the starting principal. The exact segment values are summed and rounded once,
  half-up, to the currency's minor unit.
* The laws themselves (reference table, margin, fixing rule, consumer rule, compensation) are data
  in policies/laws (eu, fr, de, uk), registered through the `relance.laws` entry points.

Choices this module makes where the law leaves room (documented so the policy author can rely on them):

* Contractual rates win over the statutory rate: `annual_rate` is constant for the whole delay;
  `monthly_rate` is converted to annual_rate = 12 x monthly and then counted act/365 like the rest.
  `law` may be set alongside a contractual rate: it then only decides the fixed compensation (FR law
  owes the EUR 40 whatever the agreed rate). Contractual rates apply to consumers as written.
* Grace days: nothing (no interest, no compensation) while `until` or the full payment falls within
  `grace_days` after the due date. Once the grace period is exceeded, interest still runs from the
  day after the due date: grace is forbearance, not a later due date.
* Minimum: an interest charge that rounds below `minimum` becomes 0. Cap: the interest is limited to
  the smaller of `cap_amount` and `cap_percent` of the starting principal (segments stay uncapped).
* Compounding (only when `compounding` is true): annual capitalisation (C. civ. 1343-2) - on each
  anniversary of the first day of delay, the interest accrued over the past full year joins the
  interest-bearing base. Payments reduce the invoice principal only; interest stops once the invoice
  itself is paid off.
* Consumers (b2c) never get the B2B statutory rate nor the compensation. DE: Basiszinssatz + 5. FR: the
  taux de l'intérêt légal of each half-year (C. civ. 1231-6; the creditor is not a private person, so
  the "autres cas" rate), computed from the day after the due date although in law it runs from a
  formal notice - a warning says so. UK and EU: these laws give consumers no statutory interest, so 0
  with a warning.
* Compensation is EUR 40 under EU/FR/DE law and GBP 40/70/100 under UK law. The sums are fixed in
  that currency; for an invoice in another currency it is 0 with a warning (converting is a business
  decision, not ours).
* A half-year past the end of a shipped table carries the last rate forward with a warning, or raises
  RelanceError when the terms say `unknown_rate: "error"`; `rate_overrides` (the policy's
  `interest.rates`) add or replace rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache
from itertools import pairwise
from typing import Any, NamedTuple

from policies.jurisdiction import statutory_compensation
from policies.laws import Fixing, Law
from policies.model.errors import RelanceError
from policies.model.ledger import Settlement
from policies.model.money import Money
from policies.rates import (
    RateLookup,
    RateRow,
    RateTable,
    half_year_end,
    half_year_label,
    half_year_start,
)

_ZERO = Decimal(0)
_DAYS_PER_YEAR_PERCENT = Decimal(36500)  # 365 days x 100 (rates are in percent)
_PRECISION = 60  # enough digits that sums of products stay exact and quotients never matter at cents
_ONE_DAY = timedelta(days=1)


class RateOverride(NamedTuple):
    """One policy `interest.rates` row; `table` None means the law's base table."""

    row: RateRow
    table: str | None = None


@dataclass(frozen=True, slots=True)
class InterestTerms:
    """What a policy's `interest:` section resolves to, with the law and its rate tables. Built by
    `policies.config` from validated settings (Policy.interest_terms, config.interest_terms): it
    holds checked values and validates nothing itself."""

    law: str | None = None  # code of the statutory law (also decides the fixed compensation)
    regime: Law | None = None  # that law's rules
    tables: tuple[RateTable, ...] = ()  # the reference tables the law computes with
    annual_rate: Decimal | None = None  # contractual, percent per year
    monthly_rate: Decimal | None = None  # contractual, percent per month (annual = 12 x monthly)
    grace_days: int = 0
    minimum: Decimal = _ZERO
    cap_amount: Decimal | None = None
    cap_percent: Decimal | None = None
    compounding: bool = False
    unknown_rate: str = "warn"  # warn | error
    rate_overrides: tuple[RateOverride, ...] = ()

    @property
    def contractual_rate(self) -> Decimal | None:
        """The constant annual rate agreed by contract, if any (monthly x 12)."""
        if self.annual_rate is not None:
            return self.annual_rate
        if self.monthly_rate is not None:
            return self.monthly_rate * 12
        return None

    def table(self, name: str) -> RateTable:
        for table in self.tables:
            if table.name == name:
                return table
        raise RelanceError(f"rate table {name!r} is not loaded for law {self.law!r}")


@dataclass(frozen=True, slots=True)
class Segment:
    start: date
    end: date  # inclusive
    days: int
    principal: Decimal
    annual_rate: Decimal  # percent
    interest: Decimal  # exact, unrounded

    def to_json(self, currency: str) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "days": self.days,
            "principal": Money(self.principal, currency).fixed(),
            "annual_rate": format_rate(self.annual_rate),
            "interest": format(self.interest.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP), "f"),
        }


@dataclass(frozen=True, slots=True)
class InterestResult:
    law: str | None
    currency: str
    principal: Money  # unpaid at the due date
    interest: Money  # rounded once
    compensation: Money
    segments: tuple[Segment, ...]
    warnings: tuple[str, ...]
    exact_interest: Decimal = _ZERO  # after cap, before rounding and minimum

    @property
    def total(self) -> Money:
        return self.interest + self.compensation

    def to_json(self) -> dict[str, Any]:
        return {
            "law": self.law,
            "currency": self.currency,
            "principal": self.principal.fixed(),
            "interest": self.interest.fixed(),
            "compensation": self.compensation.fixed(),
            "total": self.total.fixed(),
            "segments": [segment.to_json(self.currency) for segment in self.segments],
            "warnings": list(self.warnings),
        }


def format_rate(rate: Decimal) -> str:
    """'14.50' - two decimals unless the rate genuinely has more ('2.125')."""
    two = rate.quantize(Decimal("0.01"))
    return format(two if two == rate else rate.normalize(), "f")


# --- compensation ----------------------------------------------------------------------------------


def compensation(law: Law | None, principal: Money, b2c: bool, *, late: bool = True) -> Money:
    """Fixed recovery compensation for one invoice, in the invoice currency (0 when not late); see
    policies.jurisdiction.statutory_compensation for the rule."""
    if not late:
        return Money.zero(principal.currency)
    return statutory_compensation(law, principal, b2c)[0]


# --- rate schedule ---------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _table(terms: InterestTerms, name: str) -> RateTable:
    """The table `name` with the policy's overrides for it (rows naming no table go to the base)."""
    table = terms.table(name)
    base = terms.regime.base_table if terms.regime is not None else None
    rows = [o.row for o in terms.rate_overrides if (o.table or base) == name]
    return table.with_overrides(rows) if rows else table


def _checked_lookup(
    table: RateTable, on: date, period_start: date, terms: InterestTerms, warnings: list[str]
) -> RateLookup:
    found = table.lookup(on)
    if found.carried_forward:
        label = half_year_label(period_start)
        if terms.unknown_rate == "error":
            raise RelanceError(
                f"no {table.name} rate known for {label} (rate on {on.isoformat()})",
                hint=f"add it under interest.rates in the policy: "
                f"{{from: {on.isoformat()}, rate: '...', source: '...'}}",
            )
        message = (
            f"{table.name}: no rate known for {label} (rate on {on.isoformat()}); carried forward "
            f"{format_rate(found.rate)}% from {found.effective_from.isoformat()} ({found.source})"
        )
        if message not in warnings:
            warnings.append(message)
    return found


def _rate_schedule(
    terms: InterestTerms, b2c: bool, start: date, end: date, warnings: list[str]
) -> list[tuple[date, Decimal]]:
    """[(from, annual rate %)] covering start..end, consecutive equal rates merged; [] = no interest."""
    contractual = terms.contractual_rate
    if contractual is not None:
        return [(start, contractual)]
    if terms.regime is None:
        return []
    if terms.regime.fixing is Fixing.FIXED_PER_DEBT:
        schedule, notes = _statutory_schedule(terms, b2c, half_year_start(start), half_year_start(start))
    else:
        schedule, notes = _statutory_schedule(terms, b2c, half_year_start(start), half_year_start(end))
    warnings.extend(note for note in notes if note not in warnings)
    if not schedule:
        return []
    return [(start, schedule[0][1]), *schedule[1:]]


@lru_cache(maxsize=8192)
def _statutory_schedule(
    terms: InterestTerms, b2c: bool, first_period: date, last_period: date
) -> tuple[tuple[tuple[date, Decimal], ...], tuple[str, ...]]:
    """Statutory rates per half-year from first_period to last_period (cached: planners call this for
    many invoices with the same few periods). A rate fixed per debt: the one rate of a debt whose
    interest starts in first_period."""
    law = terms.regime
    assert law is not None
    warnings: list[str] = []
    if b2c and law.consumer is None:
        return (), (f"no statutory interest for a consumer: {law.consumer_exclusion}",)
    if b2c:
        assert law.consumer is not None
        table_name, margin = law.consumer.table, law.consumer.margin
        if law.consumer.note:
            warnings.append(law.consumer.note)
    else:
        table_name, margin = law.base_table, law.margin
    table = _table(terms, table_name)
    if law.fixing is Fixing.FIXED_PER_DEBT:
        # Fixed for the whole debt: reference date just before the half-year interest starts in.
        found = _checked_lookup(table, first_period - _ONE_DAY, first_period, terms, warnings)
        return ((first_period, found.rate + margin),), tuple(warnings)
    schedule: list[tuple[date, Decimal]] = []
    period = first_period
    while period <= last_period:
        rate = _checked_lookup(table, period, period, terms, warnings).rate + margin
        if not schedule or schedule[-1][1] != rate:
            schedule.append((period, rate))
        period = half_year_end(period) + _ONE_DAY
    return tuple(schedule), tuple(warnings)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


# --- the computation -------------------------------------------------------------------------------


def compute_interest(
    terms: InterestTerms,
    *,
    total: Money,
    due: date,
    until: date,
    settlements: Iterable[Settlement],
    b2c: bool,
    compensation_enabled: bool = True,
) -> InterestResult:
    """Interest and compensation owed on one invoice of `total` (incl. tax) due on `due`, counting
    days through `until` (the payment or as-of date, inclusive). See the module docstring for the
    law and every choice made. Settlements after `until` are ignored.

    Grace days: nothing is owed while the invoice is paid (or `until` falls) within `grace_days` after
    the due date; once the grace period is exceeded, interest runs from the day after the due date.
    `compensation_enabled=False` (policy `compensation: {enabled: false}`) leaves compensation at 0."""
    currency = total.currency
    warnings: list[str] = []
    ordered = sorted(settlements, key=lambda s: s.date)
    principal = total.amount - sum((s.amount for s in ordered if s.date <= due), _ZERO)
    principal = max(principal, _ZERO)
    zero = Money.zero(currency)

    def nothing(*reasons: str) -> InterestResult:
        return InterestResult(terms.law, currency, Money(principal, currency), zero, zero, (), reasons)

    if principal <= 0 or until <= due:
        return nothing()

    # Principal changes after the due date: (first day at the new principal, delta).
    changes: list[tuple[date, Decimal]] = []
    remaining = principal
    paid_off: date | None = None
    for settlement in ordered:
        if settlement.date <= due or settlement.date > until or settlement.amount == 0:
            continue
        delta = -min(settlement.amount, remaining)
        remaining += delta
        changes.append((settlement.date + _ONE_DAY, delta))
        if remaining <= 0:
            paid_off = settlement.date
            break
    end = paid_off or until
    grace_end = due + timedelta(days=terms.grace_days)
    if end <= grace_end:
        if paid_off is not None:
            return nothing(f"paid within the {terms.grace_days}-day grace period")
        return nothing(f"still within the {terms.grace_days}-day grace period")

    start = due + _ONE_DAY
    schedule = _rate_schedule(terms, b2c, start, end, warnings)
    segments: list[Segment] = []
    exact = _ZERO
    if schedule:
        segments, exact = _segments(principal, start, end, changes, schedule, terms.compounding)

    interest = exact
    caps = [cap for cap in (
        terms.cap_amount,
        principal * terms.cap_percent / 100 if terms.cap_percent is not None else None,
    ) if cap is not None]
    if caps and interest > min(caps):
        interest = min(caps)
        warnings.append(f"interest capped at {Money(interest, currency).display()} by the policy")
    rounded = Money(interest, currency).rounded()
    if rounded.amount and rounded.amount < terms.minimum:
        warnings.append(
            f"interest {rounded.display()} is below the policy minimum "
            f"{Money(terms.minimum, currency).display()}: not charged"
        )
        rounded = zero

    fixed = zero
    if compensation_enabled:
        fixed, notes = statutory_compensation(terms.regime, Money(principal, currency), b2c)
        warnings.extend(notes)
    return InterestResult(
        terms.law, currency, Money(principal, currency), rounded, fixed, tuple(segments), tuple(warnings),
        interest,
    )


def _segments(
    principal: Decimal,
    start: date,
    end: date,
    changes: list[tuple[date, Decimal]],
    schedule: list[tuple[date, Decimal]],
    compounding: bool,
) -> tuple[list[Segment], Decimal]:
    """Cut start..end at every principal, rate (and capitalisation) change; exact arithmetic."""
    with localcontext() as context:
        context.prec = _PRECISION
        anniversaries: list[date] = []
        if compounding:
            years = 1
            while (anniversary := _add_years(start, years)) <= end:
                anniversaries.append(anniversary)
                years += 1
        cuts = sorted(
            {day for day, _ in changes if start < day <= end}
            | {day for day, _ in schedule if start < day <= end}
            | set(anniversaries)
        )
        bounds = [start, *cuts, end + _ONE_DAY]
        segments: list[Segment] = []
        numerator_sum = _ZERO
        base = principal
        change_index = rate_index = 0
        anniversary_set = set(anniversaries)
        accrued_this_year = _ZERO
        for first, after in pairwise(bounds):
            while change_index < len(changes) and changes[change_index][0] <= first:
                base += changes[change_index][1]
                change_index += 1
            while rate_index + 1 < len(schedule) and schedule[rate_index + 1][0] <= first:
                rate_index += 1
            if first in anniversary_set:
                base += accrued_this_year  # C. civ. 1343-2: a full year's interest bears interest
                accrued_this_year = _ZERO
            days = (after - first).days
            rate = schedule[rate_index][1]
            if base <= 0:
                continue
            numerator = base * rate * days
            numerator_sum += numerator
            value = numerator / _DAYS_PER_YEAR_PERCENT
            accrued_this_year += value
            if segments and segments[-1].principal == base and segments[-1].annual_rate == rate \
                    and segments[-1].end + _ONE_DAY == first:
                previous = segments[-1]  # e.g. two half-years at the same rate: one segment
                segments[-1] = Segment(previous.start, after - _ONE_DAY, previous.days + days, base, rate,
                                       previous.interest + value)
            else:
                segments.append(Segment(first, after - _ONE_DAY, days, base, rate, value))
        return segments, numerator_sum / _DAYS_PER_YEAR_PERCENT
