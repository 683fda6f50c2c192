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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from connectors.base import DayLimitReached, PullMode
from policies.credit import SuggestionTracker
from policies.model.actions import ActionKind
from policies.model.errors import RelanceError
from policies.model.ledger import settlements_by_invoice
from policies.planning import Plan, merge_plans, plan_day
from sync.store import LeaseBusy

if TYPE_CHECKING:
    from connectors.base import Connector
    from policies.config import Policy
    from policies.payment_plans import PaymentPlan
    from sync.config import ConnectionConfig
    from sync.store import Store
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


@dataclass
class ConnectionRun:
    """What one run did for one connection (the `relance sync --json` shape)."""

    name: str
    ledger: str
    pulled: Counter[str] = field(default_factory=Counter)
    planned: int = 0
    applied: int = 0
    superseded: int = 0
    cancelled: int = 0
    failed: int = 0
    uncertain: int = 0
    settled: int = 0
    deferred: int = 0
    quarantined: int = 0
    actions: Counter[str] = field(default_factory=Counter)  # applied, by kind
    steps: Counter[str] = field(default_factory=Counter)  # reminders applied, by step
    fees_total: dict[str, Decimal] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: str | None = None  # set when another process held the connection's lease

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ledger": self.ledger,
            "pulled": {
                "customers": self.pulled["customer"],
                "invoices": self.pulled["invoice"],
                "payments": self.pulled["payment"],
                "credit_notes": self.pulled["credit_note"],
            },
            "planned": self.planned,
            "applied": self.applied,
            "superseded": self.superseded,
            "cancelled": self.cancelled,
            "failed": self.failed,
            "uncertain": self.uncertain,
            "settled": self.settled,
            "deferred": self.deferred,
            "quarantined": self.quarantined,
            "actions": dict(sorted(self.actions.items())),
            "steps": dict(sorted(self.steps.items())),
            "fees_total": {cur: str(amount) for cur, amount in sorted(self.fees_total.items())},
            "errors": self.errors,
            "warnings": self.warnings,
            "skipped": self.skipped,
        }


@dataclass
class RunOptions:
    today: date | None = None  # None: today in the company's timezone
    dry_run: bool = False
    full: bool = False  # force a full pull
    apply: bool = True  # False: pull + plan + record (the `relance plan` path)
    max_attempts: int = 5
    # The daemon runs unattended: it sends emails only inside the company's send window (other
    # actions go on). A one-off command is an operator's decision and sends when asked.
    respect_send_window: bool = False
    should_stop: Callable[[], bool] = lambda: False  # daemon: SIGTERM finishes the action in hand
    progress: Callable[[str, int, int], None] | None = None


def summarise_warnings(warnings: Iterable[str]) -> list[str]:
    """One line per distinct warning: 'invoice X: <w>' repeated over many invoices is said once."""
    counts: Counter[str] = Counter()
    for warning in warnings:
        head, sep, rest = warning.partition(": ")
        counts[rest if sep and head.startswith("invoice ") else warning] += 1
    return [f"{text} ({n} invoices)" if n > 1 else text for text, n in counts.items()]


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
    from sync.apply import Applier

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
            applier = Applier(ws, connection, connector, policy, today, run, options)
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
                applier.preview = list(plan.actions)
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


def exit_code(runs: Iterable[ConnectionRun]) -> int:
    """0 ok, 1 error (every connection failed), 3 partial (some failed)."""
    runs = list(runs)
    failed = sum(1 for r in runs if not r.ok)
    if not failed:
        return 0
    return 1 if failed == len(runs) else 3
