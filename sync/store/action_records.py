"""Outbox rows <-> records: `ActionRecord` (one row of `actions`, as read back) and the row shapes
the outbox writes and the planner's history reads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from policies.model.actions import ActionKind, ActionStatus, Charge, DoneAction, PlannedAction
from policies.model.details import Details
from sync.store import codec
from sync.store.details_codec import decode_details, encode_details


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One outbox row."""

    key: str
    connection: str
    kind: str
    customer_id: str
    currency: str
    invoice_ids: tuple[str, ...]
    step: str | None
    channel: str | None
    template: str | None
    instalment: int | None
    charges: tuple[Charge, ...]
    reason: str
    status: ActionStatus
    attempts: int
    ledger_ids: tuple[str, ...]
    error: str | None
    planned_for: date | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    details: Details | None  # what the planner said (typed)
    outcome: dict[str, Any]  # what the effect reported when done (message id, files, applied_on, ...)

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe form (amounts as strings, datetimes ISO); `details` holds the planner's details
        and the outcome together, as the outbox stores them."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "outcome"}
        data["charges"] = codec.encode_charges(self.charges)
        data["details"] = {**encode_details(self.details), **self.outcome}
        result: dict[str, Any] = codec.jsonable(data)
        return result

    def to_planned(self) -> PlannedAction:
        return PlannedAction(
            key=self.key,
            kind=ActionKind(self.kind),
            customer_id=self.customer_id,
            currency=self.currency,
            invoice_ids=self.invoice_ids,
            reason=self.reason,
            step=self.step,
            channel=self.channel,
            template=self.template,
            charges=self.charges,
            instalment=self.instalment,
            due_on=self.planned_for,
            details=self.details,
        )


def action_row(connection: str, action: PlannedAction, status: ActionStatus, now: datetime) -> dict[str, Any]:
    return {
        "key": action.key,
        "connection": connection,
        "kind": action.kind.value,
        "customer_id": action.customer_id,
        "currency": action.currency,
        "invoice_ids": list(action.invoice_ids),
        "step": action.step,
        "channel": action.channel,
        "template": action.template,
        "instalment": action.instalment,
        "charges": codec.encode_charges(action.charges),
        "reason": action.reason,
        "status": status,
        "attempts": 0,
        "ledger_ids": [],
        "error": None,
        "planned_for": action.due_on,
        "created_at": now,
        "updated_at": now,
        "started_at": None,
        "finished_at": now if status is ActionStatus.SUPERSEDED else None,
        "details": encode_details(action.details),
    }


def action_record(row: sa.Row[Any]) -> ActionRecord:
    kind = ActionKind(row.kind)
    details, outcome = decode_details(kind, row.step, row.details)
    return ActionRecord(
        key=row.key,
        connection=row.connection,
        kind=row.kind,
        customer_id=row.customer_id,
        currency=row.currency,
        invoice_ids=tuple(row.invoice_ids),
        step=row.step,
        channel=row.channel,
        template=row.template,
        instalment=row.instalment,
        charges=codec.decode_charges(row.charges),
        reason=row.reason,
        status=ActionStatus(row.status),
        attempts=row.attempts,
        ledger_ids=tuple(row.ledger_ids),
        error=row.error,
        planned_for=row.planned_for,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        details=details,
        outcome=outcome,
    )


def history_columns(a: sa.Table) -> tuple[sa.Column[Any], ...]:
    return (
        a.c.key,
        a.c.kind,
        a.c.invoice_ids,
        a.c.step,
        a.c.instalment,
        a.c.charges,
        a.c.planned_for,
        a.c.created_at,
        a.c.status,
    )


def done_action(row: sa.Row[Any]) -> DoneAction:
    kind = ActionKind(row.kind)
    cancelled = row.status == ActionStatus.SUPERSEDED and kind is not ActionKind.SUPERSEDED
    return DoneAction(
        key=row.key,
        kind=kind,
        invoice_ids=tuple(row.invoice_ids),
        step=row.step,
        instalment=row.instalment,
        charges=() if cancelled else codec.decode_charges(row.charges),
        on=row.planned_for or row.created_at.date(),
    )
