"""Apply planned actions through the outbox, and settle what a crash left in flight.

Every effect follows the same three beats: claim (planned|failed -> in_flight, recorded before the
effect), effect (carrying the action key as idempotency key), record (done | failed | uncertain).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from connectors.base import (
    Clock,
    Connector,
    ConnectorError,
    DayLimitReached,
    Verification,
    WriteRequest,
    WriteResult,
    WriteStatus,
    read_clock,
)
from policies.config import Policy
from policies.model.actions import OPEN_STATUSES, ActionKind, ActionStatus, PlannedAction
from policies.model.details import NoteDetails
from policies.model.errors import RelanceError
from policies.planning.history import NOTICE_KINDS
from sync.channels.sender import ChannelDispatch
from sync.crashpoints import crashpoint
from sync.ledger_requests import (
    fee_as_line,
    is_ledger_action,
    is_non_idempotent,
    ledger_requests,
    with_delivery_baseline,
)
from sync.outcome import Outcome, combine
from sync.run_report import ConnectionRun, RunOptions
from sync.store import ActionRecord, LedgerView, Store


@dataclass(frozen=True, slots=True)
class Target:
    """The connection actions are applied to."""

    name: str
    fee_mode: str = "line"  # line | invoice (relance.yaml `fee_mode`)


class Applier:
    """Applies one connection's due actions for one day, reporting into `report`."""

    def __init__(
        self,
        *,
        store: Store,
        connector: Connector,
        target: Target,
        policy: Policy,
        today: date,
        channels: ChannelDispatch,
        report: ConnectionRun,
        options: RunOptions,
        clock: Clock | None = None,
    ) -> None:
        self.store = store
        self.connector = connector
        self.target = target
        self.policy = policy
        self.today = today
        self.channels = channels
        self.report = report
        self.options = options
        self.clock = clock
        self.fee_line = fee_as_line(connector.capabilities, target.fee_mode)

    # ------------------------------------------------------------ data the effects need

    @cached_property
    def ledger(self) -> LedgerView:
        """The ledger read by id on demand (an LRU per entity), never loaded whole: applying a few
        hundred actions must not cost the memory of a million invoices."""
        return self.store.ledger.view(self.target.name)

    def refresh_ledger(self) -> None:
        self.__dict__.pop("ledger", None)

    def ledger_requests(self, action: PlannedAction) -> list[WriteRequest]:
        return ledger_requests(action, self.ledger, fee_line=self.fee_line, today=self.today)

    # ------------------------------------------------------------ the main path

    def cancel_stale(self, fresh: Sequence[PlannedAction]) -> list[PlannedAction]:
        """Planned actions missing from today's fresh plan: cancelled (paid meanwhile, disputed,
        a later step now due, ...) — except the fees and notes of a notice already sent, which
        the planner no longer proposes once the step is done (a crash between the notice and
        them): those still go, while the invoice is chased. Returns the ones kept."""
        keep = {action.key for action in fresh}
        chased = self._chased_invoices()
        kept: list[PlannedAction] = []
        for record in self.store.outbox.actions(self.target.name, status=OPEN_STATUSES):
            if record.key in keep:
                continue
            if self._follows_sent_notice(record) and all(i in chased for i in record.invoice_ids):
                kept.append(record.to_planned())
                continue
            verb = "sending" if record.status == ActionStatus.PLANNED else "retrying"
            self.store.outbox.mark_superseded(record.key, f"no longer due when re-checked before {verb}")
            self.report.cancelled += 1
        return kept

    def _chased_invoices(self) -> set[str]:
        """Invoices still open and neither disputed nor paused nor excluded today."""
        disputes = self.store.cases.disputes(self.target.name, self.today)
        pauses = self.store.cases.pauses(self.target.name, self.today)
        chased = set()
        for invoice in self.ledger.invoices.values():
            if not invoice.is_open or invoice.id in disputes or invoice.customer_id in pauses:
                continue
            customer = self.ledger.customers.get(invoice.customer_id)
            if customer is not None:
                settings = self.policy.settings_for(customer)
                if settings.excluded or (settings.paused_until and settings.paused_until >= self.today):
                    continue
            chased.add(invoice.id)
        return chased

    def _follows_sent_notice(self, record: ActionRecord) -> bool:
        if record.kind == ActionKind.NOTE.value:
            return isinstance(record.details, NoteDetails) and self._notice_done(record.details)
        if record.kind == ActionKind.FEE.value and record.step:
            for invoice_id in record.invoice_ids:
                for other in self.store.outbox.actions(
                    self.target.name, invoice_id=invoice_id, status=ActionStatus.DONE
                ):
                    if other.step == record.step and ActionKind(other.kind) in NOTICE_KINDS:
                        return True
        return False

    def _notice_done(self, details: object) -> bool:
        """A note's notice is done (a note of its own, following no notice, counts as done)."""
        if not isinstance(details, NoteDetails):
            return True
        record = self.store.outbox.action(details.notice_key)
        return record is not None and record.status == ActionStatus.DONE

    def apply(self, actions: Sequence[PlannedAction]) -> None:
        # Every action of the plan was recorded before this point: only planned (or failed, with
        # attempts left) ones are due; done, in-flight, uncertain and superseded ones are not.
        open_records = {r.key: r for r in self.store.outbox.actions(self.target.name, status=OPEN_STATUSES)}
        pending = []
        for action in actions:
            record = open_records.get(action.key)
            if record is not None and (
                record.status == ActionStatus.PLANNED or record.attempts < self.options.max_attempts
            ):
                pending.append(action)
        self.refresh_ledger()
        pending = [with_delivery_baseline(action, self.ledger) for action in pending]
        self.store.outbox.update_planned(pending)
        ledger_batch: list[PlannedAction] = []
        total = len(pending)
        for index, action in enumerate(pending):
            if self.options.should_stop():
                break
            if self.options.progress:
                self.options.progress(self.target.name, index, total)
            if self._outside_send_window(action):
                self.report.deferred += 1  # stays planned: the next run inside the window sends it
                continue
            if isinstance(action.details, NoteDetails):
                # A note records its notice: if that notice is still waiting in the batch, send it first.
                if any(waiting.key == action.details.notice_key for waiting in ledger_batch):
                    self._apply_ledger(ledger_batch)
                    ledger_batch = []
                if not self._notice_done(action.details):
                    continue
            if is_ledger_action(action):
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
        now = read_clock(self.clock).astimezone(ZoneInfo(self.policy.company.timezone)).time()
        return window.start <= now <= window.end

    def _outside_send_window(self, action: PlannedAction) -> bool:
        """Unattended runs send e-mails (relance's and the ledger's) only inside the send window."""
        if not self.options.respect_send_window or self._in_send_window:
            return False
        if action.kind is ActionKind.THANKS:
            return True
        if action.kind is not ActionKind.REMINDER or action.channel is None:
            return False
        spec = self.policy.rulebook.channels.get(action.channel)
        return spec is not None and spec.email

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
                unsafe = any(is_non_idempotent(r, self.connector.capabilities) for r in reqs)
                self._record(action, Outcome.uncertain(str(error)) if unsafe else Outcome.failed(str(error)))
            return
        for action, reqs in claimed:
            missing = [r for r in reqs if r.key not in results]
            outcome = combine([results[r.key] for r in reqs if r.key in results])
            if missing:
                outcome = Outcome.uncertain("the ledger returned no result")
            self._record(action, outcome)
            crashpoint("mid_batch")

    def _apply_local(self, action: PlannedAction) -> None:
        if not self.store.outbox.claim(action.key):
            return
        crashpoint("after_claim")
        try:
            outcome = self.channels.deliver(action, self.ledger)
        except RelanceError as error:
            # A message handed to the SMTP server before the connection dropped may have gone out.
            maybe_sent = bool(getattr(error, "maybe_sent", False))
            outcome = Outcome.uncertain(str(error)) if maybe_sent else Outcome.failed(str(error))
        crashpoint("after_effect")
        self._record(action, outcome)

    def _record(self, action: PlannedAction, outcome: Outcome) -> None:
        if outcome.status is WriteStatus.DONE:
            self.store.outbox.mark_done(
                action.key, list(outcome.ledger_ids), {**outcome.detail, "applied_on": self.today.isoformat()}
            )
            self.report.done(action)
        elif outcome.status is WriteStatus.UNCERTAIN:
            self.store.outbox.mark_uncertain(action.key, outcome.error or "outcome unknown")
            self.report.unsure(action, outcome.error)
        else:
            self.store.outbox.mark_failed(action.key, outcome.error or "failed")
            self.report.refused(action, outcome.error)

    # ------------------------------------------------------------ after a crash

    def settle_in_flight(self) -> None:
        """Settle what a killed run left in flight, before planning anything new."""
        for record in self.store.outbox.in_flight(self.target.name):
            action = record.to_planned()
            started = record.started_at or read_clock(self.clock)
            outcome = self._settle(action, started)
            if outcome is None:  # verified not done: back to planned, applied normally below
                self.store.outbox.release(action.key, "verified not done after an interrupted run")
                continue
            self._record(action, outcome)
            self.report.settled += 1

    def _settle(self, action: PlannedAction, started: datetime) -> Outcome | None:
        requests = self.ledger_requests(action) if is_ledger_action(action) else []
        if not requests:
            return self.channels.settle(action, self.ledger)
        safe: list[WriteRequest] = []
        verified_done: list[WriteResult] = []
        for request in requests:
            # Verify before any retry, idempotent or not: an interrupted batch may be re-sent
            # under another batch key, and some ledgers forget idempotency keys after a while.
            verdict = self.connector.verify(request, since=started)
            if verdict is Verification.HAPPENED:
                verified_done.append(WriteResult(request.key, WriteStatus.DONE))
            elif verdict is Verification.NOT_HAPPENED or not is_non_idempotent(
                request, self.connector.capabilities
            ):
                safe.append(request)  # provably not done, or repeatable under the same key
            else:
                return Outcome.uncertain(
                    "interrupted invoice send could not be verified in the ledger; "
                    "check the invoice and run `relance resolve KEY --sent|--not-sent`"
                )
        results = self.connector.write(safe) if safe else []
        return combine([*verified_done, *results])
