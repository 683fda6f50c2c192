"""Apply planned actions through the outbox, and settle what a crash left in flight.

Every effect follows the same three beats: claim (planned|failed -> in_flight, recorded before the
effect), effect (carrying the action key as idempotency key), record (done | failed | uncertain).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from connectors.base import (
    ConnectorError,
    CreditNoteRequest,
    DayLimitReached,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    Verification,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from policies.model.actions import OPEN_STATUSES, ActionKind, ActionStatus, Charge, PlannedAction
from policies.model.errors import RelanceError
from policies.model.ledger import Invoice
from sync.crashpoints import crashpoint

if TYPE_CHECKING:
    from connectors.base import Connector
    from policies.config import Policy
    from sync.config import ConnectionConfig
    from sync.engine import ConnectionRun, RunOptions
    from sync.store import ActionRecord, LedgerView
    from sync.workspace import Workspace

log = logging.getLogger("relance.apply")

LEDGER_KINDS = {ActionKind.FEE, ActionKind.NOTE, ActionKind.CREDIT_NOTE}
NOTICE_KINDS = {ActionKind.REMINDER.value, ActionKind.TASK.value, ActionKind.AGENCY.value}
NOTICE_KEY = "notice_key"  # details key of a NOTE: the key of the notice it records
PREVIOUS_DELIVERY = "previous_delivery"  # details key: invoice id -> delivery time before the send
EMAIL_CHANNELS = {"email"}
TASK_CHANNELS = {"call_task", "letter"}


@dataclass
class Outcome:
    status: WriteStatus
    ledger_ids: list[str] = field(default_factory=list)
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def combine(results: Sequence[WriteResult]) -> Outcome:
    """One action may be several ledger requests (a notice over N invoices)."""
    ids = [r.ledger_id for r in results if r.ledger_id]
    errors = [f"{r.key}: {r.error}" for r in results if r.error]
    if any(r.status is WriteStatus.UNCERTAIN for r in results):
        return Outcome(WriteStatus.UNCERTAIN, ids, "; ".join(errors) or "outcome unknown")
    if any(r.status is WriteStatus.FAILED for r in results):
        return Outcome(WriteStatus.FAILED, ids, "; ".join(errors))
    return Outcome(WriteStatus.DONE, ids, detail={"results": [r.ledger_id for r in results]})


class Applier:
    def __init__(
        self,
        ws: Workspace,
        connection: ConnectionConfig,
        connector: Connector,
        policy: Policy,
        today: date,
        run: ConnectionRun,
        options: RunOptions,
    ) -> None:
        self.ws = ws
        self.connection = connection
        self.connector = connector
        self.policy = policy
        self.today = today
        self.run = run
        self.options = options
        self.store = ws.store
        self.preview: list[PlannedAction] = []

    # ------------------------------------------------------------ data the effects need

    @cached_property
    def snapshot(self) -> LedgerView:
        """The ledger in the snapshot's shape, read by id on demand (an LRU per entity), never loaded
        whole: applying a few hundred actions must not cost the memory of a million invoices."""
        return self.store.ledger.view(self.connection.name)

    def refresh_snapshot(self) -> None:
        self.__dict__.pop("snapshot", None)

    @cached_property
    def channels(self) -> Any:
        from sync.notices import NoticeSender

        return NoticeSender(self.ws, self.policy, self.connection, self.today)

    # ------------------------------------------------------------ ledger requests

    def ledger_requests(self, action: PlannedAction) -> list[WriteRequest]:
        invoices = self.snapshot.invoices
        if action.kind is ActionKind.FEE:
            return [self._fee_request(action, invoices[action.invoice_ids[0]])]
        if action.kind is ActionKind.NOTE:
            text = str(action.details.get("note") or action.reason)
            return [Note(action.key, action.invoice_ids[0], text)]
        if action.kind is ActionKind.CREDIT_NOTE:
            invoice = invoices[action.invoice_ids[0]]
            return [
                CreditNoteRequest(
                    key=action.key,
                    customer_id=action.customer_id,
                    invoice_id=invoice.id,
                    currency=action.currency,
                    amount=action.total.rounded().amount,
                    description=str(action.details.get("description") or action.reason),
                    issue_date=self.today,
                )
            ]
        if action.kind is ActionKind.REMINDER and action.channel == "ledger_email":
            customer = self.snapshot.customers.get(action.customer_id)
            to = customer.emails[0] if customer and customer.emails else None
            return [
                LedgerEmail(
                    f"{action.key}:{invoice_id}", invoice_id, to, self._previous_delivery(action, invoice_id)
                )
                for invoice_id in action.invoice_ids
            ]
        return []

    def _previous_delivery(self, action: PlannedAction, invoice_id: str) -> datetime | None:
        """The invoice's delivery time before this send, as recorded with the action (ledger clock)."""
        recorded = action.details.get(PREVIOUS_DELIVERY)
        if isinstance(recorded, dict) and invoice_id in recorded:
            value = recorded[invoice_id]
            return datetime.fromisoformat(value) if value else None
        invoice = self.snapshot.invoices.get(invoice_id)
        return invoice.last_emailed_at if invoice else None

    def _with_delivery_baseline(self, action: PlannedAction) -> PlannedAction:
        """Record, before the send, what the ledger said about earlier deliveries: after a crash
        the send is verified against this (ledger clock vs ledger clock), even if a later pull
        already brought the new delivery time into the store."""
        if action.kind is not ActionKind.REMINDER or action.channel != "ledger_email":
            return action
        if PREVIOUS_DELIVERY in action.details:
            return action
        baseline = {}
        for invoice_id in action.invoice_ids:
            invoice = self.snapshot.invoices.get(invoice_id)
            moment = invoice.last_emailed_at if invoice else None
            baseline[invoice_id] = moment.isoformat() if moment else None
        return replace(action, details={**action.details, PREVIOUS_DELIVERY: baseline})

    def _fee_request(self, action: PlannedAction, invoice: Invoice) -> WriteRequest:
        parts = [self._charge_label(charge) for charge in action.charges if not charge.amount.is_zero()]
        description = f"[relance] {invoice.number}: " + "; ".join(parts)
        amount = action.total.rounded().amount
        use_line = self.connector.capabilities.fee_line_on_invoice and self.connection.fee_mode != "invoice"
        if use_line:
            return FeeLine(action.key, invoice.id, description, amount, action.currency)
        lines = tuple(
            (f"{self._charge_label(charge)} — {invoice.number}", charge.amount.rounded().amount)
            for charge in action.charges
            if not charge.amount.is_zero()
        )
        return FeeInvoice(
            key=action.key,
            customer_id=action.customer_id,
            currency=action.currency,
            lines=lines,
            reference=invoice.number,
            due_date=self.today,
            issue_date=self.today,
        )

    @staticmethod
    def _charge_label(charge: Charge) -> str:
        label = charge.description or charge.component
        return f"{label} {charge.amount.display()}"

    # ------------------------------------------------------------ the main path

    def cancel_stale(self, fresh: Sequence[PlannedAction]) -> list[PlannedAction]:
        """Planned actions missing from today's fresh plan: cancelled (paid meanwhile, disputed,
        a later step now due, ...) — except the fees and notes of a notice already sent, which
        the planner no longer proposes once the step is done (a crash between the notice and
        them): those still go, while the invoice is chased. Returns the ones kept."""
        keep = {action.key for action in fresh}
        chased = self._chased_invoices(fresh)
        kept: list[PlannedAction] = []
        for record in self.store.outbox.actions(self.connection.name, status=OPEN_STATUSES):
            if record.key in keep:
                continue
            if self._follows_sent_notice(record) and all(i in chased for i in record.invoice_ids):
                kept.append(record.to_planned())
                continue
            verb = "sending" if record.status == ActionStatus.PLANNED else "retrying"
            self.store.outbox.mark_superseded(record.key, f"no longer due when re-checked before {verb}")
            self.run.cancelled += 1
        return kept

    def _chased_invoices(self, fresh: Sequence[PlannedAction]) -> set[str]:
        """Invoices still open and neither disputed nor paused nor excluded today."""
        disputes = self.store.cases.disputes(self.connection.name, self.today)
        pauses = self.store.cases.pauses(self.connection.name, self.today)
        chased = set()
        for invoice in self.snapshot.invoices.values():
            if not invoice.is_open or invoice.id in disputes or invoice.customer_id in pauses:
                continue
            customer = self.snapshot.customers.get(invoice.customer_id)
            if customer is not None:
                settings = self.policy.settings_for(customer)
                if settings.excluded or (settings.paused_until and settings.paused_until >= self.today):
                    continue
            chased.add(invoice.id)
        return chased

    def _follows_sent_notice(self, record: ActionRecord) -> bool:
        if record.kind == ActionKind.NOTE.value:
            parent = record.details.get(NOTICE_KEY)
            done = self.store.outbox.action(str(parent)) if parent else None
            return done is not None and done.status == ActionStatus.DONE
        if record.kind == ActionKind.FEE.value and record.step:
            for invoice_id in record.invoice_ids:
                for other in self.store.outbox.actions(
                    self.connection.name, invoice_id=invoice_id, status=ActionStatus.DONE
                ):
                    if other.step == record.step and other.kind in NOTICE_KINDS:
                        return True
        return False

    def apply(self, actions: Sequence[PlannedAction]) -> None:
        # Every action of the plan was recorded before this point: only planned (or failed, with
        # attempts left) ones are due; done, in-flight, uncertain and superseded ones are not.
        open_records = {
            r.key: r for r in self.store.outbox.actions(self.connection.name, status=OPEN_STATUSES)
        }
        pending = []
        for action in actions:
            record = open_records.get(action.key)
            if record is not None and (
                record.status == ActionStatus.PLANNED or record.attempts < self.options.max_attempts
            ):
                pending.append(action)
        self.refresh_snapshot()
        pending = [self._with_delivery_baseline(action) for action in pending]
        self.store.outbox.update_planned(pending)
        ledger_batch: list[PlannedAction] = []
        total = len(pending)
        for index, action in enumerate(pending):
            if self.options.should_stop():
                break
            if self.options.progress:
                self.options.progress(self.connection.name, index, total)
            if self._outside_send_window(action):
                self.run.deferred += 1  # stays planned: the next run inside the window sends it
                continue
            if action.kind is ActionKind.NOTE:
                # A note records its notice: if that notice is still waiting in the batch, send it first.
                if any(waiting.key == action.details.get(NOTICE_KEY) for waiting in ledger_batch):
                    self._apply_ledger(ledger_batch)
                    ledger_batch = []
                if not self._parent_done(action):
                    continue
            if self._is_ledger(action):
                ledger_batch.append(action)
                if len(ledger_batch) >= self.connector.capabilities.write_batch_size:
                    self._apply_ledger(ledger_batch)
                    ledger_batch = []
                continue
            self._apply_local(action)
        if ledger_batch and not self.options.should_stop():
            self._apply_ledger(ledger_batch)

    @cached_property
    def _in_send_window(self) -> bool:
        window = self.policy.company.send_window
        now = datetime.now(ZoneInfo(self.policy.company.timezone)).time()
        return window.start <= now <= window.end

    def _outside_send_window(self, action: PlannedAction) -> bool:
        if not self.options.respect_send_window or self._in_send_window:
            return False
        emails = action.kind is ActionKind.THANKS or action.channel in ("email", "ledger_email")
        return emails and action.kind in (ActionKind.REMINDER, ActionKind.THANKS)

    def _parent_done(self, note: PlannedAction) -> bool:
        parent = note.details.get(NOTICE_KEY)
        if not parent:
            return True  # a note of its own (not following a notice)
        record = self.store.outbox.action(str(parent))
        return record is not None and record.status == ActionStatus.DONE

    def _apply_ledger(self, actions: Sequence[PlannedAction]) -> None:
        claimed: list[tuple[PlannedAction, list[WriteRequest]]] = []
        for action in actions:
            if self.options.should_stop():
                break
            if self.store.outbox.claim(action.key):
                claimed.append((action, self.ledger_requests(action)))
                crashpoint("after_claim")
        if not claimed:
            return
        requests = [request for _, reqs in claimed for request in reqs]
        try:
            results = {r.key: r for r in self.connector.write(requests)}
            crashpoint("after_effect")
        except DayLimitReached:
            for action, _ in claimed:
                self.store.outbox.release(action.key, "day limit reached before the call")
            raise
        except ConnectorError as error:
            # Raised (not per-request) means the whole call's fate is unknown for unsafe requests.
            for action, reqs in claimed:
                unsafe = any(self._non_idempotent(r) for r in reqs)
                self._record(
                    action, Outcome(WriteStatus.UNCERTAIN if unsafe else WriteStatus.FAILED, error=str(error))
                )
            return
        for action, reqs in claimed:
            missing = [r for r in reqs if r.key not in results]
            outcome = combine([results[r.key] for r in reqs if r.key in results])
            if missing:
                outcome = Outcome(WriteStatus.UNCERTAIN, error="the ledger returned no result")
            self._record(action, outcome)
            crashpoint("mid_batch")

    def _apply_local(self, action: PlannedAction) -> None:
        if not self.store.outbox.claim(action.key):
            return
        crashpoint("after_claim")
        try:
            outcome = self.channels.execute(action, self.snapshot)
        except RelanceError as error:
            # A message handed to the SMTP server before the connection dropped may have gone out.
            maybe_sent = bool(getattr(error, "maybe_sent", False))
            outcome = Outcome(WriteStatus.UNCERTAIN if maybe_sent else WriteStatus.FAILED, error=str(error))
        crashpoint("after_effect")
        self._record(action, outcome)

    def _non_idempotent(self, request: WriteRequest) -> bool:
        return isinstance(request, LedgerEmail) and not self.connector.capabilities.ledger_email_idempotent

    def _record(self, action: PlannedAction, outcome: Outcome) -> None:
        if outcome.status is WriteStatus.DONE:
            self.store.outbox.mark_done(
                action.key, outcome.ledger_ids, {**outcome.detail, "applied_on": self.today.isoformat()}
            )
            self.run.applied += 1
            self.run.actions[action.kind.value] += 1
            if action.kind is ActionKind.REMINDER and action.step:
                self.run.steps[action.step] += 1
            if action.kind is ActionKind.FEE:
                amount = action.total.rounded().amount
                self.run.fees_total[action.currency] = (
                    self.run.fees_total.get(action.currency, Decimal(0)) + amount
                )
        elif outcome.status is WriteStatus.UNCERTAIN:
            self.store.outbox.mark_uncertain(action.key, outcome.error or "outcome unknown")
            self.run.uncertain += 1
            self.run.errors.append(f"{action.kind} {action.key[:12]} uncertain: {outcome.error}")
        else:
            self.store.outbox.mark_failed(action.key, outcome.error or "failed")
            self.run.failed += 1
            self.run.errors.append(f"{action.kind} {action.key[:12]} failed: {outcome.error}")

    # ------------------------------------------------------------ after a crash

    def settle_in_flight(self) -> None:
        """Settle what a killed run left in flight, before planning anything new."""
        for record in self.store.outbox.in_flight(self.connection.name):
            action = record.to_planned()
            started = record.started_at or datetime.now(UTC)
            outcome = self._settle(action, started)
            if outcome is None:  # verified not done: back to planned, applied normally below
                self.store.outbox.release(action.key, "verified not done after an interrupted run")
                continue
            self._record(action, outcome)
            self.run.settled += 1

    def _settle(self, action: PlannedAction, started: datetime) -> Outcome | None:
        requests = self.ledger_requests(action) if self._is_ledger(action) else []
        if not requests:
            return self.channels.settle(action, self.snapshot)
        safe: list[WriteRequest] = []
        verified_done: list[WriteResult] = []
        for request in requests:
            # Verify before any retry, idempotent or not: an interrupted batch may be re-sent
            # under another batch key, and some ledgers forget idempotency keys after a while.
            verdict = self.connector.verify(request, since=started)
            if verdict is Verification.HAPPENED:
                verified_done.append(WriteResult(request.key, WriteStatus.DONE))
            elif verdict is Verification.NOT_HAPPENED or not self._non_idempotent(request):
                safe.append(request)  # provably not done, or repeatable under the same key
            else:
                return Outcome(
                    WriteStatus.UNCERTAIN,
                    error="interrupted invoice send could not be verified in the ledger; "
                    "check the invoice and run `relance resolve KEY --sent|--not-sent`",
                )
        results = self.connector.write(safe) if safe else []
        return combine([*verified_done, *results])

    @staticmethod
    def _is_ledger(action: PlannedAction) -> bool:
        return action.kind in LEDGER_KINDS or (
            action.kind is ActionKind.REMINDER and action.channel == "ledger_email"
        )
