"""Payment plans: instalments agreed with a customer for one or more invoices (seed 003).

While a plan is active its invoices are not dunned by the ladder; a missed instalment is dunned on
its own. Acceleration clause: once an instalment is `acceleration_days` late, the whole remaining
balance falls due on that day (the acceleration date): the plan ends and the ladder resumes on the
invoices, with the acceleration date as their effective due date (steps, interest and fees run from
it; steps already done on the invoice stay done).

How much of the plan is paid is derived from the ledger, not from a separate payment log: paid =
plan total - remaining balance of the covered invoices (so a plan must be agreed for the balance
outstanding at the time), allocated to the instalments in order. Instalments are numbered from 1.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from policies.model.ledger import Instalment
from policies.model.money import Money, minor_unit, round_half_up


@dataclass(frozen=True, slots=True)
class PaymentPlan:
    id: str
    customer_id: str
    invoice_ids: tuple[str, ...]
    instalments: tuple[Instalment, ...]  # in due-date order; amounts in the invoices' currency
    acceleration_days: int | None = None  # None: the policy's payment_plans.acceleration_days

    @property
    def total(self) -> Decimal:
        return sum((instalment.amount for instalment in self.instalments), Decimal(0))


@dataclass(frozen=True, slots=True)
class InstalmentState:
    index: int  # 1-based
    due_date: date
    amount: Decimal
    paid: Decimal
    remaining: Decimal
    days_late: int  # > 0 when due and not fully paid

    @property
    def is_paid(self) -> bool:
        return self.remaining <= 0


@dataclass(frozen=True, slots=True)
class PlanState:
    plan: PaymentPlan
    paid: Decimal
    remaining: Decimal  # balance still owed on the covered invoices
    instalments: tuple[InstalmentState, ...]
    accelerated_on: date | None  # the acceleration date, once the clause has triggered
    completed: bool  # nothing left to pay

    @property
    def active(self) -> bool:
        """The plan governs its invoices (not completed, not accelerated)."""
        return not self.completed and self.accelerated_on is None

    def missed(self, today: date) -> tuple[InstalmentState, ...]:
        return tuple(item for item in self.instalments if not item.is_paid and item.due_date <= today)


def evaluate_plan(
    plan: PaymentPlan,
    remaining_balance: Decimal,
    today: date,
    *,
    acceleration_days: int | None = None,
) -> PlanState:
    """Where the plan stands today. `acceleration_days` applies when the plan has none of its own;
    None/0 on both means no acceleration clause."""
    total = plan.total
    paid = min(max(total - remaining_balance, Decimal(0)), total)
    days = plan.acceleration_days if plan.acceleration_days is not None else acceleration_days
    states: list[InstalmentState] = []
    left = paid
    accelerated_on: date | None = None
    for index, instalment in enumerate(plan.instalments, start=1):
        covered = min(left, instalment.amount)
        left -= covered
        remaining = instalment.amount - covered
        late = (today - instalment.due_date).days if remaining > 0 else 0
        states.append(
            InstalmentState(index, instalment.due_date, instalment.amount, covered, remaining, max(late, 0))
        )
        if remaining > 0 and days and accelerated_on is None and late >= days:
            accelerated_on = instalment.due_date + timedelta(days=days)
    completed = remaining_balance <= 0
    return PlanState(
        plan=plan,
        paid=paid,
        remaining=max(remaining_balance, Decimal(0)),
        instalments=tuple(states),
        accelerated_on=None if completed else accelerated_on,
        completed=completed,
    )


def _add_months(day: date, months: int) -> date:
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def equal_instalments(
    total: Money, count: int, first_due: date, *, every_days: int | None = None
) -> tuple[Instalment, ...]:
    """Split `total` into `count` instalments, monthly from `first_due` (or every N days).

    Each instalment is rounded half-up to the minor unit; the last one absorbs the rounding so the
    instalments always add up to the total exactly."""
    if count < 1:
        raise ValueError("a payment plan needs at least one instalment")
    share = round_half_up(total.amount / count, total.currency)
    if share * (count - 1) > total.amount:  # tiny totals: never a negative last instalment
        share = (total.amount / count).quantize(Decimal(1).scaleb(-minor_unit(total.currency)))
    dates = [
        first_due + timedelta(days=every_days * index) if every_days else _add_months(first_due, index)
        for index in range(count)
    ]
    amounts = [share] * (count - 1) + [total.amount - share * (count - 1)]
    return tuple(Instalment(day, amount) for day, amount in zip(dates, amounts, strict=True))


def plans_by_invoice(plans: Iterable[PaymentPlan]) -> dict[str, PaymentPlan]:
    """Invoice id -> the plan covering it (the last one given wins if plans overlap)."""
    result: dict[str, PaymentPlan] = {}
    for plan in plans:
        for invoice_id in plan.invoice_ids:
            result[invoice_id] = plan
    return result
