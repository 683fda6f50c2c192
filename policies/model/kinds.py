"""The kinds of actions and the lifecycles of outbox rows, payment plans and tasks."""

from __future__ import annotations

from enum import StrEnum


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
