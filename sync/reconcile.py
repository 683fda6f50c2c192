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

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from policies.ledger import InvoiceStatus, settlements_by_invoice

if TYPE_CHECKING:
    from sync.workspace import Workspace


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


def reconcile(ws: Workspace, *, connection: str | None = None, today: date | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for config in ws.connections(connection):
        findings.extend(reconcile_connection(ws, config.name, grace_days=_grace_days(ws, config)))
    return findings


def _grace_days(ws: Workspace, config: Any) -> int:
    return int(ws.policy_for(config).interest_terms().grace_days)


def reconcile_connection(ws: Workspace, name: str, *, grace_days: int) -> list[Finding]:
    store = ws.store
    snapshot = store.snapshot(name)
    settlements = settlements_by_invoice(snapshot.payments.values(), snapshot.credit_notes.values())
    findings: list[Finding] = []
    done = store.actions(name, status="done")
    fee_keys = set()
    for record in done:
        invoice_id = record.invoice_ids[0] if record.invoice_ids else None
        invoice = snapshot.invoices.get(invoice_id) if invoice_id else None
        if record.kind == "fee":
            fee_keys.add(record.key)
            if invoice is None:
                continue
            paid_on = _paid_on(invoice, settlements.get(invoice.id, []))
            if paid_on is not None and paid_on <= invoice.due_date + timedelta(days=grace_days):
                amount = sum((c.amount.amount for c in record.charges), Decimal(0))
                findings.append(
                    Finding(
                        "fee_in_grace",
                        name,
                        f"invoice {invoice.number} was paid on {paid_on}, inside the grace period, "
                        "but relance "
                        f"charged {invoice.currency} {amount:.2f}",
                        proposal=f"issue a credit note of {invoice.currency} {amount:.2f} reversing the fee",
                        action_key=record.key,
                        invoice_id=invoice.id,
                        amount=f"{amount:.2f}",
                    )
                )
            for ledger_id in record.ledger_ids:
                fee_invoice = snapshot.invoices.get(ledger_id)
                if fee_invoice is not None and fee_invoice.status is InvoiceStatus.VOID:
                    findings.append(
                        Finding(
                            "foreign_edit",
                            name,
                            f"fee invoice {fee_invoice.number} (for {invoice.number}) "
                            "was voided in the ledger",
                            proposal="nothing to do if intended; relance will not charge that fee again",
                            action_key=record.key,
                            invoice_id=invoice.id,
                        )
                    )
            if record.details.get("mode") == "line" and not any(
                line.is_relance_fee for line in invoice.lines
            ):
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
        elif record.kind == "reminder" and invoice is not None and record.finished_at is not None:
            paid_on = _paid_on(invoice, settlements.get(invoice.id, []))
            if paid_on is not None and paid_on < record.finished_at.date():
                findings.append(
                    Finding(
                        "reminder_after_payment",
                        name,
                        f"step '{record.step}' went out on {record.finished_at.date()} "
                        f"for invoice {invoice.number}, "
                        f"paid on {paid_on}",
                        proposal="send an apology / thanks; check the payment posting delay",
                        action_key=record.key,
                        invoice_id=invoice.id,
                    )
                )
    for record in store.actions(name, status="uncertain"):
        findings.append(
            Finding(
                "uncertain",
                name,
                f"{record.kind} {record.key} ({record.step or ''}) "
                f"may or may not have happened: {record.error}",
                proposal=f"check the ledger or mailbox, then "
                f"`relance resolve {record.key} --sent|--not-sent`",
                action_key=record.key,
            )
        )
    return findings


def _paid_on(invoice: Any, settlements: list[Any]) -> date | None:
    """The day the invoice became fully paid, if it is."""
    if invoice.status is not InvoiceStatus.PAID and invoice.balance.amount > 0:
        return None
    remaining = invoice.total.amount
    for settlement in settlements:
        remaining -= settlement.amount
        if remaining <= 0:
            return settlement.date
    return settlements[-1].date if settlements else None
