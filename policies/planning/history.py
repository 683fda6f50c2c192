"""What the outbox history says about one invoice: the planner's memory, summarised once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from policies.model.actions import ActionKind, DoneAction
from policies.model.details import CREDIT_LIMIT_STEP

NOTICE_KINDS = frozenset({ActionKind.REMINDER, ActionKind.TASK, ActionKind.AGENCY})
STEP_KINDS = NOTICE_KINDS | {ActionKind.SUPERSEDED}
RECURRING_PREFIX = "recurring:"
CREDIT_STEP = CREDIT_LIMIT_STEP


class InvoiceHistory:
    """Steps done, charges posted, thanks and credit notes, for one invoice (built only when needed)."""

    __slots__ = (
        "compensation_charged",
        "credit_noted",
        "fees",
        "first_charge",
        "instalment_steps",
        "interest_charged",
        "keys",
        "reminded",
        "step_names",
        "thanked",
    )

    def __init__(self, done: Sequence[DoneAction] = ()) -> None:
        self.step_names: set[str] = set()
        self.instalment_steps: dict[int, set[str]] = {}
        self.keys: set[str] = set()
        self.interest_charged = Decimal(0)
        self.compensation_charged = False
        self.fees: set[tuple[str | None, str]] = set()
        self.first_charge: date | None = None
        self.reminded = self.thanked = self.credit_noted = False
        for item in done:
            self.keys.add(item.key)
            kind = item.kind
            if kind in STEP_KINDS and item.step is not None:
                if item.instalment is None:
                    self.step_names.add(item.step)
                else:
                    self.instalment_steps.setdefault(item.instalment, set()).add(item.step)
                if kind is not ActionKind.SUPERSEDED and item.step != CREDIT_STEP:
                    self.reminded = True
            elif kind is ActionKind.FEE:
                self._charged(item)
            elif kind is ActionKind.THANKS:
                self.thanked = True
            elif kind is ActionKind.CREDIT_NOTE:
                self.credit_noted = True

    def _charged(self, item: DoneAction) -> None:
        for charge in item.charges:
            if charge.component == "interest":
                self.interest_charged += charge.amount.amount
            elif charge.component == "compensation":
                self.compensation_charged = True
            elif charge.component == "fee":
                self.fees.add((item.step, charge.description))
        step = item.step or ""
        if (
            item.on is not None
            and not step.startswith(RECURRING_PREFIX)
            and (self.first_charge is None or item.on < self.first_charge)
        ):
            self.first_charge = item.on


NO_HISTORY = InvoiceHistory()
