"""What one run did for one connection (the `relance sync --json` shape), and how a run is asked
to behave. Below the engine and the applier: both write the report through its methods."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from policies.model.actions import ActionKind, PlannedAction


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


@dataclass
class ConnectionRun:
    """What one run did for one connection."""

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

    # -- what the applier reports -----------------------------------------------------------------

    def done(self, action: PlannedAction) -> None:
        self.applied += 1
        self.actions[action.kind.value] += 1
        if action.kind is ActionKind.REMINDER and action.step:
            self.steps[action.step] += 1
        if action.kind is ActionKind.FEE:
            amount = action.total.rounded().amount
            self.fees_total[action.currency] = self.fees_total.get(action.currency, Decimal(0)) + amount

    def unsure(self, action: PlannedAction, error: str | None) -> None:
        self.uncertain += 1
        self.errors.append(f"{action.kind} {action.key[:12]} uncertain: {error}")

    def refused(self, action: PlannedAction, error: str | None) -> None:
        self.failed += 1
        self.errors.append(f"{action.kind} {action.key[:12]} failed: {error}")

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


def summarise_warnings(warnings: Iterable[str]) -> list[str]:
    """One line per distinct warning: 'invoice X: <w>' repeated over many invoices is said once."""
    counts: Counter[str] = Counter()
    for warning in warnings:
        head, sep, rest = warning.partition(": ")
        counts[rest if sep and head.startswith("invoice ") else warning] += 1
    return [f"{text} ({n} invoices)" if n > 1 else text for text, n in counts.items()]


def exit_code(runs: Iterable[ConnectionRun]) -> int:
    """0 ok, 1 error (every connection failed), 3 partial (some failed)."""
    runs = list(runs)
    failed = sum(1 for r in runs if not r.ok)
    if not failed:
        return 0
    return 1 if failed == len(runs) else 3
