"""The plan is data before anything is sent (OCA credit-control: policy -> level -> line).

`PlannedAction` is what the policy engine proposes for one day; `DoneAction` is what the outbox
says already happened (the history the engine must not repeat). Keys are deterministic: the same
facts on the same day give the same key, so re-planning never duplicates an effect.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from policies.model.money import Money


class ActionKind(StrEnum):
    REMINDER = "reminder"  # a ladder step notice (ledger email, relance email, letter)
    TASK = "task"  # call task, letter to print, credit-limit call
    AGENCY = "agency"  # hand-over to the collection agency
    FEE = "fee"  # interest / fixed compensation / fees posted to the ledger
    CREDIT_NOTE = "credit_note"  # early-payment discount, fee reversal
    NOTE = "note"  # a note on the invoice recording what relance did
    CREDIT_ALERT = "credit_alert"  # credit-limit breach (alert / hold), recorded and reported
    THANKS = "thanks"  # thank-you to a customer who paid after a reminder
    SUPERSEDED = "superseded"  # a step skipped after a gap: recorded, never sent


class ActionStatus(StrEnum):
    """Where an action stands in the outbox. planned -> in_flight (claimed, before any effect) ->
    done | failed | uncertain; superseded = recorded, never to be sent (a skipped step, or cancelled
    when re-checked). failed may be retried; uncertain waits for verification or the operator."""

    PLANNED = "planned"
    IN_FLIGHT = "in_flight"
    DONE = "done"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    UNCERTAIN = "uncertain"


OPEN_STATUSES = (ActionStatus.PLANNED, ActionStatus.FAILED)  # still to be applied (or retried)


class PlanStatus(StrEnum):
    """Lifecycle of an agreed payment plan."""

    ACTIVE = "active"
    COMPLETED = "completed"
    ACCELERATED = "accelerated"  # an instalment ran too late: the whole balance fell due
    CANCELLED = "cancelled"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


def action_key(*parts: object) -> str:
    """Deterministic key from the facts that identify an effect (never from the clock)."""
    text = "|".join(str(part) for part in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Charge:
    """One component of a fee action: accrued to date minus already charged."""

    component: str  # "interest" | "compensation" | "fee"
    amount: Money  # rounded once, half-up, at the currency's minor unit
    description: str = ""


@dataclass(frozen=True, slots=True)
class PlannedAction:
    key: str
    kind: ActionKind
    customer_id: str
    currency: str
    invoice_ids: tuple[str, ...]
    reason: str  # a human sentence: which step, how late, balance, why now
    step: str | None = None
    channel: str | None = None  # ledger_email | email | call_task | letter | agency
    template: str | None = None
    charges: tuple[Charge, ...] = ()
    instalment: int | None = None  # index of the instalment under a payment plan
    due_on: date | None = None  # the day the step fell due (after business-day adjustment)
    details: dict[str, object] = field(default_factory=dict)

    @property
    def total(self) -> Money:
        total = Money.zero(self.currency)
        for charge in self.charges:
            total = total + charge.amount
        return total


@dataclass(frozen=True, slots=True)
class DoneAction:
    """What the outbox records as done (or superseded / in flight): the planner's memory."""

    key: str
    kind: ActionKind
    invoice_ids: tuple[str, ...]
    step: str | None = None
    instalment: int | None = None
    charges: tuple[Charge, ...] = ()
    on: date | None = None
