"""`plan_day`: one pass over the invoices of one day, each rule applied where it belongs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal

from policies.config import Policy
from policies.credit import (
    CreditBreach,
    ExposureBuilder,
    LimitSuggestion,
    SuggestionTracker,
    as_limit,
    check_limit,
)
from policies.discount import discount_taken
from policies.model.actions import DoneAction
from policies.model.ledger import Customer, Invoice, InvoiceStatus, Settlement
from policies.model.money import Money
from policies.payment_plans import PaymentPlan, plans_by_invoice
from policies.planning.charges import discount_credit_note
from policies.planning.credit_limits import breach_action
from policies.planning.instalments import plan_payment_plan
from policies.planning.notices import emit_step_notices, emit_thanks, queue_thanks
from policies.planning.plan import Plan, plan_order
from policies.planning.run import DayRun
from policies.planning.steps import evaluate

HUNDRED = Decimal(100)
ZERO = Decimal(0)
ONE_CENT_OR_UNIT = Decimal(1)  # generous pre-filter bound (any minor unit); discount_taken decides


def plan_day(
    *,
    policy: Policy,
    today: date,
    customers: Mapping[str, Customer],
    invoices: Iterable[Invoice],
    settlements: Mapping[str, Sequence[Settlement]] | None = None,
    history: Mapping[str, Sequence[DoneAction]] | None = None,
    disputes: Mapping[str, date | None] | None = None,
    pauses: Mapping[str, date] | None = None,
    payment_plans: Mapping[str, PaymentPlan] | None = None,
    connection: str = "",
) -> Plan:
    """Everything that must happen on `today`, with reasons (see policies.planning for the rules)."""
    settlements = settlements or {}
    history = history or {}
    disputes = disputes or {}
    run = DayRun(policy, today, customers, settlements, history, disputes, pauses or {}, connection)
    plan_of = plans_by_invoice(payment_plans.values()) if payment_plans else {}
    plan_invoices: dict[str, list[Invoice]] = {}
    exposure = ExposureBuilder(policy.company.currency, policy.credit.include_drafts)
    add_exposure = exposure.add
    suggestion_rule = policy.credit.suggestion
    tracker = (
        SuggestionTracker(policy.company.currency, today, suggestion_rule)
        if suggestion_rule.enabled
        else None
    )
    track_open = tracker.open if tracker is not None else None
    late_ordinal = today.toordinal() - (tracker.late_days if tracker is not None else 0)
    min_balance = run.min_balance
    discount = run.discount
    discount_share = discount[0] / HUNDRED if discount is not None else ZERO
    contexts = run.contexts
    context_of = run.context
    OPEN, PAID, DRAFT = InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.DRAFT
    track_paid = tracker.paid if tracker is not None else None
    since_ordinal = tracker.since_ordinal if tracker is not None else 0
    history_get, settlements_get = history.get, settlements.get

    for invoice in invoices:  # the hot loop: names bound locally on purpose
        status = invoice.status
        if status is not OPEN:
            if status is PAID:
                if history_get(invoice.id):
                    queue_thanks(run, invoice)
                if track_paid is not None and invoice.issue_date.toordinal() >= since_ordinal:
                    track_paid(invoice, settlements_get(invoice.id))
            elif status is DRAFT:
                add_exposure(invoice)
            continue
        balance = invoice.balance.amount
        if balance <= 0:
            queue_thanks(run, invoice)
            if track_paid is not None:
                track_paid(invoice, settlements_get(invoice.id))
            continue
        add_exposure(invoice)
        if invoice.is_relance_fee_invoice:
            # relance's own fee invoice: never chased on its own (no reminder, no interest on
            # interest); the customer sees it on the original invoice's notices.
            run.skip(invoice, "fee invoice created by relance: not chased on its own")
            continue
        if track_open is not None and invoice.due_date.toordinal() <= late_ordinal:
            track_open(invoice)
        if plan_of:
            plan = plan_of.get(invoice.id)
            if plan is not None:
                plan_invoices.setdefault(plan.id, []).append(invoice)
                continue
        context = contexts.get(invoice.customer_id) or context_of(invoice.customer_id)
        if context.blocked is not None:
            run.skip(invoice, context.blocked)
            continue
        if invoice.id in disputes and run.disputed(invoice):
            continue
        if (
            discount is not None
            and balance <= invoice.total.amount * discount_share + ONE_CENT_OR_UNIT
            and invoice.id in settlements
        ):
            taken = discount_taken(invoice, settlements[invoice.id], discount[0], discount[1])
            if taken is not None:
                if not run.summary(invoice.id).credit_noted:
                    discount_credit_note(run, invoice, taken, discount[0], discount[1])
                run.skip(invoice, "settled with the early-payment discount")
                continue
        if balance < min_balance:
            run.skip(invoice, f"balance {invoice.balance} is below the minimum {min_balance}")
            continue
        evaluate(run, invoice, context, invoice.due_date)

    if payment_plans:
        # paid or closed invoices of a plan still matter for its balance only through open ones
        for plan_id, covered in plan_invoices.items():
            plan_payment_plan(run, payment_plans[plan_id], covered)
    emit_step_notices(run)
    emit_thanks(run)
    breaches = _credit_breaches(run, exposure, today, connection)
    suggestions = _limit_suggestions(run, tracker)
    out = run.out
    return Plan(
        actions=tuple(sorted(out.actions, key=plan_order)),
        superseded=tuple(sorted(out.superseded, key=plan_order)),
        skipped=tuple(out.skipped),
        credit=tuple(breaches),
        suggestions=tuple(suggestions),
        warnings=tuple(out.warnings),
    )


def _limit_of(run: DayRun, customer_id: str, cache: dict[object, Money | None]) -> Money | None:
    value = run.context(customer_id).settings.credit_limit
    if value not in cache:
        cache[value] = as_limit(value, run.policy.company.currency)
    return cache[value]


def _credit_breaches(
    run: DayRun, exposure: ExposureBuilder, today: date, connection: str
) -> list[CreditBreach]:
    breaches: list[CreditBreach] = []
    limits: dict[object, Money | None] = {}
    on_breach = run.policy.credit.on_breach.value
    for customer_id, amount in sorted(exposure.totals().items()):
        limit = _limit_of(run, customer_id, limits)
        if limit is None or amount <= limit.amount:
            continue
        breach = check_limit(exposure.exposure(customer_id), limit, on_breach)
        if breach is not None:
            breaches.append(breach)
            action = breach_action(breach, today, connection)
            if not any(action.key in run.summary(i).keys for i in breach.invoice_ids if i in run.history):
                run.out.actions.append(action)
    return breaches


def _limit_suggestions(run: DayRun, tracker: SuggestionTracker | None) -> list[LimitSuggestion]:
    if tracker is None:
        return []
    suggestions: list[LimitSuggestion] = []
    limits: dict[object, Money | None] = {}
    for customer_id in sorted(c for c in tracker.stats if tracker.would_change(c)):
        limit = _limit_of(run, customer_id, limits)
        if limit is not None:
            suggestion = tracker.suggestion(customer_id, limit)
            if suggestion.changes:
                suggestions.append(suggestion)
    return suggestions
