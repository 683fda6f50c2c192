"""sync.reconcile over a real state store (SQLite, and PostgreSQL when configured): each kind of
drift between the ledger snapshot and relance's outbox, and the cases that are not drift."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from connectors.base import Page
from policies.model.actions import ActionKind, Charge, PlannedAction
from policies.model.ledger import (
    Allocation,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    Settlement,
)
from policies.model.money import Money
from sync.reconcile import paid_on_date, reconcile_connection
from sync.store import Store

CONN = "books"
DUE = date(2026, 3, 1)
TODAY = date(2026, 3, 20)


@dataclass
class Holder:
    """What reconcile_connection reads from a workspace: its store."""

    store: Store


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def make_invoice(
    invoice_id: str = "I1",
    *,
    total: str = "1000.00",
    balance: str | None = None,
    fee_line: str | None = None,
    status: InvoiceStatus = InvoiceStatus.OPEN,
    lines: tuple[InvoiceLine, ...] | None = None,
) -> Invoice:
    if lines is None:
        lines = (InvoiceLine("Services", Decimal(total)),)
        if fee_line:
            lines += (InvoiceLine("[relance] late payment", Decimal(fee_line), is_relance_fee=True),)
    grand = Decimal(total) + Decimal(fee_line or 0)
    return Invoice(
        id=invoice_id,
        number=f"F-{invoice_id}",
        customer_id="C1",
        issue_date=DUE - timedelta(days=30),
        due_date=DUE,
        currency="EUR",
        total=eur(str(grand)),
        balance=eur(balance if balance is not None else str(grand)),
        status=status,
        lines=lines,
    )


def pay(payment_id: str, invoice_id: str, amount: str, on: date) -> Payment:
    return Payment(payment_id, "C1", on, eur(amount), (Allocation(invoice_id, Decimal(amount)),))


def load(store: Store, invoices: Sequence[Invoice], payments: Sequence[Payment] = ()) -> None:
    store.ledger.upsert_records(CONN, Page("customer", (Customer("C1", "Acme SARL", ("ap@acme.test",)),)))
    store.ledger.upsert_records(CONN, Page("invoice", tuple(invoices)))
    if payments:
        store.ledger.upsert_records(CONN, Page("payment", tuple(payments)))


def action(key: str, kind: ActionKind, invoice_id: str = "I1", **extra: Any) -> PlannedAction:
    return PlannedAction(
        key=key,
        kind=kind,
        customer_id="C1",
        currency="EUR",
        invoice_ids=(invoice_id,),
        reason="test",
        **extra,
    )


def done(store: Store, planned: PlannedAction, ledger_ids: tuple[str, ...] = (), **detail: Any) -> None:
    store.outbox.record_planned(CONN, [planned])
    assert store.outbox.claim(planned.key)
    assert store.outbox.mark_done(planned.key, ledger_ids, detail or None)


def fee(key: str = "fee-1", invoice_id: str = "I1", amount: str = "52.30") -> PlannedAction:
    return action(
        key,
        ActionKind.FEE,
        invoice_id,
        step="late-letter",
        charges=(
            Charge("interest", eur("12.30")),
            Charge("compensation", eur(str(Decimal(amount) - Decimal("12.30")))),
        ),
        due_on=DUE + timedelta(days=15),
    )


def kinds(findings: list[Any]) -> list[str]:
    return [finding.kind for finding in findings]


# ---------------------------------------------------------------- fees inside the grace period


def test_fee_line_on_an_invoice_paid_on_time(store: Store) -> None:
    """QuickBooks line mode: the fee sits on the invoice; the customer paid the original amount on
    the due date, keyed in late -> the fee was wrong."""
    load(store, [make_invoice(fee_line="52.30", balance="52.30")], [pay("P1", "I1", "1000.00", DUE)])
    done(store, fee(), ledger_ids=("I1",))
    findings = reconcile_connection(Holder(store), CONN, grace_days=0)  # type: ignore[arg-type]
    assert kinds(findings) == ["fee_in_grace"]
    (finding,) = findings
    assert finding.action_key == "fee-1" and finding.invoice_id == "I1" and finding.amount == "52.30"
    assert "2026-03-01" in finding.message and "credit note of EUR 52.30" in (finding.proposal or "")


def test_fee_invoice_for_an_invoice_paid_inside_the_grace_days(store: Store) -> None:
    """Xero / fee-invoice mode: the original is paid in full, five days late, with five days' grace."""
    fee_invoice = make_invoice("FEE1", total="52.30")
    load(
        store,
        [make_invoice(balance="0", status=InvoiceStatus.PAID), fee_invoice],
        [
            pay("P1", "I1", "600.00", DUE - timedelta(days=3)),
            pay("P2", "I1", "400.00", DUE + timedelta(days=5)),
        ],
    )
    done(store, fee(), ledger_ids=("FEE1",))
    assert kinds(reconcile_connection(Holder(store), CONN, grace_days=5)) == ["fee_in_grace"]  # type: ignore[arg-type]
    assert reconcile_connection(Holder(store), CONN, grace_days=4) == []  # type: ignore[arg-type]


def test_no_finding_when_paid_late_or_not_paid(store: Store) -> None:
    load(
        store,
        [
            make_invoice("I1", fee_line="52.30", balance="52.30"),
            make_invoice("I2", fee_line="52.30", balance="552.30"),
        ],
        [pay("P1", "I1", "1000.00", DUE + timedelta(days=1)), pay("P2", "I2", "500.00", DUE)],
    )
    done(store, fee("fee-1", "I1"), ledger_ids=("I1",))
    done(store, fee("fee-2", "I2"), ledger_ids=("I2",))
    assert reconcile_connection(Holder(store), CONN, grace_days=0) == []  # type: ignore[arg-type]


