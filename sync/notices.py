"""Local effects of actions: relance-rendered emails, call tasks, letters, agency hand-overs.

Each effect is keyed by the action key so that repeating it after a crash is harmless (files are
named by key, task rows are unique by key) — except SMTP, which cannot be verified: an email
interrupted mid-send is marked uncertain for the operator, never sent twice blindly.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.base import WriteStatus
from policies.model.actions import ActionKind, ActionStatus, PlannedAction
from policies.model.errors import RelanceError
from policies.model.ledger import Customer, LedgerSnapshot

if TYPE_CHECKING:
    from policies.config import Policy
    from sync.apply import Outcome
    from sync.config import ConnectionConfig
    from sync.workspace import Workspace


@lru_cache(maxsize=8)
def shared_renderer(template_dirs: tuple[str, ...]) -> Any:
    """One renderer per template search path per process: compiled templates are reused."""
    from sync.channels.render import Renderer

    return Renderer([Path(d) for d in template_dirs])


class NoticeSender:
    def __init__(self, ws: Workspace, policy: Policy, connection: ConnectionConfig, today: date) -> None:
        self.ws = ws
        self.policy = policy
        self.connection = connection
        self.today = today

    @cached_property
    def email_settings(self) -> dict[str, Any]:
        return self.ws.email_settings()

    @cached_property
    def transport(self) -> Any:
        from sync.channels.transports import transport_from_config

        return transport_from_config(self.email_settings)

    @cached_property
    def renderer(self) -> Any:
        dirs = tuple(str(self.ws.resolve(d)) for d in self.ws.config.templates_dirs)
        return shared_renderer(dirs)

    @cached_property
    def company(self) -> Any:
        from sync.channels.context import CompanyInfo

        company = self.policy.company
        return CompanyInfo(
            name=company.name,
            email=self.email_settings.get("from") or "",
            phone=getattr(company, "phone", None) or "",
            address_lines=tuple(getattr(company, "address", None) or ()),
            legal_mentions=tuple(getattr(company, "legal_mentions", None) or ()),
            bank_details=getattr(company, "bank_details", None) or "",
            country=company.country,
            language=company.language,
            law=self._law(),
        )

    def _law(self) -> str | None:
        law = self.policy.statutory_law()
        return law.code if law is not None else None

    def context(self, action: PlannedAction, snapshot: LedgerSnapshot) -> Any:
        from sync.channels.context import build_context

        customer = self.customer(action, snapshot)
        return build_context(
            action, customer, snapshot.invoices, self.company, self.today, fees=self.fees_for(action)
        )

    def fees_for(self, action: PlannedAction) -> list[PlannedAction]:
        """The fee actions of the same step on the notice's invoices: the notice shows what is charged."""
        if action.kind is not ActionKind.REMINDER or not action.step:
            return []
        fees = []
        for invoice_id in action.invoice_ids:
            for record in self.ws.store.outbox.actions(
                self.connection.name, kind="fee", invoice_id=invoice_id
            ):
                if record.step == action.step and record.status != ActionStatus.SUPERSEDED:
                    fees.append(record.to_planned())
        return fees

    @staticmethod
    def customer(action: PlannedAction, snapshot: LedgerSnapshot) -> Customer:
        customer = snapshot.customers.get(action.customer_id)
        if customer is None:
            raise RelanceError(f"customer {action.customer_id} is not in the state store (pull again)")
        return customer

    # ------------------------------------------------------------ effects

    def execute(self, action: PlannedAction, snapshot: LedgerSnapshot) -> Outcome:
        from sync.apply import Outcome

        if action.kind is ActionKind.CREDIT_ALERT:
            return Outcome(WriteStatus.DONE, detail={"recorded": True})
        if action.kind in (ActionKind.REMINDER, ActionKind.THANKS) and (
            action.channel in (None, "email") or action.kind is ActionKind.THANKS
        ):
            return self._email(action, snapshot)
        if action.kind is ActionKind.AGENCY or action.channel == "agency":
            return self._handover(action, snapshot)
        return self._task(action, snapshot)

    def settle(self, action: PlannedAction, snapshot: LedgerSnapshot) -> Outcome | None:
        """An action left in flight by a crash. None = provably not done: apply it normally."""
        from sync.apply import Outcome

        emails = action.kind in (ActionKind.REMINDER, ActionKind.THANKS) and action.channel in (None, "email")
        if emails or action.kind is ActionKind.THANKS:
            verdict = getattr(self.transport, "was_sent", None)
            if verdict is None:
                return Outcome(
                    WriteStatus.UNCERTAIN,
                    error="email interrupted mid-send (SMTP cannot be verified); check the mailbox and run "
                    f"`relance resolve {action.key} --sent|--not-sent`",
                )
            return (
                Outcome(WriteStatus.DONE, detail={"verified": "outbox file"}) if verdict(action.key) else None
            )
        return self.execute(action, snapshot)  # tasks and hand-over files are keyed: repeating is harmless

    def _email(self, action: PlannedAction, snapshot: LedgerSnapshot) -> Outcome:
        from sync.apply import Outcome
        from sync.channels.render import render_notice
        from sync.channels.transports import compose_email

        customer = self.customer(action, snapshot)
        if not customer.emails:
            # No address: a person must take it over; record a task rather than lose the step.
            outcome = self._task(action, snapshot, why="no email address on file")
            outcome.detail["fallback"] = "task"
            return outcome
        ctx = self.context(action, snapshot)
        rendered = render_notice(ctx, renderer=self.renderer)
        message = compose_email(
            rendered,
            sender=self.email_settings.get("from") or f"noreply@{self.connection.name}.invalid",
            to=customer.emails,
            reply_to=self.email_settings.get("reply_to"),
            message_id_key=action.key,
        )
        message_id = self.transport.send(message)
        return Outcome(WriteStatus.DONE, detail={"message_id": message_id, "to": list(customer.emails)})

    def _task(self, action: PlannedAction, snapshot: LedgerSnapshot, *, why: str | None = None) -> Outcome:
        from sync.apply import Outcome
        from sync.channels.handover import task_entry

        ctx = self.context(action, snapshot)
        customer = self.customer(action, snapshot)
        entry = task_entry(
            action, customer, snapshot.invoices, ctx, outbox=self.ws.outbox_dir, renderer=self.renderer
        )
        self.ws.store.tasks.add(self.connection.name, entry, note=why)
        return Outcome(WriteStatus.DONE, detail={"task": entry.kind})

    def _handover(self, action: PlannedAction, snapshot: LedgerSnapshot) -> Outcome:
        from sync.channels.handover import write_handover

        ctx = self.context(action, snapshot)
        history = [
            record.as_dict()
            for invoice_id in action.invoice_ids
            for record in self.ws.store.outbox.actions(self.connection.name, invoice_id=invoice_id)
        ]
        csv_path, json_path = write_handover(self.ws.outbox_dir / "agency", ctx, history)
        outcome = self._task(action, snapshot, why="hand the file over to the collection agency")
        outcome.detail.update({"csv": str(csv_path), "json": str(json_path)})
        return outcome
