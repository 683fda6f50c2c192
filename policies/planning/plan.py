"""The plan as data: what one day's planning proposes, in one canonical order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from policies.credit import CreditBreach, LimitSuggestion
from policies.model.actions import ActionKind, PlannedAction

_KIND_ORDER = {kind: index for index, kind in enumerate(ActionKind)}


@dataclass(frozen=True, slots=True)
class SkipReason:
    invoice_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[PlannedAction, ...] = ()
    superseded: tuple[PlannedAction, ...] = ()  # kind SUPERSEDED: record, never send
    skipped: tuple[SkipReason, ...] = ()  # open invoices deliberately not chased, and why
    credit: tuple[CreditBreach, ...] = ()
    suggestions: tuple[LimitSuggestion, ...] = ()  # only those that change the limit
    warnings: tuple[str, ...] = ()


def plan_order(action: PlannedAction) -> tuple[str, str, int, str, str]:
    """The order of a plan's actions: by customer and currency, then kind, step and key."""
    return (action.customer_id, action.currency, _KIND_ORDER[action.kind], action.step or "", action.key)


def merge_plans(parts: Sequence[Plan]) -> Plan:
    """One plan from the plans of disjoint sets of customers, ordered as `plan_day` orders one."""
    if len(parts) == 1:
        return parts[0]
    return Plan(
        actions=tuple(sorted((a for part in parts for a in part.actions), key=plan_order)),
        superseded=tuple(sorted((a for part in parts for a in part.superseded), key=plan_order)),
        skipped=tuple(s for part in parts for s in part.skipped),
        credit=tuple(sorted((b for part in parts for b in part.credit), key=lambda b: b.customer_id)),
        suggestions=tuple(
            sorted((s for part in parts for s in part.suggestions), key=lambda s: s.customer_id)
        ),
        warnings=tuple(dict.fromkeys(w for part in parts for w in part.warnings)),
    )
