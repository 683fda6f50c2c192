"""Money a step posts: interest, the fixed compensation, named and recurring fees (cumulative: to post
= accrued to date minus already charged), and the early-payment discount's credit note."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from policies.interest import InterestResult, compensation, compute_interest
from policies.ladder import StepSpec
from policies.model.actions import ActionKind, Charge, PlannedAction
from policies.model.details import CreditNoteDetails, FeeDetails
from policies.model.ledger import Invoice
from policies.model.money import Money, round_half_up
from policies.planning.history import RECURRING_PREFIX, InvoiceHistory
from policies.planning.keys import step_key
from policies.planning.run import CustomerContext, DayRun, lateness, step_title

HUNDRED = Decimal(100)
ZERO = Decimal(0)


def post_charges(
    run: DayRun,
    invoice: Invoice,
    context: CustomerContext,
    steps: Sequence[StepSpec],
    rolled: set[str],
    history: InvoiceHistory,
    effective_due: date,
) -> None:
    """One FEE action per step that charges something on this invoice today. `rolled`: interest and
    compensation of steps never sent, carried onto the first step sent now."""
    currency = invoice.currency
    late = run.today > effective_due
    interest_charged = history.interest_charged
    compensation_done = history.compensation_charged
    result: InterestResult | None = None
    terms = run.terms
    for index, step in enumerate(steps):
        wanted = set(step.charges) | (rolled if index == 0 else set())
        items: list[Charge] = []
        explain: list[str] = []
        if "interest" in wanted and late and terms is not None:
            if result is None:
                result = compute_interest(
                    terms,
                    total=invoice.principal,
                    due=effective_due,
                    until=run.today,
                    settlements=run.settlements.get(invoice.id, ()),
                    b2c=context.b2c,
                    compensation_enabled=run.compensation_enabled,
                )
                for warning in result.warnings:
                    run.out.warn(f"invoice {invoice.number}: {warning}")
            accrued = result.interest.amount
            increment = accrued - interest_charged
            if increment > 0 and increment >= terms.minimum:
                items.append(Charge("interest", Money(increment, currency), f"interest to {run.today}"))
                explain.append(
                    f"interest {Money(increment, currency)} (accrued {result.interest} to date, "
                    f"{Money(interest_charged, currency)} already charged)"
                )
                interest_charged = accrued
        if "compensation" in wanted and late and run.compensation_enabled and not compensation_done:
            principal = invoice.principal.amount - sum(
                (s.amount for s in run.settlements.get(invoice.id, ()) if s.date <= effective_due), ZERO
            )
            fixed = compensation(run.law, Money(principal, currency), context.b2c)
            if fixed.amount > 0:
                items.append(Charge("compensation", fixed, "fixed recovery compensation"))
                explain.append(f"fixed compensation {fixed} (once per invoice)")
                compensation_done = True
        for name in step.charges:
            if not name.startswith("fee:"):
                continue
            fee_name = name[4:]
            if (step.name, fee_name) in history.fees:
                continue
            amount = fee_amount(run, fee_name, invoice)
            if amount is not None:
                items.append(Charge("fee", amount, fee_name))
                explain.append(f"fee {fee_name} {amount}")
        if not items:
            continue
        key = step_key(
            run.connection, ActionKind.FEE, step.name, invoice.customer_id, currency, (invoice.id,)
        )
        if key in history.keys:  # this step's charge was posted though its notice was not
            continue
        days_late = run.t - effective_due.toordinal()
        run.out.actions.append(
            PlannedAction(
                key=key,
                kind=ActionKind.FEE,
                customer_id=invoice.customer_id,
                currency=currency,
                invoice_ids=(invoice.id,),
                reason=f"{step_title(step)}: invoice {invoice.number} {lateness(days_late)}, "
                f"balance {invoice.balance}; charges: {'; '.join(explain)}",
                step=step.name,
                channel=step.channel,
                charges=tuple(items),
                due_on=run.today,
                details=FeeDetails(invoice_number=invoice.number, fees=fee_descriptions(run, items)),
            )
        )


def fee_amount(run: DayRun, fee_name: str, invoice: Invoice) -> Money | None:
    definition = run.policy.fees.get(fee_name)
    if definition is None:
        run.out.warn(f"fee {fee_name!r} is not defined in the policy")
        return None
    amount = definition.fixed + invoice.balance.amount * definition.percent / HUNDRED
    rounded = round_half_up(amount, invoice.currency)
    return Money(rounded, invoice.currency) if rounded > 0 else None


def fee_descriptions(run: DayRun, items: Sequence[Charge]) -> tuple[tuple[str, str], ...]:
    """(fee name, line text) of each named fee among the charges: the policy's description, else
    the name."""
    result = []
    for item in items:
        if item.component == "fee":
            definition = run.policy.fees.get(item.description)
            result.append(
                (item.description, (definition.description if definition else None) or item.description)
            )
    return tuple(result)


def recurring_fee(
    run: DayRun, invoice: Invoice, context: CustomerContext, history: InvoiceHistory, effective_due: date
) -> None:
    """Every `every_days` after the first FEE in the history, one charge per period; a missed period
    is not caught up."""
    recurring = run.recurring
    assert recurring is not None and history.first_charge is not None
    period = (run.today - history.first_charge).days // recurring.every_days
    if period < 1 or run.today <= effective_due:
        return
    step = f"{RECURRING_PREFIX}{recurring.fee}"
    key = step_key(
        run.connection,
        ActionKind.FEE,
        step,
        invoice.customer_id,
        invoice.currency,
        (invoice.id,),
        period=period,
    )
    if key in history.keys:
        return
    amount = fee_amount(run, recurring.fee, invoice)
    if amount is None:
        return
    charge = Charge("fee", amount, recurring.fee)
    run.out.actions.append(
        PlannedAction(
            key=key,
            kind=ActionKind.FEE,
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            invoice_ids=(invoice.id,),
            reason=f"recurring fee {recurring.fee} {amount}: invoice {invoice.number} "
            f"{lateness(run.t - effective_due.toordinal())}, balance {invoice.balance}; "
            f"period {period} "
            f"(every {recurring.every_days} days since the first charge on {history.first_charge})",
            step=step,
            charges=(charge,),
            due_on=run.today,
            details=FeeDetails(
                invoice_number=invoice.number, fees=fee_descriptions(run, (charge,)), period=period
            ),
        )
    )


def discount_credit_note(
    run: DayRun, invoice: Invoice, amount: Money, percent: Decimal, within_days: int
) -> None:
    """An invoice settled inside the discount window for total minus discount: credit the discount."""
    paid = sum((s.amount for s in run.settlements.get(invoice.id, ())), ZERO)
    run.out.actions.append(
        PlannedAction(
            key=step_key(
                run.connection,
                ActionKind.CREDIT_NOTE,
                "discount",
                invoice.customer_id,
                invoice.currency,
                (invoice.id,),
            ),
            kind=ActionKind.CREDIT_NOTE,
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            invoice_ids=(invoice.id,),
            reason=f"invoice {invoice.number} was paid {Money(paid, invoice.currency)} within the "
            f"{within_days}-day early-payment discount window ({percent}% of {invoice.total}); "
            f"balance {amount} left: credit note for the discount",
            step="discount",
            charges=(Charge("discount", amount, f"early-payment discount {percent}%"),),
            due_on=run.today,
            details=CreditNoteDetails(
                invoice_number=invoice.number, percent=percent, amount=amount.rounded().amount
            ),
        )
    )