# ---------------------------------------------------------------- ledger edits relance did not make


def test_voided_fee_invoice_and_removed_fee_line(store: Store) -> None:
    load(
        store,
        [
            make_invoice("I1"),
            make_invoice("FEE1", total="52.30", status=InvoiceStatus.VOID),
            make_invoice("I2"),  # the relance line that was posted is gone
        ],
    )
    done(store, fee("fee-1", "I1"), ledger_ids=("FEE1",))
    done(store, fee("fee-2", "I2"), ledger_ids=("I2",))
    findings = reconcile_connection(Holder(store), CONN, grace_days=0)  # type: ignore[arg-type]
    assert kinds(findings) == ["foreign_edit", "foreign_edit"]
    voided, removed = findings
    assert "fee invoice F-FEE1" in voided.message and "voided" in voided.message
    assert voided.action_key == "fee-1"
    assert "F-I2 was removed" in removed.message and removed.action_key == "fee-2"


def test_relance_fee_line_with_no_record(store: Store) -> None:
    load(store, [make_invoice("I1", fee_line="40.00"), make_invoice("I2", fee_line="52.30")])
    done(store, fee("fee-2", "I2"), ledger_ids=("I2",))  # I2's line is ours
    findings = reconcile_connection(Holder(store), CONN, grace_days=0)  # type: ignore[arg-type]
    assert kinds(findings) == ["foreign_edit"]
    assert findings[0].invoice_id == "I1" and findings[0].amount == "40.00"
    assert "no record" in findings[0].message


# ---------------------------------------------------------------- reminders and uncertain actions


def test_reminder_sent_after_payment(store: Store) -> None:
    load(
        store,
        [make_invoice("I1", balance="0", status=InvoiceStatus.PAID), make_invoice("I2", balance="0")],
        [
            pay("P1", "I1", "1000.00", DUE + timedelta(days=10)),
            pay("P2", "I2", "1000.00", DUE + timedelta(days=30)),
        ],
    )
    reminder = dict(step="late-email", channel="email")
    done(store, action("r-1", ActionKind.REMINDER, "I1", **reminder), applied_on="2026-03-16")
    done(store, action("r-2", ActionKind.REMINDER, "I2", **reminder), applied_on="2026-03-16")
    findings = reconcile_connection(Holder(store), CONN, grace_days=0)  # type: ignore[arg-type]
    assert kinds(findings) == ["reminder_after_payment"]  # I2 was paid after the reminder: fine
    assert findings[0].action_key == "r-1"
    assert "went out on 2026-03-16" in findings[0].message and "paid on 2026-03-11" in findings[0].message


def test_reminder_day_defaults_to_the_run_and_never_after_today(store: Store) -> None:
    """Without a recorded run day the reminder counts as sent when it was recorded (wall clock),
    capped at the day reconcile runs as of (time travel in tests, back-dated runs)."""
    paid_on = date.today() - timedelta(days=40)  # relative: the recorded day is the real one
    load(store, [make_invoice("I1", balance="0")], [pay("P1", "I1", "1000.00", paid_on)])
    done(store, action("r-1", ActionKind.REMINDER, "I1", step="late-email", channel="email"))
    holder: Any = Holder(store)
    assert kinds(reconcile_connection(holder, CONN, grace_days=0)) == ["reminder_after_payment"]
    assert reconcile_connection(holder, CONN, grace_days=0, today=paid_on) == []


def test_uncertain_action(store: Store) -> None:
    load(store, [make_invoice()])
    planned = action("u-1", ActionKind.REMINDER, step="resend-invoice", channel="ledger_email")
    store.outbox.record_planned(CONN, [planned])
    store.outbox.claim("u-1")
    store.outbox.mark_uncertain("u-1", "connection dropped during the invoice send")
    findings = reconcile_connection(Holder(store), CONN, grace_days=0)  # type: ignore[arg-type]
    assert kinds(findings) == ["uncertain"]
    assert "connection dropped" in findings[0].message and "resend-invoice" in findings[0].message
    assert findings[0].proposal and "relance resolve u-1 --sent|--not-sent" in findings[0].proposal
    assert findings[0].to_json()["invoice_id"] == "I1"
    store.outbox.resolve_uncertain("u-1", happened=False)
    assert reconcile_connection(Holder(store), CONN, grace_days=0) == []  # type: ignore[arg-type]


# ---------------------------------------------------------------- the paid-on date


def test_paid_on_date() -> None:
    open_invoice = make_invoice(fee_line="50.00", balance="50.00")
    settlements = [Settlement(DUE + timedelta(days=2), Decimal("400")), Settlement(DUE, Decimal("600"))]
    assert paid_on_date(open_invoice, settlements) is None  # the fee line is still owed
    assert paid_on_date(open_invoice, settlements, principal=Decimal("1000.00")) == DUE + timedelta(days=2)
    assert paid_on_date(open_invoice, settlements[1:], principal=Decimal("1000.00")) is None
    written_off = make_invoice(balance="0", status=InvoiceStatus.PAID)
    assert paid_on_date(written_off, [Settlement(DUE, Decimal("999.99"))]) == DUE
    void = make_invoice(balance="0", status=InvoiceStatus.VOID)
    assert paid_on_date(void, settlements) is None
