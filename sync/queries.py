"""Library functions behind the operator commands (history, dispute, pause, payment-plan, tasks,
resolve, report). The CLI only parses arguments and prints what these return."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from policies.model.actions import ActionStatus, TaskStatus
from policies.model.errors import RelanceError
from policies.model.ledger import Customer, Instalment, Invoice
from policies.payment_plans import PaymentPlan
from sync.plans import plan_for
from sync.reports import aging
from sync.workspace import Workspace


def _connection_names(ws: Workspace, connection: str | None) -> list[str]:
    return [c.name for c in ws.connections(connection)]


def find_invoice(ws: Workspace, id_or_number: str, *, connection: str | None = None) -> tuple[str, Invoice]:
    """An invoice by ledger id or number; ambiguous across connections -> ask for --connection."""
    if connection:
        ws.connection(connection)  # unknown connection: clear error
    matches = ws.store.ledger.find_invoices(id_or_number, connection=connection)
    if not matches:
        raise RelanceError(
            f"invoice '{id_or_number}' is not in the state store",
            hint="check the number, or run `relance sync` to pull the latest invoices",
        )
    if len({name for name, _ in matches}) > 1:
        names = ", ".join(sorted({name for name, _ in matches}))
        raise RelanceError(
            f"invoice '{id_or_number}' exists in several connections ({names})", hint="add --connection NAME"
        )
    return matches[0]


def find_customer(ws: Workspace, id_or_name: str, *, connection: str | None = None) -> tuple[str, Customer]:
    found: list[tuple[str, Customer]] = []
    for name in _connection_names(ws, connection):
        customer = ws.store.ledger.customer(name, id_or_name)
        if customer is not None:
            found.append((name, customer))
            continue
        lowered = id_or_name.casefold()
        found.extend(
            (name, c)
            for c in ws.store.ledger.snapshot(name).customers.values()
            if c.name.casefold() == lowered
        )
    if not found:
        raise RelanceError(
            f"customer '{id_or_name}' is not in the state store",
            hint="use the ledger's customer id or exact name; run `relance sync` first",
        )
    if len(found) > 1:
        where = ", ".join(f"{name}:{c.id}" for name, c in found)
        raise RelanceError(
            f"customer '{id_or_name}' is ambiguous ({where})",
            hint="use the customer id and --connection NAME",
        )
    return found[0]


def invoice_history(ws: Workspace, invoice: str, *, connection: str | None = None) -> list[dict[str, Any]]:
    name, found = find_invoice(ws, invoice, connection=connection)
    entries = []
    for record in ws.store.outbox.actions(name, invoice_id=found.id):
        entries.append(
            {
                "at": (record.finished_at or record.updated_at).isoformat(timespec="seconds"),
                "key": record.key,
                "kind": record.kind,
                "step": record.step,
                "channel": record.channel,
                "status": record.status,
                "reason": record.reason,
                "charges": [f"{c.component} {c.amount.display()}" for c in record.charges],
                "ledger_ids": list(record.ledger_ids),
                "error": record.error,
            }
        )
    for dispute in ws.store.cases.dispute_records(name, include_cleared=True):
        if dispute.invoice_id == found.id:
            entries.append(
                {
                    "at": dispute.created_at.isoformat(timespec="seconds"),
                    "key": "",
                    "kind": "dispute",
                    "step": None,
                    "channel": None,
                    "status": "cleared" if dispute.cleared_at else "open",
                    "reason": dispute.reason or f"disputed until {dispute.until or 'further notice'}",
                    "charges": [],
                    "ledger_ids": [],
                    "error": None,
                }
            )
    entries.sort(key=lambda entry: str(entry["at"]))
    return entries


def set_dispute(
    ws: Workspace,
    invoice: str,
    *,
    until: date | None,
    reason: str,
    clear: bool,
    connection: str | None = None,
) -> str:
    name, found = find_invoice(ws, invoice, connection=connection)
    if clear:
        if not ws.store.cases.clear_dispute(name, found.id):
            return f"invoice {found.number} had no open dispute"
        return f"dispute on invoice {found.number} cleared: chasing resumes at the next sync"
    ws.store.cases.set_dispute(name, found.id, until=until, reason=reason)
    return f"invoice {found.number} disputed until {until or 'cleared'}: no reminders or fees meanwhile"


def set_pause(
    ws: Workspace, customer: str, *, until: date, reason: str, connection: str | None = None
) -> str:
    name, found = find_customer(ws, customer, connection=connection)
    ws.store.cases.set_pause(name, found.id, until, reason=reason)
    return f"customer {found.name} ({found.id}) paused until {until}"


def create_payment_plan(
    ws: Workspace,
    customer: str,
    invoices: Sequence[str],
    instalments: Sequence[tuple[date, Decimal]],
    *,
    acceleration_days: int | None,
    connection: str | None = None,
) -> str:
    if not instalments:
        raise RelanceError("a payment plan needs at least one instalment", hint="--instalment DATE:AMOUNT")
    for day, amount in instalments:
        if not amount.is_finite() or amount <= 0:
            raise RelanceError(
                f"instalment {day}:{amount}: the amount must be a positive number",
                hint="e.g. --instalment 2026-12-15:500.00",
            )
    if acceleration_days is not None and acceleration_days < 0:
        raise RelanceError("--acceleration-days must be 0 or more")
    name, found = find_customer(ws, customer, connection=connection)
    covered = [find_invoice(ws, number, connection=name)[1] for number in dict.fromkeys(invoices)]
    closed = [inv.number for inv in covered if not inv.is_open]
    if closed:
        raise RelanceError(
            f"invoice(s) {', '.join(closed)} have nothing left to pay",
            hint="a payment plan covers open invoices only",
        )
    foreign = [inv.number for inv in covered if inv.customer_id != found.id]
    if foreign:
        raise RelanceError(f"invoices {', '.join(foreign)} do not belong to customer {found.name}")
    if len({inv.currency for inv in covered}) > 1:
        raise RelanceError(
            "a payment plan covers invoices of one currency", hint="make one plan per currency"
        )
    balance = sum((inv.balance.amount for inv in covered), Decimal(0))
    planned = sum((amount for _, amount in instalments), Decimal(0))
    if planned != balance:
        raise RelanceError(
            f"instalments add up to {planned} but the invoices' balance is {balance}",
            hint="make the instalments sum to the open balance",
        )
    ordered = tuple(Instalment(day, amount) for day, amount in sorted(instalments))
    digest = hashlib.sha256(
        f"{name}|{found.id}|{sorted(i.id for i in covered)}|{ordered}".encode()
    ).hexdigest()
    plan = PaymentPlan(
        f"plan-{digest[:12]}", found.id, tuple(inv.id for inv in covered), ordered, acceleration_days
    )
    if any(record.plan.id == plan.id for record in ws.store.cases.payment_plan_records(name)):
        return f"payment plan {plan.id} for {found.name} already exists: nothing changed"
    plan_id = ws.store.cases.add_payment_plan(name, plan)
    return (
        f"payment plan {plan_id} for {found.name}: {len(ordered)} instalments, "
        f"{covered[0].currency} {balance:,.2f}; the ladder pauses on {len(covered)} invoice(s)"
    )


def list_tasks(
    ws: Workspace, *, connection: str | None = None, include_done: bool = False
) -> list[dict[str, Any]]:
    rows = []
    names = _connection_names(ws, connection)
    for name in names:
        for task in ws.store.tasks.records(name, status=None if include_done else TaskStatus.OPEN):
            payload = task.payload or {}
            rows.append(
                {
                    "key": task.key,
                    "connection": name,
                    "kind": task.kind,
                    "status": task.status,
                    "customer": payload.get("customer_name") or task.customer_id or "",
                    "summary": task.title,
                    "amount_due": str(payload.get("amount_due") or ""),
                    "due_on": payload.get("due_on"),
                    "phone": payload.get("phone"),
                    "letter": payload.get("letter_path"),
                    "note": task.note,
                }
            )
    return rows


def _unique_prefix(given: str, keys: Sequence[str], what: str, hint: str) -> str:
    """The one key equal to or starting with `given` (tables show keys shortened to 12 characters)."""
    if given in keys:
        return given
    matches = sorted({key for key in keys if given and key.startswith(given)})
    if not matches:
        raise RelanceError(f"no {what} '{given}'", hint=hint)
    if len(matches) > 1:
        raise RelanceError(
            f"'{given}' matches {len(matches)} {what}s ({', '.join(m[:16] for m in matches[:3])}, ...)",
            hint="give more characters of the key",
        )
    return matches[0]


def complete_task(ws: Workspace, key: str) -> str:
    """Close an open task by its key (or a unique start of it, as `relance tasks` shows)."""
    hint = "`relance tasks` lists open tasks and their keys"
    open_tasks = ws.store.tasks.records(status=TaskStatus.OPEN)
    by_id = {str(task.id): task.key for task in open_tasks}
    full = by_id.get(key) or _unique_prefix(key, [task.key for task in open_tasks], "open task", hint)
    if not ws.store.tasks.complete(full):
        raise RelanceError(f"no open task '{key}'", hint=hint)
    return f"task {full} done"


def resolve_uncertain(ws: Workspace, key: str, *, sent: bool) -> str:
    hint = "`relance reconcile` lists uncertain actions and their keys"
    record = ws.store.outbox.action(key)
    if record is None:
        uncertain = [r.key for r in ws.store.outbox.actions(status=ActionStatus.UNCERTAIN)]
        key = _unique_prefix(key, uncertain, "uncertain action", hint)
        record = ws.store.outbox.action(key)
    if record is None:
        raise RelanceError(f"no action with key '{key}'", hint=hint)
    if record.status != ActionStatus.UNCERTAIN:
        raise RelanceError(f"action {key} is {record.status}, not uncertain: nothing to resolve")
    ws.store.outbox.resolve_uncertain(key, happened=sent)
    return (
        f"action {key} marked done"
        if sent
        else f"action {key} will be applied again at the next sync (if still due)"
    )


def aging_report(
    ws: Workspace, *, connection: str | None = None, today: date | None = None
) -> dict[str, Any]:
    reports: dict[str, Any] = {}
    for config in ws.connections(connection):
        as_of = ws.today_for(config, override=today)
        snapshot = ws.store.ledger.snapshot(config.name)
        report = aging(snapshot, as_of)
        plan = plan_for(ws.store, ws.policy_for(config), config.name, as_of)
        report.breaches = [
            {
                "customer": snapshot.customers[b.customer_id].name
                if b.customer_id in snapshot.customers
                else b.customer_id,
                "customer_id": b.customer_id,
                "exposure": b.exposure.display(),
                "limit": b.limit.display(),
                "action": b.action,
                "reason": b.reason,
            }
            for b in plan.credit
        ]
        payload = report.to_json()
        payload["limit_suggestions"] = [
            {
                "customer_id": s.customer_id,
                "current": s.current.display(),
                "suggested": s.suggested.display(),
                "reasons": list(s.reasons),
            }
            for s in plan.suggestions
        ]
        reports[config.name] = payload
    return reports
