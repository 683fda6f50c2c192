"""Delivering notices through their channels: the e-mails relance renders and sends, call tasks,
letters and agency hand-overs (the ledger's own invoice e-mail goes through the connector instead).

`ChannelDispatch.deliver` picks the channel plugin an action names (`relance.channels`) and hands
it the `Notice` (the action, its customer and the template context) and the run's `ChannelKit`
(renderer, mail transport, outbox folder, task list). Every local effect is keyed by the action key,
so repeating it after a crash is harmless (files named by key, one task per key) - except SMTP,
which cannot be verified: an e-mail interrupted mid-send is uncertain, for the operator to resolve,
never sent twice blindly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from policies.model.actions import ActionKind, ActionStatus, PlannedAction
from policies.model.errors import RelanceError
from policies.model.ledger import LedgerLookup
from sync.channels.context import CompanyInfo, build_context
from sync.channels.handover import task_entry, write_handover
from sync.channels.registry import ChannelKit, ChannelPlugin, ChannelSender, Notice
from sync.channels.render import Renderer, render_notice
from sync.channels.transports import Transport, compose_email, transport_from_config
from sync.outcome import Outcome
from sync.store import Store


@lru_cache(maxsize=8)
def shared_renderer(template_dirs: tuple[str, ...]) -> Renderer:
    """One renderer per template search path per process: compiled templates are reused."""
    return Renderer([Path(d) for d in template_dirs])


class RunKit:
    """The ChannelKit of one run of one connection."""

    def __init__(
        self,
        *,
        connection: str,
        store: Store,
        outbox_dir: Path,
        template_dirs: tuple[str, ...],
        email_settings: Callable[[], dict[str, Any]],
    ) -> None:
        self.connection = connection
        self.store = store
        self.outbox_dir = outbox_dir
        self.renderer = shared_renderer(template_dirs)
        self._email_settings = email_settings

    @cached_property
    def email(self) -> dict[str, Any]:
        """relance.yaml's email section, the SMTP password resolved (read when first needed)."""
        return self._email_settings()

    @cached_property
    def transport(self) -> Transport:
        return transport_from_config(self.email)

    def add_task(self, notice: Notice, *, why: str | None = None) -> Outcome:
        """Record the notice as a task for a person (writing its letter when it is one)."""
        entry = task_entry(
            notice.action,
            notice.customer,
            notice.invoices,
            notice.context,
            outbox=self.outbox_dir,
            renderer=self.renderer,
        )
        self.store.tasks.add(self.connection, entry, note=why)
        return Outcome.done(task=entry.kind)

    def history(self, invoice_ids: Sequence[str]) -> list[dict[str, Any]]:
        return [
            record.as_dict()
            for invoice_id in invoice_ids
            for record in self.store.outbox.actions(self.connection, invoice_id=invoice_id)
        ]


class EmailSender:
    """A notice relance renders and sends itself (SMTP, or .eml files to review)."""

    def send(self, notice: Notice, kit: ChannelKit) -> Outcome:
        customer = notice.customer
        if not customer.emails:
            # No address: a person must take it over; record a task rather than lose the step.
            return kit.add_task(notice, why="no email address on file").with_detail(fallback="task")
        rendered = render_notice(notice.context, renderer=kit.renderer)
        message = compose_email(
            rendered,
            sender=kit.email.get("from") or f"noreply@{kit.connection}.invalid",
            to=customer.emails,
            reply_to=kit.email.get("reply_to"),
            message_id_key=notice.action.key,
        )
        message_id = kit.transport.send(message)
        return Outcome.done(message_id=message_id, to=list(customer.emails))

    def settle(self, notice: Notice, kit: ChannelKit) -> Outcome | None:
        was_sent = getattr(kit.transport, "was_sent", None)
        if was_sent is None:
            return Outcome.uncertain(
                "email interrupted mid-send (SMTP cannot be verified); check the mailbox and run "
                f"`relance resolve {notice.action.key} --sent|--not-sent`"
            )
        return Outcome.done(verified="outbox file") if was_sent(notice.action.key) else None


