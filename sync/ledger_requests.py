"""Planned actions as the ledger writes that carry them out (fee lines or fee invoices, notes,
credit notes, the ledger's own invoice e-mail), each keyed by the action key."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from connectors.base import (
    Capabilities,
    CreditNoteRequest,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    WriteRequest,
)
from policies.model.actions import ActionKind, Charge, PlannedAction
from policies.model.details import NoticeDetails
from policies.model.ledger import Invoice, LedgerLookup

LEDGER_KINDS = frozenset({ActionKind.FEE, ActionKind.NOTE, ActionKind.CREDIT_NOTE})
LEDGER_EMAIL = "ledger_email"  # the channel the ledger itself delivers


def is_ledger_action(action: PlannedAction) -> bool:
    """Carried out by a ledger write (else by a channel of relance's own)."""
    return action.kind in LEDGER_KINDS or (
        action.kind is ActionKind.REMINDER and action.channel == LEDGER_EMAIL
    )


def is_non_idempotent(request: WriteRequest, capabilities: Capabilities) -> bool:
    """A write the ledger may perform twice if repeated (QBO invoice send): verify before any resend."""
    return isinstance(request, LedgerEmail) and not capabilities.ledger_email_idempotent


def fee_as_line(capabilities: Capabilities, fee_mode: str) -> bool:
    """Fees go on the invoice itself where the ledger allows it and the connection wants it
    (`fee_mode: line`); otherwise into a separate fee invoice."""
    return capabilities.fee_line_on_invoice and fee_mode != "invoice"


def ledger_requests(
    action: PlannedAction, ledger: LedgerLookup, *, fee_line: bool, today: date
) -> list[WriteRequest]:
    invoices = ledger.invoices
    if action.kind is ActionKind.FEE:
        return [fee_request(action, invoices[action.invoice_ids[0]], fee_line=fee_line, today=today)]
    if action.kind is ActionKind.NOTE:
        return [Note(action.key, action.invoice_ids[0], action.reason)]
    if action.kind is ActionKind.CREDIT_NOTE:
        invoice = invoices[action.invoice_ids[0]]
        return [
            CreditNoteRequest(
                key=action.key,
                customer_id=action.customer_id,
                invoice_id=invoice.id,
                currency=action.currency,
                amount=action.total.rounded().amount,
                description=action.reason,
                issue_date=today,
            )
        ]
    if action.kind is ActionKind.REMINDER and action.channel == LEDGER_EMAIL:
        customer = ledger.customers.get(action.customer_id)
        to = customer.emails[0] if customer and customer.emails else None
        return [
            LedgerEmail(
                f"{action.key}:{invoice_id}", invoice_id, to, _previous_delivery(action, ledger, invoice_id)
            )
            for invoice_id in action.invoice_ids
        ]
    return []


def _previous_delivery(action: PlannedAction, ledger: LedgerLookup, invoice_id: str) -> datetime | None:
    """The invoice's delivery time before this send, as recorded with the action (ledger clock)."""
    if isinstance(action.details, NoticeDetails):
        recorded, moment = action.details.previous_delivery_of(invoice_id)
        if recorded:
            return moment
    invoice = ledger.invoices.get(invoice_id)
    return invoice.last_emailed_at if invoice else None


def with_delivery_baseline(action: PlannedAction, ledger: LedgerLookup) -> PlannedAction:
    """Record, before a ledger e-mail, what the ledger said about earlier deliveries: after a crash
    the send is verified against this (ledger clock vs ledger clock), even if a later pull already
    brought the new delivery time into the store."""
    if action.kind is not ActionKind.REMINDER or action.channel != LEDGER_EMAIL:
        return action
    details = action.details if isinstance(action.details, NoticeDetails) else NoticeDetails()
    if details.previous_delivery is not None:
        return action
    baseline = []
    for invoice_id in action.invoice_ids:
        invoice = ledger.invoices.get(invoice_id)
        baseline.append((invoice_id, invoice.last_emailed_at if invoice else None))
    return replace(action, details=replace(details, previous_delivery=tuple(baseline)))


def fee_request(action: PlannedAction, invoice: Invoice, *, fee_line: bool, today: date) -> WriteRequest:
    """The charges of a FEE action: a line on the invoice, or a fee invoice referencing it."""
    parts = [charge_label(charge) for charge in action.charges if not charge.amount.is_zero()]
    if fee_line:
        description = f"[relance] {invoice.number}: " + "; ".join(parts)
        return FeeLine(action.key, invoice.id, description, action.total.rounded().amount, action.currency)
    lines = tuple(
        (f"{charge_label(charge)} — {invoice.number}", charge.amount.rounded().amount)
        for charge in action.charges
        if not charge.amount.is_zero()
    )
    return FeeInvoice(
        key=action.key,
        customer_id=action.customer_id,
        currency=action.currency,
        lines=lines,
        reference=invoice.number,
        due_date=today,
        issue_date=today,
    )


def charge_label(charge: Charge) -> str:
    label = charge.description or charge.component
    return f"{label} {charge.amount.display()}"
