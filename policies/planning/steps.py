"""The ladder on one invoice: which steps fall due today, which one is proposed, which are
superseded (each step at most once; after a gap only the most advanced due tier, never a burst)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from policies.ladder import StepSpec, choose
from policies.model.actions import ActionKind, PlannedAction
from policies.model.details import SupersededDetails
from policies.model.ledger import Invoice
from policies.planning.charges import post_charges, recurring_fee
from policies.planning.history import NO_HISTORY, STEP_KINDS
from policies.planning.keys import step_key
from policies.planning.run import CustomerContext, DayRun, Due, step_title


def evaluate(
    run: DayRun, invoice: Invoice, context: CustomerContext, effective_due: date, plan_id: str | None = None
) -> None:
    """Queue the invoice's due step(s) for grouping into notices, record superseded steps, and post
    the charges of the steps proposed (plus those rolled over from steps never sent)."""
    ladder = context.ladder
    due_ordinal = effective_due.toordinal()
    positions = ladder.due_positions(due_ordinal, run.t)
    if not positions:
        return
    balance = invoice.balance.amount
    if balance < ladder.max_min_amount:
        positions = [p for p in positions if ladder.step(p).min_amount <= balance]
    done_list = run.history.get(invoice.id)
    done: set[int] = set()
    if done_list:
        position_get = ladder.position_get
        for item in done_list:
            if item.instalment is None and item.kind in STEP_KINDS:
                position = position_get(item.step)
                if position is not None:  # steps the current ladder does not have are ignored
                    done.add(position)
    choice = choose(positions, done, ladder.tier, base_count=len(ladder.steps))
    if run.recurring is not None and done_list:
        summary = run.summary(invoice.id)
        if summary.first_charge is not None:
            recurring_fee(run, invoice, context, summary, effective_due)
    if not choice.chosen and not choice.superseded:
        return
    history = run.summary(invoice.id) if done_list else NO_HISTORY
    chosen_steps = [ladder.step(p) for p in choice.chosen]
    superseded_steps = [ladder.step(p) for p in choice.superseded]
    superseded_names = tuple(step.name for step in superseded_steps)
    for step in superseded_steps:
        supersede(run, invoice, context, step, ladder.step_day(due_ordinal, step.position), chosen_steps)
    if not chosen_steps:
        return
    for step in chosen_steps:
        run.groups.setdefault((invoice.customer_id, invoice.currency, ladder.name, step.position), []).append(
            Due(
                invoice,
                step,
                ladder.step_day(due_ordinal, step.position),
                effective_due,
                superseded_names,
                plan_id,
            )
        )
    # Interest and compensation of steps never sent (superseded now, or in an earlier plan) roll
    # onto the step sent now; charging is cumulative, so nothing already posted is posted twice.
    skipped = list(superseded_steps)
    if done_list:
        first = min(choice.chosen)
        for done_action in done_list:
            if done_action.kind is ActionKind.SUPERSEDED and done_action.instalment is None:
                position = ladder.position_get(done_action.step)
                if position is not None and position < first:
                    skipped.append(ladder.step(position))
    rolled = {c for step in skipped for c in step.charges if c in ("interest", "compensation")}
    if rolled or any(step.charges for step in chosen_steps):
        post_charges(run, invoice, context, chosen_steps, rolled, history, effective_due)


def supersede(
    run: DayRun,
    invoice: Invoice,
    context: CustomerContext,
    step: StepSpec,
    day: int,
    chosen: Sequence[StepSpec],
    instalment: int | None = None,
    instalment_key: str = "",
    invoice_ids: tuple[str, ...] | None = None,
) -> None:
    """Record a due step that will never be sent (kind SUPERSEDED)."""
    ids = invoice_ids or (invoice.id,)
    key = step_key(
        run.connection,
        ActionKind.SUPERSEDED,
        step.name,
        invoice.customer_id,
        invoice.currency,
        ids,
        instalment=instalment_key,
    )
    by = (
        f"superseded by {', '.join(repr(s.name) for s in chosen)} (one notice after a gap, never a burst)"
        if chosen
        else "superseded: a more advanced step was already done"
    )
    subject = f"instalment {instalment}" if instalment is not None else f"invoice {invoice.number}"
    run.out.superseded.append(
        PlannedAction(
            key=key,
            kind=ActionKind.SUPERSEDED,
            customer_id=invoice.customer_id,
            currency=invoice.currency,
            invoice_ids=ids,
            reason=f"{step_title(step)} for {subject} fell due on {date.fromordinal(day).isoformat()} "
            f"but was never sent; {by}",
            step=step.name,
            channel=step.channel,
            template=step.template,
            instalment=instalment,
            due_on=date.fromordinal(day),
            details=SupersededDetails(ladder=context.ladder.name, offset_days=step.offset_days),
        )
    )