class TaskSender:
    """A call to make or a letter to post: a task for a person (letters written to the outbox)."""

    def send(self, notice: Notice, kit: ChannelKit) -> Outcome:
        return kit.add_task(notice)

    def settle(self, notice: Notice, kit: ChannelKit) -> Outcome | None:
        return self.send(notice, kit)  # keyed task and letter file: repeating is harmless


class AgencySender:
    """A hand-over to the collection agency: the file (CSV + JSON with the history) and a task."""

    def send(self, notice: Notice, kit: ChannelKit) -> Outcome:
        history = kit.history(notice.action.invoice_ids)
        csv_path, json_path = write_handover(kit.outbox_dir / "agency", notice.context, history)
        outcome = kit.add_task(notice, why="hand the file over to the collection agency")
        return outcome.with_detail(csv=str(csv_path), json=str(json_path))

    def settle(self, notice: Notice, kit: ChannelKit) -> Outcome | None:
        return self.send(notice, kit)  # keyed files and task: repeating is harmless


EMAIL_CHANNEL = "email"
CALL_CHANNEL = "call_task"


class ChannelDispatch:
    """Deliver each local action through the channel it names, for one connection and day."""

    def __init__(
        self,
        kit: RunKit,
        plugins: Mapping[str, ChannelPlugin],
        company: Callable[[], CompanyInfo],
        today: date,
    ) -> None:
        self.kit = kit
        self.plugins = plugins
        self._company = company
        self.today = today
        self._senders: dict[str, ChannelSender] = {}

    @cached_property
    def company(self) -> CompanyInfo:
        """The creditor as notices show it (built when the first notice is: it reads the e-mail
        settings, whose errors then fail that notice, not the run)."""
        return self._company()

    def deliver(self, action: PlannedAction, ledger: LedgerLookup) -> Outcome:
        if action.kind is ActionKind.CREDIT_ALERT:
            return Outcome.done(recorded=True)
        return self.sender_for(action).send(self.notice(action, ledger), self.kit)

    def settle(self, action: PlannedAction, ledger: LedgerLookup) -> Outcome | None:
        """An action left in flight by a crash. None = provably not done: deliver it normally."""
        if action.kind is ActionKind.CREDIT_ALERT:
            return Outcome.done(recorded=True)
        return self.sender_for(action).settle(self.notice(action, ledger), self.kit)

    def channel_of(self, action: PlannedAction) -> str:
        if action.kind is ActionKind.THANKS:
            return EMAIL_CHANNEL
        return action.channel or EMAIL_CHANNEL

    def sender_for(self, action: PlannedAction) -> ChannelSender:
        name = self.channel_of(action)
        sender = self._senders.get(name)
        if sender is None:
            plugin = self.plugins.get(name)
            if plugin is None:
                raise RelanceError(
                    f"channel {name!r} is not installed (action {action.key[:12]})",
                    hint="install the package that provides it, or change the ladder step's channel",
                )
            if plugin.sender is None:
                raise RelanceError(f"channel {name!r} is delivered by the ledger, not by relance")
            sender = plugin.sender()
            self._senders[name] = sender
        return sender

    def notice(self, action: PlannedAction, ledger: LedgerLookup) -> Notice:
        customer = ledger.customers.get(action.customer_id)
        if customer is None:
            raise RelanceError(f"customer {action.customer_id} is not in the state store (pull again)")
        context = build_context(
            action, customer, ledger.invoices, self.company, self.today, fees=self.fees_for(action)
        )
        return Notice(action, customer, ledger.invoices, context)

    def fees_for(self, action: PlannedAction) -> list[PlannedAction]:
        """The fee actions of the same step on the notice's invoices: the notice shows what is charged."""
        if action.kind is not ActionKind.REMINDER or not action.step:
            return []
        fees = []
        for invoice_id in action.invoice_ids:
            for record in self.kit.store.outbox.actions(
                self.kit.connection, kind="fee", invoice_id=invoice_id
            ):
                if record.step == action.step and record.status != ActionStatus.SUPERSEDED:
                    fees.append(record.to_planned())
        return fees
