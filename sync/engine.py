"""The run, per connection, under a lease: settle -> pull -> plan -> re-pull -> apply.

Exactly-once rests on three things: deterministic action keys (the planner), the outbox (an action
is claimed `in_flight` before any effect, so a crash leaves a trace), and settlement of that trace
on restart (idempotent calls repeated with the same key; non-idempotent ones verified in the ledger
or marked `uncertain` for the operator — never sent blindly twice).
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from collections.abc import Iterable
from datetime import date, timedelta

from connectors.base import Connector, DayLimitReached, PullMode
from policies.config import Policy
from policies.credit import SuggestionTracker
from policies.model.actions import ActionKind
from policies.model.errors import RelanceError
from policies.model.ledger import settlements_by_invoice
from policies.payment_plans import PaymentPlan
from policies.planning import Plan, merge_plans, plan_day
from sync.apply import Applier, Target
from sync.channels.context import CompanyInfo
from sync.channels.sender import ChannelDispatch, RunKit
from sync.config import ConnectionConfig
from sync.rulebook import channel_plugins
from sync.run_report import ConnectionRun, RunOptions, summarise_warnings
from sync.store import LeaseBusy, Store
from sync.workspace import Workspace

log = logging.getLogger("relance.sync")

# Apply order: the notice first, then what follows from it (fees, notes on the invoice).
_APPLY_ORDER = {
    ActionKind.CREDIT_ALERT: 0,
    ActionKind.REMINDER: 1,
    ActionKind.TASK: 1,
    ActionKind.AGENCY: 1,
    ActionKind.FEE: 2,
    ActionKind.CREDIT_NOTE: 3,
    ActionKind.THANKS: 4,
    ActionKind.NOTE: 5,
}


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# ---------------------------------------------------------------- building blocks


def pull_into_store(
    connector: Connector, store: Store, name: str, *, history_from: date, full: bool = False
) -> tuple[Counter[str], int]:
    """Stream pages into the store; the cursor is saved only once every page is stored."""
    cursor = None if full else store.connections.cursor(name)
    stream = connector.pull(cursor, history_from=history_from)
    counts: Counter[str] = Counter()
    quarantined = 0
    for page in stream:
        store.ledger.upsert_records(name, page)
        counts[page.entity] += len(page.records)
        for bad in page.quarantined:
            store.quarantine.add(name, bad)
            quarantined += 1
    store.connections.set_cursor(name, stream.cursor, full=stream.mode is PullMode.FULL)
    return counts, quarantined


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


def history_from(connection: ConnectionConfig, today: date) -> date:
    months = connection.history_months
    return today - timedelta(days=round(months * 365.25 / 12))


# ---------------------------------------------------------------- the run


def run_connection(ws: Workspace, connection: ConnectionConfig, options: RunOptions) -> ConnectionRun:
    """One connection, end to end. Connector errors end up in `errors`, never as a traceback."""
    run = ConnectionRun(connection.name, connection.ledger)
    store = ws.store
    try:
        policy = ws.policy_for(connection)
        today = ws.today_for(connection, override=options.today)
        connector = ws.open_connector(connection, today=options.today)
    except RelanceError as error:
        run.errors.append(str(error))
        return run
    try:
        with store.lease(connection.name, holder_name()):
            applier = Applier(
                store=store,
                connector=connector,
                target=Target(connection.name, connection.fee_mode),
                policy=policy,
                today=today,
                channels=channel_dispatch(ws, connection.name, policy, today),
                report=run,
                options=options,
                clock=ws.clock,
            )
            if not options.dry_run and options.apply:
                applier.settle_in_flight()
            counts, bad = pull_into_store(
                connector,
                store,
                connection.name,
                history_from=history_from(connection, today),
                full=options.full,
            )
            run.pulled.update(counts)
            run.quarantined += bad
            plan = plan_for(store, policy, connection.name, today)
            run.warnings.extend(summarise_warnings(plan.warnings))
            if options.dry_run:
                run.planned = len(plan.actions)
                return run
            run.planned = len(store.outbox.record_planned(connection.name, plan.actions))
            store.outbox.record_superseded(connection.name, plan.superseded)
            run.superseded += len(plan.superseded)
            if not options.apply:
                return run
            # A payment received since the first pull must cancel its reminders: look again.
            counts, bad = pull_into_store(
                connector, store, connection.name, history_from=history_from(connection, today)
            )
            run.quarantined += bad
            fresh = plan_for(store, policy, connection.name, today)
            run.planned += len(store.outbox.record_planned(connection.name, fresh.actions))
            store.outbox.record_superseded(connection.name, fresh.superseded)
            kept = applier.cancel_stale(fresh.actions)
            todo = [*fresh.actions, *kept]
            applier.apply(sorted(todo, key=lambda a: (_APPLY_ORDER.get(a.kind, 9), a.key)))
            store.connections.touch(connection.name, ledger=connection.ledger, error=None)
    except LeaseBusy as error:
        # Another process is applying for this tenant right now: not a failure, just not our turn.
        run.skipped = str(error)
        run.warnings.append(f"skipped: {error}")
    except DayLimitReached as error:
        run.errors.append(str(error))
        store.connections.touch(connection.name, ledger=connection.ledger, error=str(error))
    except RelanceError as error:
        run.errors.append(str(error))
        store.connections.touch(connection.name, ledger=connection.ledger, error=str(error))
    except Exception as error:  # a bug must not stop the other connections (nor the daemon)
        log.exception("unexpected error on connection %s", connection.name)
        run.errors.append(f"internal error ({type(error).__name__}: {error}); please report it")
        store.connections.touch(connection.name, ledger=connection.ledger, error=str(error))
    finally:
        connector.close()
    return run


def channel_dispatch(ws: Workspace, name: str, policy: Policy, today: date) -> ChannelDispatch:
    """How one connection's notices are delivered today: the installed channels, the workspace's
    templates, outbox and e-mail settings, and the company as the policy describes it."""
    kit = RunKit(
        connection=name,
        store=ws.store,
        outbox_dir=ws.outbox_dir,
        template_dirs=tuple(str(ws.resolve(d)) for d in ws.config.templates_dirs),
        email_settings=ws.email_settings,
    )

    def company() -> CompanyInfo:
        law = policy.statutory_law()
        return CompanyInfo(
            name=policy.company.name,
            email=kit.email.get("from") or "",
            country=policy.company.country,
            language=policy.company.language,
            law=law.code if law is not None else None,
        )

    return ChannelDispatch(kit, channel_plugins(), company, today)


def run_sync(ws: Workspace, options: RunOptions, *, connection: str | None = None) -> list[ConnectionRun]:
    runs = []
    for config in ws.connections(connection):
        if options.should_stop():
            break
        runs.append(run_connection(ws, config, options))
    return runs


def preview(
    ws: Workspace, *, connection: str | None = None, today: date | None = None, pull: bool = True
) -> dict[str, Plan]:
    """What each connection would do today (the `relance plan` path): pulls, records nothing."""
    plans = {}
    for config in ws.connections(connection):
        policy = ws.policy_for(config)
        day = ws.today_for(config, override=today)
        if pull:
            connector = ws.open_connector(config, today=today)
            try:
                with ws.store.lease(config.name, holder_name()):
                    pull_into_store(connector, ws.store, config.name, history_from=history_from(config, day))
            finally:
                connector.close()
        plans[config.name] = plan_for(ws.store, policy, config.name, day)
    return plans
