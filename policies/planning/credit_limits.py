"""Credit-limit breaches as actions: CREDIT_ALERT (alert, hold) or a TASK to call (call_task),
raised once per customer per limit per ISO week while the breach lasts (policies.credit computes
exposure and breaches)."""

from __future__ import annotations

from datetime import date

from policies.credit import CreditBreach
from policies.model.actions import ActionKind, PlannedAction
from policies.model.details import CreditLimitDetails
from policies.planning.history import CREDIT_STEP
from policies.planning.keys import credit_limit_key


def breach_action(breach: CreditBreach, today: date, connection: str = "") -> PlannedAction:
    year, week, _ = today.isocalendar()
    episode = f"{breach.limit.fixed()}@{year}-W{week:02d}"
    kind = ActionKind.TASK if breach.action == "call_task" else ActionKind.CREDIT_ALERT
    return PlannedAction(
        key=credit_limit_key(connection, kind, breach.customer_id, breach.limit.currency, episode),
        kind=kind,
        customer_id=breach.customer_id,
        currency=breach.limit.currency,
        invoice_ids=breach.invoice_ids,
        reason=breach.reason,
        step=CREDIT_STEP,
        channel="call_task" if kind is ActionKind.TASK else None,
        template="credit_limit_call" if kind is ActionKind.TASK else "credit_limit_alert",
        details=CreditLimitDetails(
            limit=breach.limit.rounded().amount,
            exposure=breach.exposure.rounded().amount,
            over=(breach.exposure - breach.limit).rounded().amount,
            on_breach=breach.action,
            episode=episode,
        ),
    )
