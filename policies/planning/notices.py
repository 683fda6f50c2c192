"""Notices: invoices of one customer and currency due for the same step today form ONE notice
(REMINDER, TASK or AGENCY by the channel's kind) listing all their invoices, plus a NOTE per invoice;
and the THANKS to a customer who paid after being reminded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from policies.discount import discount_offer
from policies.interest import compensation
from policies.ladder import StepSpec
from policies.model.actions import ActionKind, PlannedAction
from policies.model.details import NoteDetails, NoticeDetails, NoticeLine, ThanksDetails
from policies.model.ledger import Invoice
from policies.model.money import Money
from policies.planning.history import CREDIT_STEP, NOTICE_KINDS
from policies.planning.keys import note_key, step_key, thanks_key
from policies.planning.run import DayRun, Due, lateness, step_title

ZERO = Decimal(0)


def notice_groups(run: DayRun) -> Iterator[tuple[str, str, str, list[Due]]]:
    """(customer, currency, ladder, dues) per notice: the invoices of one customer and currency due
    for the same step of the same ladder today, by due date then number."""
    for (customer_id, currency, ladder_name, _position), dues in run.groups.items():
        dues.sort(key=lambda due: (due.invoice.due_date, due.invoice.number, due.invoice.id))
        yield customer_id, currency, ladder_name, dues


def emit_step_notices(run: DayRun) -> None:
    for customer_id, currency, ladder_name, dues in notice_groups(run):
        step = dues[0].step
        context = run.contexts[customer_id]
        ids = tuple(sorted(due.invoice.id for due in dues))
        kind = run.notice_kind(step.channel)
        key = step_key(run.connection, kind, step.name, customer_id, currency, ids)
        total = Money(sum((due.invoice.balance.amount for due in dues), ZERO), currency)
        parts = []
        lines = []
        for due in dues:
            invoice = due.invoice
            days_late = run.t - due.effective_due.toordinal()
            text = f"{invoice.number} {lateness(days_late)}, balance {invoice.balance}"
            if due.accelerated_plan:
                text += (
                    f" (due {due.effective_due} under the acceleration clause of plan {due.accelerated_plan})"
                )
            parts.append(text)
            offer = None
            if step.offset_days < 0 and run.discount is not None:
                offer = discount_offer(invoice, run.discount[0], run.discount[1], run.today)
            owed = None
            if days_late > 0 and not context.b2c:
                # what the law owes in fixed compensation, cited by the notice (charged or not)
                fixed = compensation(run.law, invoice.balance, False)
                owed = fixed.rounded().amount if fixed.amount > 0 else None
            lines.append(
                NoticeLine(
                    id=invoice.id,
                    number=invoice.number,
                    issue_date=invoice.issue_date,
                    due_date=due.effective_due,
                    total=invoice.total.rounded().amount,
                    balance=invoice.balance.rounded().amount,
                    days_late=days_late,
                    discount=offer.terms() if offer is not None else None,
                    pay_link=invoice.pay_link or None,
                    statutory_compensation=owed,
                )
            )
        if len(dues) == 1:
            what = f"invoice {parts[0]}"
        else:
            what = f"{len(dues)} invoices, {total} in all: " + "; ".join(parts)
        superseded = sorted({name for due in dues for name in due.superseded})
        reason = f"{step_title(step)}: {what}; no dispute; step never sent"
        if superseded:
            reason += f"; supersedes {', '.join(repr(name) for name in superseded)} (not sent in time)"
        details = NoticeDetails(
            ladder=ladder_name,
            offset_days=step.offset_days,
            customer_name=context.customer.name,
            language=context.settings.language,
            balance=total.rounded().amount,
            invoices=tuple(lines),
            demand_days=step.demand_days or None,
            repeat=step.repeat_index or None,
        )
        due_on = date.fromordinal(max(due.step_day for due in dues))
        emit_notice(run, kind, key, customer_id, currency, ids, reason, step, due_on, details)


def emit_notice(
    run: DayRun,
    kind: ActionKind,
    key: str,
    customer_id: str,
    currency: str,
    ids: tuple[str, ...],
    reason: str,
    step: StepSpec,
    due_on: date,
    details: NoticeDetails,
    instalment: int | None = None,
) -> None:
    """The notice, then a NOTE per invoice recording it in the ledger."""
    run.out.actions.append(
        PlannedAction(
            key=key,
            kind=kind,
            customer_id=customer_id,
            currency=currency,
            invoice_ids=ids,
            reason=reason,
            step=step.name,
            channel=step.channel,
            template=step.template,
            instalment=instalment,
            due_on=due_on,
            details=details,
        )
    )
    for invoice_id in ids:
        run.out.actions.append(
            PlannedAction(
                key=note_key(key, invoice_id),
                kind=ActionKind.NOTE,
                customer_id=customer_id,
                currency=currency,
                invoice_ids=(invoice_id,),
                reason=f"note on the invoice: relance {step.channel} '{step.name}' ({step.label})"
                + (f" for instalment {instalment}" if instalment is not None else ""),
                step=step.name,
                channel=step.channel,
                instalment=instalment,
                due_on=due_on,
                details=NoteDetails(notice_key=key, notice_kind=kind),
            )
        )


def queue_thanks(run: DayRun, invoice: Invoice) -> None:
    """A paid invoice that received a notice (and no thanks yet) is queued for thanks."""
    done = run.history.get(invoice.id)
    if not done:
        return
    reminded = False
    for item in done:
        if item.kind is ActionKind.THANKS:
            return
        if item.kind in NOTICE_KINDS and item.step != CREDIT_STEP:
            reminded = True
    if reminded:
        run.thanks.setdefault((invoice.customer_id, invoice.currency), []).append(invoice)


def emit_thanks(run: DayRun) -> None:
    """Once per invoice; invoices of one customer and currency thanked the same day form one action."""
    for (customer_id, currency), invoices in run.thanks.items():
        invoices.sort(key=lambda invoice: (invoice.number, invoice.id))
        ids = tuple(sorted(invoice.id for invoice in invoices))
        numbers = ", ".join(invoice.number for invoice in invoices)
        context = run.context(customer_id)
        run.out.actions.append(
            PlannedAction(
                key=thanks_key(run.connection, customer_id, currency, ids),
                kind=ActionKind.THANKS,
                customer_id=customer_id,
                currency=currency,
                invoice_ids=ids,
                reason=f"invoice{'s' if len(ids) > 1 else ''} {numbers} fully paid after reminders; "
                "no thanks sent yet",
                template="thanks",
                channel="email",
                due_on=run.today,
                details=ThanksDetails(
                    customer_name=context.customer.name,
                    language=context.settings.language,
                    invoices=tuple(
                        NoticeLine(id=i.id, number=i.number, total=i.total.rounded().amount) for i in invoices
                    ),
                ),
            )
        )
