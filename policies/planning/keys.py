"""The deterministic keys of planned actions: the same facts on the same day give the same key, so
re-planning never duplicates an effect. Every key hashes the same eight facts in the same order:
connection, kind, step, customer, currency, invoice ids, instalment, period."""

from __future__ import annotations

from collections.abc import Iterable

from policies.model.actions import ActionKind, action_key


def step_key(
    connection: str,
    kind: ActionKind,
    step: str,
    customer_id: str,
    currency: str,
    invoice_ids: Iterable[str],
    *,
    instalment: str = "",
    period: object = "",
) -> str:
    """A notice, superseded step, fee or credit note of `step` on these invoices (sorted ids)."""
    return action_key(
        connection, kind.value, step, customer_id, currency, ",".join(invoice_ids), instalment, period
    )


def note_key(notice_key: str, invoice_id: str) -> str:
    """The note recording a notice on one of its invoices."""
    return action_key(notice_key, ActionKind.NOTE.value, invoice_id)


def thanks_key(connection: str, customer_id: str, currency: str, invoice_ids: Iterable[str]) -> str:
    return step_key(connection, ActionKind.THANKS, "", customer_id, currency, invoice_ids)


def credit_limit_key(connection: str, kind: ActionKind, customer_id: str, currency: str, episode: str) -> str:
    """A credit-limit breach, once per customer per limit per episode."""
    return step_key(connection, kind, "credit-limit", customer_id, currency, (), period=episode)
