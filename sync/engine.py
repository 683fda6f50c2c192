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
from datetime import date

from connectors.base import DayLimitReached
from policies.config import Policy
from policies.model.actions import ActionKind
from policies.model.errors import RelanceError
from policies.planning import Plan
from sync.apply import Applier, Target
from sync.channels.context import CompanyInfo
from sync.channels.sender import ChannelDispatch, RunKit
from sync.config import ConnectionConfig
from sync.plans import plan_for
from sync.pull import history_from, pull_into_store
from sync.rulebook import channel_plugins
from sync.run_report import ConnectionRun, RunOptions, summarise_warnings
from sync.store import LeaseBusy
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
                history_from=history_from(connection.history_months, today),
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
                connector, store, connection.name, history_from=history_from(connection.history_months, today)
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
                    since = history_from(config.history_months, day)
                    pull_into_store(connector, ws.store, config.name, history_from=since)
            finally:
                connector.close()
        plans[config.name] = plan_for(ws.store, policy, config.name, day)
    return plans
