"""The plan is data before anything is sent (OCA credit-control: policy -> level -> line).

`PlannedAction` is what the policy engine proposes for one day; `DoneAction` is what the outbox
says already happened (the history the engine must not repeat). Keys are deterministic: the same
facts on the same day give the same key, so re-planning never duplicates an effect.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from policies.model.details import Details
from policies.model.kinds import OPEN_STATUSES, ActionKind, ActionStatus, PlanStatus, TaskStatus
from policies.model.money import Money

__all__ = [
    "OPEN_STATUSES",
    "ActionKind",
    "ActionStatus",
    "Charge",
    "DoneAction",
    "PlanStatus",
    "PlannedAction",
    "TaskStatus",
    "action_key",
]


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
    details: Details | None = None

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
