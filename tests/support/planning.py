"""A compact policy and plan histories, shared by the planner's tests."""

from __future__ import annotations

from datetime import date

from policies.model.actions import DoneAction
from policies.planning import Plan

# A compact policy: no holidays, every day a business day, so dates are plain arithmetic.
POLICY_YAML = """
version: 1
company: {name: Test SAS, country: FR, currency: EUR, business_days: [mon, tue, wed, thu, fri, sat, sun],
          holidays: none}
customers:
  groups:
    - {name: consumers, match: {tags: [particulier]}, kind: b2c}
  overrides:
    "paused": {paused_until: 2024-06-30}
    "out": {exclude: true}
credit: {default_limit: "100000"}
interest: {statutory: fr}
compensation: {enabled: true}
fees:
  notice: {fixed: "8.50"}
  admin: {fixed: "5.00"}
discount: {percent: "2", within_days: 10}
ladder:
  steps:
    - {name: before-due, offset_days: -15, channel: email, template: pre_due, business_days: none}
    - {name: call, offset_days: 0, channel: call_task, template: due_today, business_days: none}
    - {name: letter, offset_days: 15, channel: letter, template: late_1, charge: [interest, compensation],
       business_days: none}
    - {name: email, offset_days: 15, channel: email, template: late_1, business_days: none}
    - {name: finance, offset_days: 30, channel: email, template: fm, charge: [interest], business_days: none}
    - {name: final, offset_days: 75, channel: letter, template: final, charge: [interest, "fee:notice"],
       business_days: none}
    - {name: agency, offset_days: 90, channel: agency, template: agency, min_amount: "150",
       charge: [interest],
       business_days: none}
exclusions: {min_balance: "10.00", tags: [no-dunning]}
"""


def as_history(*plans: Plan, on: date | None = None) -> dict[str, list[DoneAction]]:
    history: dict[str, list[DoneAction]] = {}
    for result in plans:
        for action in (*result.actions, *result.superseded):
            done = DoneAction(
                action.key,
                action.kind,
                action.invoice_ids,
                action.step,
                action.instalment,
                action.charges,
                on or action.due_on,
            )
            for invoice_id in action.invoice_ids:
                history.setdefault(invoice_id, []).append(done)
    return history


def merge(*histories: dict[str, list[DoneAction]]) -> dict[str, list[DoneAction]]:
    merged: dict[str, list[DoneAction]] = {}
    for history in histories:
        for key, items in history.items():
            merged.setdefault(key, []).extend(items)
    return merged
