"""Today's plan for one connection from the state store, in bounded memory: `plan_day` over batches
of whole customers, merged (a building block of the run; sync.engine orchestrates)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from policies.config import Policy
from policies.credit import SuggestionTracker
from policies.model.ledger import settlements_by_invoice
from policies.payment_plans import PaymentPlan
from policies.planning import Plan, merge_plans, plan_day
from sync.store import Store


def plan_for(store: Store, policy: Policy, name: str, today: date, *, batch: int = 5000) -> Plan:
    """Today's plan for one connection, in bounded memory: `plan_day` runs on one batch of whole
    customers at a time (`iter_plan_parts`) and the parts are merged. Same plan as a single pass
    over the whole snapshot (`plan_from_snapshot`): every rule of `plan_day` is per customer."""
    return merge_plans(list(iter_plan_parts(store, policy, name, today, batch=batch)))


def iter_plan_parts(
    store: Store, policy: Policy, name: str, today: date, *, batch: int = 5000
) -> Iterable[Plan]:
    """Plans of successive batches of whole customers (`store.planning.iter_batches`): the invoices that
    can yield an action or feed a rule, with their settlements and history. A caller may record each
    part as it comes (a first run over a large ledger plans many actions); `merge_plans` of all the
    parts is `plan_from_snapshot`."""
    disputes = store.cases.disputes(name, today)
    pauses = store.cases.pauses(name, today)
    payment_plans = store.cases.payment_plans(name)
    if not _plans_within_their_customer(store, name, payment_plans):
        # An invoice moved to another customer after its plan was agreed: the plan spans batches.
        yield plan_from_snapshot(store, policy, name, today)
        return
    plans_of: dict[str, dict[str, PaymentPlan]] = {}
    for plan in payment_plans.values():
        plans_of.setdefault(plan.customer_id, {})[plan.id] = plan
    rule = policy.credit.suggestion
    paid_since = (
        date.fromordinal(SuggestionTracker(policy.company.currency, today, rule).since_ordinal)
        if rule.enabled
        else None
    )
    for part in store.planning.iter_batches(
        name, paid_since=paid_since, include_drafts=policy.credit.include_drafts, batch=batch
    ):
        plans = (
            {
                plan_id: plan
                for customer_id in dict.fromkeys(invoice.customer_id for invoice in part.invoices)
                for plan_id, plan in plans_of.get(customer_id, {}).items()
            }
            if plans_of
            else None
        )
        yield plan_day(
            policy=policy,
            today=today,
            customers=part.customers,
            invoices=part.invoices,
            settlements=part.settlements,
            history=part.history,
            disputes=disputes,
            pauses=pauses,
            payment_plans=plans,
            connection=name,
        )


def _plans_within_their_customer(store: Store, name: str, plans: dict[str, PaymentPlan]) -> bool:
    if not plans:
        return True
    owners = store.ledger.invoice_customers(name, [i for plan in plans.values() for i in plan.invoice_ids])
    return all(
        owners.get(invoice_id, plan.customer_id) == plan.customer_id
        for plan in plans.values()
        for invoice_id in plan.invoice_ids
    )


def plan_from_snapshot(store: Store, policy: Policy, name: str, today: date) -> Plan:
    """The single pass over the whole stored ledger (memory grows with the ledger): the reference
    `plan_for` is checked against, and its fallback when a payment plan spans customers."""
    snapshot = store.ledger.snapshot(name)
    return plan_day(
        policy=policy,
        today=today,
        customers=snapshot.customers,
        invoices=snapshot.invoices.values(),
        settlements=settlements_by_invoice(snapshot.payments.values(), snapshot.credit_notes.values()),
        history=store.outbox.history(name),
        disputes=store.cases.disputes(name, today),
        pauses=store.cases.pauses(name, today),
        payment_plans=store.cases.payment_plans(name),
        connection=name,
    )
