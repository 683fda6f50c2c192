"""`relance reconcile`: drift between the ledger and relance's state, with a proposed fix each.

Findings (never applied automatically: a person decides):
- fee_in_grace: a fee was posted but the invoice turned out paid inside the grace period
  (a payment dated earlier arrived late in the ledger) -> propose a reversing credit note;
- reminder_after_payment: a reminder went out after the invoice was paid -> propose an apology;
- uncertain: an action whose outcome is unknown -> check and `relance resolve KEY`;
- foreign_edit: the ledger changed what relance wrote (a relance fee line removed, a fee invoice
  voided, a relance-marked fee line relance has no record of).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from policies.model.actions import ActionStatus
from policies.model.ledger import Invoice, InvoiceStatus, LedgerSnapshot, Settlement, settlements_by_invoice
from sync.engine import holder_name
from sync.pull import history_from, pull_into_store
from sync.store import ActionRecord
from sync.workspace import Workspace

# Fee actions that may have put a line on an invoice (their outcome is known or pending).
_FEE_MAY_EXIST = (ActionStatus.DONE, ActionStatus.IN_FLIGHT, ActionStatus.UNCERTAIN)


@dataclass(frozen=True)
class Finding:
    kind: str
    connection: str
    message: str
    proposal: str | None = None
    action_key: str | None = None
    invoice_id: str | None = None
    amount: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def reconcile(
    ws: Workspace, *, connection: str | None = None, today: date | None = None, pull: bool = True
) -> list[Finding]:
    """Findings for every (or one) connection. Pulls first (incrementally) so the drift is current."""
    findings: list[Finding] = []
    for config in ws.connections(connection):
        if pull:
            _pull(ws, config, ws.today_for(config, override=today))
        findings.extend(
            reconcile_connection(ws, config.name, grace_days=_grace_days(ws, config), today=today)
        )
    return findings


def _pull(ws: Workspace, config: Any, today: date) -> None:
    connector = ws.open_connector(config)
    try:
        with ws.store.lease(config.name, holder_name()):
            since = history_from(config.history_months, today)
            pull_into_store(connector, ws.store, config.name, history_from=since)
    finally:
        connector.close()


def _grace_days(ws: Workspace, config: Any) -> int:
    terms = ws.policy_for(config).interest_terms()
    return int(terms.grace_days) if terms is not None else 0


def reconcile_connection(
    ws: Workspace, name: str, *, grace_days: int, today: date | None = None
) -> list[Finding]:
    store = ws.store
    snapshot = store.ledger.snapshot(name)
    settlements = settlements_by_invoice(snapshot.payments.values(), snapshot.credit_notes.values())
    findings: list[Finding] = []
    for record in store.outbox.actions(name, status=ActionStatus.DONE):
        invoice_id = record.invoice_ids[0] if record.invoice_ids else None
        invoice = snapshot.invoices.get(invoice_id) if invoice_id else None
        if invoice is None:
            continue
        paid = settlements.get(invoice.id, [])
        if record.kind == "fee":
            findings.extend(_fee_findings(name, record, invoice, paid, snapshot, grace_days))
        elif record.kind == "reminder" and record.finished_at is not None:
            paid_on = paid_on_date(invoice, paid)
            sent_on = _sent_on(record, today)
            if paid_on is not None and paid_on < sent_on:
                findings.append(
                    Finding(
                        "reminder_after_payment",
                        name,
                        f"step '{record.step}' went out on {sent_on} for invoice {invoice.number}, "
                        f"paid on {paid_on}",
                        proposal="send an apology / thanks; check the payment posting delay",
                        action_key=record.key,
                        invoice_id=invoice.id,
                    )
                )
    fee_records = store.outbox.actions(name, kind="fee", status=_FEE_MAY_EXIST)
    findings.extend(_unknown_fee_lines(name, snapshot, fee_records))
    for record in store.outbox.actions(name, status=ActionStatus.UNCERTAIN):
        findings.append(
            Finding(
                "uncertain",
                name,
                f"{record.kind} {record.key}"
                + (f" (step {record.step})" if record.step else "")
                + f" may or may not have happened: {record.error or 'outcome unknown'}",
                proposal="check the ledger or mailbox, then "
                f"`relance resolve {record.key} --sent|--not-sent`",
                action_key=record.key,
                invoice_id=record.invoice_ids[0] if record.invoice_ids else None,
            )
        )
    return findings


def _fee_findings(
    name: str,
    record: ActionRecord,
    invoice: Invoice,
    paid: list[Settlement],
    snapshot: LedgerSnapshot,
    grace_days: int,
) -> list[Finding]:
    findings = []
    # A fee line posted on the invoice itself is part of its total: paying the original amount
    # on time settles the invoice's principal, not the (wrongly charged) fee.
    on_invoice = invoice.id in record.ledger_ids
    paid_on = paid_on_date(invoice, paid, principal=principal_of(invoice))
    if paid_on is not None and paid_on <= invoice.due_date + timedelta(days=grace_days):
        amount = sum((c.amount.amount for c in record.charges), Decimal(0))
        findings.append(
            Finding(
                "fee_in_grace",
                name,
                f"invoice {invoice.number} was paid on {paid_on}, inside the grace period "
                f"(due {invoice.due_date}, {grace_days} days' grace), but relance charged "
                f"{invoice.currency} {amount:.2f}",
                proposal=f"issue a credit note of {invoice.currency} {amount:.2f} reversing the fee",
                action_key=record.key,
                invoice_id=invoice.id,
                amount=f"{amount:.2f}",
            )
        )
    for ledger_id in record.ledger_ids:
        fee_invoice = snapshot.invoices.get(ledger_id)
        if ledger_id != invoice.id and fee_invoice is not None and fee_invoice.status is InvoiceStatus.VOID:
            findings.append(
                Finding(
                    "foreign_edit",
                    name,
                    f"fee invoice {fee_invoice.number} (for {invoice.number}) was voided in the ledger",
                    proposal="nothing to do if intended; relance will not charge that fee again",
                    action_key=record.key,
                    invoice_id=invoice.id,
                )
            )
    if on_invoice and invoice.lines and not any(line.is_relance_fee for line in invoice.lines):
        findings.append(
            Finding(
                "foreign_edit",
                name,
                f"the relance fee line on invoice {invoice.number} was removed in the ledger",
                proposal="nothing to do if intended; relance will not post it again",
                action_key=record.key,
                invoice_id=invoice.id,
            )
        )
    return findings


def _unknown_fee_lines(
    name: str, snapshot: LedgerSnapshot, fee_records: Iterable[ActionRecord]
) -> list[Finding]:
    """Relance-marked fee lines on invoices where relance has no fee action on record."""
    known = {invoice_id for record in fee_records for invoice_id in (*record.invoice_ids, *record.ledger_ids)}
    findings = []
    for invoice in snapshot.invoices.values():
        if invoice.id in known or invoice.status is InvoiceStatus.VOID:
            continue
        foreign = [line for line in invoice.lines if line.is_relance_fee]
        if foreign:
            amount = sum((line.amount for line in foreign), Decimal(0))
            findings.append(
                Finding(
                    "foreign_edit",
                    name,
                    f"invoice {invoice.number} carries a relance fee line ({invoice.currency} {amount:.2f}) "
                    "that relance has no record of posting",
                    proposal="check who added it (a copied invoice, a manual edit); remove it if wrong",
                    invoice_id=invoice.id,
                    amount=f"{amount:.2f}",
                )
            )
    return findings


def principal_of(invoice: Invoice) -> Decimal:
    """The invoice total without the fee lines relance added to it."""
    fees = sum((line.amount for line in invoice.lines if line.is_relance_fee), Decimal(0))
    return invoice.total.amount - fees


def paid_on_date(
    invoice: Invoice, settlements: Iterable[Settlement], *, principal: Decimal | None = None
) -> date | None:
    """The day payments and credits reached `principal` (default: the whole total), if they did."""
    if invoice.status in (InvoiceStatus.VOID, InvoiceStatus.DRAFT):
        return None
    target = invoice.total.amount if principal is None else principal
    ordered = sorted(settlements, key=lambda s: s.date)
    if target <= 0:
        return ordered[0].date if ordered else None
    covered = Decimal(0)
    for settlement in ordered:
        covered += settlement.amount
        if covered >= target:
            return settlement.date
    if principal is None and invoice.status is InvoiceStatus.PAID and ordered:
        return ordered[-1].date  # the ledger says paid (rounding, write-off): take the last settlement
    return None


def _sent_on(record: ActionRecord, today: date | None) -> date:
    """The day a reminder went out: the run day when recorded, else the wall-clock day of the run
    (never later than `today`, the day the operator reconciles as of)."""
    recorded = record.outcome.get("applied_on")
    sent = date.fromisoformat(str(recorded)) if recorded else record.finished_at.date()  # type: ignore[union-attr]
    return min(sent, today) if today is not None else sent
