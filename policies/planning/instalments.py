"""Payment plans: covered invoices are not dunned while the plan is active; each missed instalment is
dunned on its own with the ladder's steps of offset >= 0 from the instalment's due date (no charges:
the plan is the agreed settlement). When an instalment is N days late (acceleration clause) the plan
ends and the ladder resumes on its open invoices from the acceleration date."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from policies.ladder import choose, positions_done
from policies.model.details import InstalmentTerms, NoticeDetails, NoticeLine
from policies.model.ledger import Invoice
from policies.model.money import Money
from policies.payment_plans import PaymentPlan, PlanState, evaluate_plan
from policies.planning.history import InvoiceHistory
from policies.planning.keys import step_key
from policies.planning.notices import emit_notice
from policies.planning.run import CustomerContext, DayRun, lateness, step_title
from policies.planning.steps import evaluate, supersede

ZERO = Decimal(0)


def plan_payment_plan(run: DayRun, plan: PaymentPlan, invoices: list[Invoice]) -> None:
    remaining = sum((invoice.balance.amount for invoice in invoices if invoice.is_open), ZERO)
    state = evaluate_plan(
        plan, remaining, run.today, acceleration_days=run.policy.payment_plans.acceleration_days
    )
    if state.completed:
        return
    context = run.context(plan.customer_id)
    if context.blocked is not None:
        for invoice in invoices:
            run.skip(invoice, context.blocked)
        return
    disputed = [invoice for invoice in invoices if run.disputed(invoice)]
    if state.accelerated_on is not None:
        for invoice in invoices:
            if not invoice.is_open or invoice in disputed:
                continue
            if invoice.balance.amount < run.min_balance:
                run.skip(invoice, f"balance {invoice.balance} is below the minimum {run.min_balance}")
                continue
            evaluate(run, invoice, context, max(invoice.due_date, state.accelerated_on), plan.id)
        return
    if disputed:  # a dispute on any covered invoice pauses the plan's dunning
        return
    for invoice in invoices:
        if invoice.is_open:
            run.skip(
                invoice,
                f"under payment plan {plan.id} ({len(plan.instalments)} instalments, "
                f"{Money(state.remaining, invoice.currency)} left)",
            )
    dun_missed_instalments(run, plan, state, [i for i in invoices if i.is_open] or invoices, context)


def dun_missed_instalments(
    run: DayRun, plan: PaymentPlan, state: PlanState, invoices: list[Invoice], context: CustomerContext
) -> None:
    ladder = context.ladder
    currency = invoices[0].currency
    ids = tuple(sorted(invoice.id for invoice in invoices))
    history = InvoiceHistory(
        [done for invoice_id in plan.invoice_ids for done in run.history.get(invoice_id, ())]
    )
    anchor = invoices[0]
    for item in state.missed(run.today):
        positions = [
            p
            for p in ladder.due_positions(item.due_date.toordinal(), run.t, min_offset=0)
            if ladder.step(p).min_amount <= item.remaining
        ]
        if not positions:
            continue
        done = positions_done(ladder, history.instalment_steps.get(item.index, ()))
        choice = choose(positions, done, ladder.tier, base_count=len(ladder.steps))
        instalment_key = f"{plan.id}#{item.index}"
        chosen = [ladder.step(p) for p in choice.chosen]
        for position in choice.superseded:
            supersede(
                run,
                anchor,
                context,
                ladder.step(position),
                ladder.step_day(item.due_date.toordinal(), position),
                chosen,
                instalment=item.index,
                instalment_key=instalment_key,
                invoice_ids=ids,
            )
        for step in chosen:
            kind = run.notice_kind(step.channel)
            key = step_key(
                run.connection, kind, step.name, plan.customer_id, currency, ids, instalment=instalment_key
            )
            amount = Money(item.remaining, currency)
            reason = (
                f"{step_title(step)}: instalment {item.index} of {len(plan.instalments)} "
                "of payment plan "
                f"{plan.id} (due {item.due_date}, {amount} unpaid) {lateness(item.days_late)}; "
                "no dispute; step never sent"
            )
            details = NoticeDetails(
                ladder=ladder.name,
                offset_days=step.offset_days,
                customer_name=context.customer.name,
                language=context.settings.language,
                balance=amount.rounded().amount,
                invoices=tuple(
                    NoticeLine(id=i.id, number=i.number, balance=i.balance.rounded().amount) for i in invoices
                ),
                demand_days=step.demand_days or None,
                instalment=InstalmentTerms(
                    plan_id=plan.id,
                    due_date=item.due_date,
                    amount=Money(item.amount, currency).rounded().amount,
                ),
            )
            emit_notice(
                run,
                kind,
                key,
                plan.customer_id,
                currency,
                ids,
                reason,
                step,
                date.fromordinal(ladder.step_day(item.due_date.toordinal(), step.position)),
                details,
                instalment=item.index,
            )
