"""The state store on SQLite and PostgreSQL: snapshots, cursors, the outbox, disputes, pauses,
payment plans, tasks, audit and quarantine."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from connectors.base import Cursor, Page, Quarantined
from policies.model.actions import ActionKind, ActionStatus, Charge, PlannedAction, PlanStatus, TaskStatus
from policies.model.details import NoticeDetails
from policies.model.ledger import (
    Allocation,
    CreditNote,
    Customer,
    CustomerKind,
    Instalment,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
)
from policies.model.money import Money
from policies.payment_plans import PaymentPlan
from sync.store import Store, StoreError
from sync.store import schema as t
from tests.support.details import typed

CONN = "acme"
STAMP = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def customer(cid: str = "C1", **changes: object) -> Customer:
    fields: dict[str, object] = dict(
        id=cid,
        name=f"Client {cid}",
        emails=("a@example.com", "b@example.com"),
        language="fr",
        country="FR",
        kind=CustomerKind.B2B,
        tags=("key",),
        currency="EUR",
        updated_at=STAMP,
    )
    fields.update(changes)
    return Customer(**fields)  # type: ignore[arg-type]


def invoice(
    iid: str = "I1",
    *,
    balance: str = "1200.10",
    status: InvoiceStatus = InvoiceStatus.OPEN,
    customer_id: str = "C1",
    due: date = date(2026, 2, 15),
) -> Invoice:
    return Invoice(
        id=iid,
        number=f"F-{iid}",
        customer_id=customer_id,
        issue_date=date(2026, 1, 15),
        due_date=due,
        currency="EUR",
        total=Money.of("1200.10", "EUR"),
        balance=Money.of(balance, "EUR"),
        status=status,
        instalments=(
            Instalment(date(2026, 2, 15), Decimal("600.05")),
            Instalment(date(2026, 3, 15), Decimal("600.05")),
        ),
        lines=(
            InvoiceLine("Conseil", Decimal("1000.10")),
            InvoiceLine("[relance] frais", Decimal("200.00"), True),
        ),
        email_status="EmailSent",
        last_emailed_at=STAMP,
        pay_link="https://pay.example/1",
        reference="PO 7",
        updated_at=STAMP,
    )


def payment(pid: str = "P1", amount: str = "100.00") -> Payment:
    return Payment(
        pid,
        "C1",
        date(2026, 2, 20),
        Money.of(amount, "EUR"),
        (Allocation("I1", Decimal(amount)),),
        updated_at=STAMP,
    )


def credit_note(nid: str = "N1") -> CreditNote:
    return CreditNote(
        nid,
        f"AV-{nid}",
        "C1",
        date(2026, 2, 21),
        Money.of("50.00", "EUR"),
        Money.of("10.00", "EUR"),
        (Allocation("I1", Decimal("40.00")),),
        reference="F-I1",
        updated_at=STAMP,
    )


def action(
    key: str,
    kind: ActionKind = ActionKind.REMINDER,
    *,
    invoices: tuple[str, ...] = ("I1",),
    step: str | None = "late-letter",
    charges: tuple[Charge, ...] = (),
    instalment: int | None = None,
    due_on: date | None = date(2026, 3, 2),
) -> PlannedAction:
    return PlannedAction(
        key=key,
        kind=kind,
        customer_id="C1",
        currency="EUR",
        invoice_ids=invoices,
        reason=f"why {key}",
        step=step,
        channel="email",
        template="late_letter",
        charges=charges,
        instalment=instalment,
        due_on=due_on,
        details=typed(kind, step, DETAILS.get(kind, {})),
    )


# the details each kind of test action carries, in the JSON shape the outbox stores
DETAILS: dict[ActionKind, dict[str, Any]] = {
    ActionKind.REMINDER: {
        "customer_name": "C1 SARL",
        "balance": "12.50",
        "invoices": [{"id": "I1", "number": "F-I1", "due_date": "2026-03-02"}],
    },
    ActionKind.FEE: {"invoice_number": "F-I1", "fees": {"admin": "Admin fee"}},
}


def fee(key: str, interest: str = "3.21") -> PlannedAction:
    return action(
        key,
        ActionKind.FEE,
        charges=(
            Charge("interest", Money.of(interest, "EUR"), "interest to 2026-03-02"),
            Charge("compensation", Money.of("40.00", "EUR"), "fixed recovery compensation"),
        ),
    )


# ---------------------------------------------------------------- snapshots


def test_snapshot_round_trips_every_entity_exactly(store: Store) -> None:
    store.ledger.upsert_records(
        CONN, Page("customer", (customer("C1"), customer("C2", kind=None, emails=())))
    )
    store.ledger.upsert_records(
        CONN, Page("invoice", (invoice("I1"), invoice("I2", balance="0", status=InvoiceStatus.PAID)))
    )
    store.ledger.upsert_records(CONN, Page("payment", (payment(),)))
    store.ledger.upsert_records(CONN, Page("credit_note", (credit_note(),)))
    store.ledger.upsert_records("other", Page("invoice", (invoice("I9"),)))

    snapshot = store.ledger.snapshot(CONN)

    assert snapshot.customers == {"C1": customer("C1"), "C2": customer("C2", kind=None, emails=())}
    assert snapshot.invoices == {
        "I1": invoice("I1"),
        "I2": invoice("I2", balance="0", status=InvoiceStatus.PAID),
    }
    assert snapshot.payments == {"P1": payment()}
    assert snapshot.credit_notes == {"N1": credit_note()}
    assert snapshot.invoices["I1"].balance.amount == Decimal("1200.10")
    assert isinstance(snapshot.invoices["I1"].instalments[0].amount, Decimal)
    assert store.ledger.counts(CONN) == {"customer": 2, "invoice": 2, "payment": 1, "credit_note": 1}


def test_upsert_updates_in_place_and_deletions_void_or_remove(store: Store) -> None:
    store.ledger.upsert_records(CONN, Page("customer", (customer("C1"), customer("C2"))))
    store.ledger.upsert_records(CONN, Page("invoice", (invoice("I1"), invoice("I2"))))
    store.ledger.upsert_records(CONN, Page("payment", (payment("P1"), payment("P2"))))
    store.ledger.upsert_records(CONN, Page("credit_note", (credit_note("N1"),)))

    store.ledger.upsert_records(
        CONN, Page("invoice", (invoice("I1", balance="200.10"),), deleted_ids=("I2", "unknown"))
    )
    store.ledger.upsert_records(CONN, Page("customer", (), deleted_ids=("C2",)))
    store.ledger.upsert_records(CONN, Page("payment", (), deleted_ids=("P2",)))
    store.ledger.upsert_records(CONN, Page("credit_note", (), deleted_ids=("N1",)))

    snapshot = store.ledger.snapshot(CONN)
    assert snapshot.invoices["I1"].balance == Money.of("200.10", "EUR")
    assert snapshot.invoices["I2"].status is InvoiceStatus.VOID
    assert snapshot.customers["C2"].active is False
    assert set(snapshot.payments) == {"P1"}
    assert snapshot.credit_notes == {}
    assert [i.id for i in store.ledger.iter_invoices(CONN, open_only=True)] == ["I1"]


def test_indexed_money_is_exact_never_float(store: Store) -> None:
    big = "98765432109.123456"
    store.ledger.upsert_records(CONN, Page("invoice", (invoice("I1", balance=big),)))
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(t.invoices.c.balance)).scalar_one()
        raw = conn.exec_driver_sql("SELECT balance FROM invoices").scalar_one()
    assert stored == Decimal(big)
    assert not isinstance(raw, float)
    assert Decimal(str(raw)) == Decimal(big)


def test_bulk_upsert_of_many_pages_keeps_every_row(store: Store) -> None:
    rows = [
        invoice(f"I{n}", balance=f"{n}.01", due=date(2026, 1, 1) + timedelta(days=n % 90))
        for n in range(3000)
    ]
    for start in range(0, len(rows), 1000):
        store.ledger.upsert_records(CONN, Page("invoice", tuple(rows[start : start + 1000])))
    store.ledger.upsert_records(CONN, Page("invoice", tuple(rows[:1000])))  # a re-pull of the first page
    streamed = list(store.ledger.iter_invoices(CONN, batch=500))
    assert len(streamed) == 3000
    assert [i.due_date for i in streamed] == sorted(i.due_date for i in streamed)
    assert store.ledger.invoice(CONN, "I2999") == rows[2999]
    assert store.ledger.find_invoices("F-I42") == [(CONN, rows[42])]


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        store.ledger.upsert_records(
            CONN, Page("customer", (customer("C1", updated_at=datetime(2026, 1, 1, 12, 0)),))
        )


def test_cursor_round_trip_and_connection_status(store: Store) -> None:
    assert store.connections.cursor(CONN) is None
    cursor = Cursor("quickbooks", {"since": "2026-03-01T09:30:15Z", "pages": [1, 2]}, STAMP)
    store.connections.set_cursor(CONN, cursor, full=True)
    assert store.connections.cursor(CONN) == cursor
    store.connections.touch(CONN, ledger="quickbooks", error="[acme] 503 from the ledger")
    record = store.connections.get(CONN)
    assert record is not None
    assert (record.ledger, record.status, record.last_error) == (
        "quickbooks",
        "error",
        "[acme] 503 from the ledger",
    )
    assert record.last_full_pull_at == STAMP
    assert record.last_sync_at is not None and record.last_sync_at.tzinfo is not None
    store.connections.touch(CONN, ledger="quickbooks")
    assert store.connections.get(CONN).status == "ok"  # type: ignore[union-attr]
    store.connections.set_cursor(CONN, None)
    assert store.connections.cursor(CONN) is None


# ---------------------------------------------------------------- the outbox


def test_record_planned_inserts_new_keys_only(store: Store) -> None:
    first = store.outbox.record_planned(
        CONN, [action("k1"), action("k2", invoices=("I1", "I2")), action("k1")]
    )
    assert first == ["k1", "k2"]
    assert store.outbox.record_planned(CONN, [action("k2"), action("k3")]) == ["k3"]
    assert store.outbox.record_planned(CONN, []) == []
    records = store.outbox.actions(CONN)
    assert [r.key for r in records] == ["k1", "k2", "k3"]
    assert {r.status for r in records} == {"planned"}
    assert [r.key for r in store.outbox.actions(CONN, invoice_id="I2")] == ["k2"]
    record = store.outbox.action("k1")
    assert record is not None
    assert record.details == typed(ActionKind.REMINDER, "late-letter", DETAILS[ActionKind.REMINDER])
    assert record.as_dict()["details"] == DETAILS[ActionKind.REMINDER]  # the stored JSON, exactly
    assert record.planned_for == date(2026, 3, 2)
    assert record.to_planned().key == "k1"


def test_charges_round_trip_as_decimal_money(store: Store) -> None:
    store.outbox.record_planned(CONN, [fee("f1", interest="0.10")])
    record = store.outbox.action("f1")
    assert record is not None
    assert record.charges == fee("f1", interest="0.10").charges
    assert record.as_dict()["charges"][0] == {
        "component": "interest",
        "amount": "0.10",
        "currency": "EUR",
        "description": "interest to 2026-03-02",
    }


def test_claim_is_a_compare_and_set(store: Store) -> None:
    store.outbox.record_planned(CONN, [action("k1")])
    assert store.outbox.claim("k1") is True
    assert store.outbox.claim("k1") is False  # already in flight
    record = store.outbox.action("k1")
    assert record is not None and record.status == "in_flight" and record.attempts == 1
    assert record.started_at is not None and record.started_at.tzinfo is not None
    assert [r.key for r in store.outbox.in_flight(CONN)] == ["k1"]

    assert store.outbox.mark_failed("k1", "400 from the ledger") is True
    assert store.outbox.claim("k1") is True
    assert store.outbox.action("k1").attempts == 2  # type: ignore[union-attr]
    assert store.outbox.mark_done("k1", ["L-9"], {"mode": "line"}) is True
    done = store.outbox.action("k1")
    assert done is not None
    assert (done.status, done.ledger_ids, done.error) == ("done", ("L-9",), None)
    assert done.outcome["mode"] == "line" and isinstance(done.details, NoticeDetails)
    assert done.details.invoices[0].number == "F-I1"
    assert done.finished_at is not None
    assert store.outbox.claim("k1") is False
    assert store.outbox.mark_superseded("k1", "too late") is False  # never supersede what happened
    assert store.outbox.mark_failed("k1", "x") is False


def test_release_returns_to_planned_without_counting_the_attempt(store: Store) -> None:
    store.outbox.record_planned(CONN, [action("k1")])
    store.outbox.claim("k1")
    assert store.outbox.release("k1", "day limit reached before the call") is True
    record = store.outbox.action("k1")
    assert record is not None
    assert (record.status, record.attempts, record.started_at) == ("planned", 0, None)


def test_uncertain_stays_until_resolved(store: Store) -> None:
    store.outbox.record_planned(CONN, [action("k1"), action("k2")])
    for key in ("k1", "k2"):
        store.outbox.claim(key)
        store.outbox.mark_uncertain(key, "timeout during send")
    assert store.outbox.claim("k1") is False
    assert store.outbox.mark_superseded("k1", "x") is False
    assert store.outbox.resolve_uncertain("k1", happened=True, note="seen in the mailbox") is True
    assert store.outbox.resolve_uncertain("k2", happened=False) is True
    assert store.outbox.action("k1").status == "done"  # type: ignore[union-attr]
    assert store.outbox.action("k2").status == "planned"  # type: ignore[union-attr]
    assert [e.event for e in store.audit.entries(CONN)][:2] == ["action_resolved", "action_resolved"]


def test_unknown_key_is_a_clear_error(store: Store) -> None:
    with pytest.raises(StoreError, match="no action with key 'nope'"):
        store.outbox.claim("nope")


def test_update_planned_refreshes_only_pending_actions(store: Store) -> None:
    store.outbox.record_planned(CONN, [fee("f1", "1.00"), fee("f2", "1.00")])
    store.outbox.claim("f2")
    assert store.outbox.update_planned([fee("f1", "2.50"), fee("f2", "2.50")]) == 1
    assert store.outbox.action("f1").charges[0].amount == Money.of("2.50", "EUR")  # type: ignore[union-attr]
    assert store.outbox.action("f2").charges[0].amount == Money.of("1.00", "EUR")  # type: ignore[union-attr]


def test_history_counts_everything_whose_fate_is_not_open(store: Store) -> None:
    store.outbox.record_planned(
        CONN,
        [
            action("planned"),
            action("failed"),
            action("flight"),
            action("unsure"),
            action("done"),
            fee("fee-done", "3.00"),
            fee("fee-cancelled", "5.00"),
        ],
    )
    store.outbox.record_superseded(CONN, [action("skip", ActionKind.SUPERSEDED, step="before-due")])
    for key in ("failed", "flight", "unsure", "done", "fee-done"):
        store.outbox.claim(key)
    store.outbox.mark_failed("failed", "refused")
    store.outbox.mark_uncertain("unsure", "timeout")
    store.outbox.mark_done("done", [], {})
    store.outbox.mark_done("fee-done", ["L1"], {})
    store.outbox.mark_superseded("fee-cancelled", "paid meanwhile")

    history = store.outbox.history(CONN)

    keys = {item.key for item in history["I1"]}
    assert keys == {"flight", "unsure", "done", "fee-done", "fee-cancelled", "skip"}
    by_key = {item.key: item for item in history["I1"]}
    assert by_key["skip"].kind is ActionKind.SUPERSEDED and by_key["skip"].step == "before-due"
    assert by_key["fee-done"].charges[0].amount == Money.of("3.00", "EUR")
    assert by_key["fee-cancelled"].charges == ()  # never posted: its interest stays owed
    assert by_key["done"].on == date(2026, 3, 2)
    assert store.outbox.action("skip").status == "superseded"  # type: ignore[union-attr]
    assert store.outbox.status_counts(CONN)[ActionStatus.SUPERSEDED] == 2


def test_breaches_are_the_credit_limit_actions(store: Store) -> None:
    alert = PlannedAction(
        "b1",
        ActionKind.CREDIT_ALERT,
        "C1",
        "EUR",
        ("I1",),
        "limit exceeded",
        step="credit-limit",
        details=typed(ActionKind.CREDIT_ALERT, "credit-limit", {"limit": "5000.00", "exposure": "6200.00"}),
    )
    store.outbox.record_planned(CONN, [alert, action("k1")])
    breaches = store.outbox.breaches(CONN)
    assert [b["key"] for b in breaches] == ["b1"]
    assert breaches[0]["details"]["exposure"] == "6200.00"


# ---------------------------------------------------------------- disputes, pauses, payment plans


def test_disputes_until_inclusive_and_cleared(store: Store) -> None:
    store.cases.set_dispute(CONN, "I1", until=date(2026, 3, 10), reason="wrong quantity")
    store.cases.set_dispute(CONN, "I2")
    store.cases.set_dispute("other", "I3")
    assert store.cases.disputes(CONN, date(2026, 3, 10)) == {"I1": date(2026, 3, 10), "I2": None}
    assert store.cases.disputes(CONN, date(2026, 3, 11)) == {"I2": None}
    store.cases.set_dispute(CONN, "I1", until=date(2026, 4, 1))  # extends the open dispute, no duplicate
    assert len(store.cases.dispute_records(CONN)) == 2
    assert store.cases.clear_dispute(CONN, "I2") is True
    assert store.cases.clear_dispute(CONN, "I2") is False
    assert store.cases.disputes(CONN, date(2026, 3, 11)) == {"I1": date(2026, 4, 1)}
    assert len(store.cases.dispute_records(CONN, include_cleared=True)) == 2
    assert "dispute_cleared" in [e.event for e in store.audit.entries(CONN)]


def test_pauses_replace_and_expire(store: Store) -> None:
    store.cases.set_pause(CONN, "C1", date(2026, 3, 31), reason="holiday closure")
    store.cases.set_pause(CONN, "C1", date(2026, 4, 30))
    store.cases.set_pause(CONN, "C2", date(2026, 3, 1))
    assert store.cases.pauses(CONN, date(2026, 3, 1)) == {"C1": date(2026, 4, 30), "C2": date(2026, 3, 1)}
    assert store.cases.pauses(CONN, date(2026, 3, 2)) == {"C1": date(2026, 4, 30)}
    assert store.cases.clear_pause(CONN, "C1") is True
    assert store.cases.pauses(CONN, date(2026, 3, 2)) == {}


def test_payment_plans_round_trip_and_status(store: Store) -> None:
    plan = PaymentPlan(
        "plan-1",
        "C1",
        ("I1", "I2"),
        (Instalment(date(2026, 4, 1), Decimal("600.05")), Instalment(date(2026, 5, 1), Decimal("600.05"))),
        acceleration_days=15,
    )
    store.cases.add_payment_plan(CONN, plan)
    assert store.cases.payment_plans(CONN) == {"plan-1": plan}
    with pytest.raises(Exception, match="already exists"):
        store.cases.add_payment_plan(CONN, plan)
    assert store.cases.set_payment_plan_status("plan-1", PlanStatus.ACCELERATED) is True
    assert store.cases.payment_plans(CONN) == {}
    assert [r.status for r in store.cases.payment_plan_records(CONN)] == ["accelerated"]


# ---------------------------------------------------------------- tasks, audit, quarantine


def test_tasks_are_unique_per_action_key(store: Store) -> None:
    entry = {
        "key": "k1",
        "kind": "call_task",
        "customer_id": "C1",
        "invoice_ids": ("I1",),
        "title": "Call Client C1 about F-I1",
        "amount": Decimal("1200.10"),
    }
    assert store.tasks.add(CONN, entry, note="no email address on file") is True
    assert store.tasks.add(CONN, entry) is False
    (task,) = store.tasks.records(status=TaskStatus.OPEN)
    assert (task.kind, task.title, task.note, task.invoice_ids) == (
        "call_task",
        "Call Client C1 about F-I1",
        "no email address on file",
        ("I1",),
    )
    assert task.payload["amount"] == "1200.10"
    assert store.tasks.complete(task.id) is True
    assert store.tasks.records(CONN, status=TaskStatus.OPEN) == []


def test_audit_and_quarantine(store: Store) -> None:
    store.audit.record(
        "sync_started", connection=CONN, detail={"today": date(2026, 3, 2), "fees": Decimal("40.00")}
    )
    (entry,) = store.audit.entries(CONN)
    assert (entry.event, entry.actor, entry.detail) == (
        "sync_started",
        "relance",
        {"today": "2026-03-02", "fees": "40.00"},
    )
    assert entry.at.tzinfo is not None
    with pytest.raises(TypeError, match="float"):
        store.audit.record("bad", detail={"amount": 1.5})
    store.quarantine.add(CONN, Quarantined("invoice", "I7", "missing DueDate", '{"Id": "I7"}'))
    (bad,) = store.quarantine.records(CONN)
    assert (bad["entity"], bad["record_id"], bad["reason"]) == ("invoice", "I7", "missing DueDate")


def test_task_entries_from_the_channels_are_stored_with_their_own_shape(store: Store) -> None:
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Entry:
        key: str
        kind: str
        customer_id: str
        summary: str
        invoices: tuple[str, ...]

        def as_dict(self) -> dict[str, object]:
            return {
                "key": self.key,
                "kind": self.kind,
                "customer_id": self.customer_id,
                "summary": self.summary,
                "invoices": list(self.invoices),
                "amount_due": "80.00",
            }

    assert store.tasks.add(CONN, Entry("k9", "letter", "C1", "Print the late letter", ("F-1",))) is True
    (task,) = store.tasks.records(CONN)
    assert (task.key, task.kind, task.title, task.invoice_ids) == (
        "k9",
        "letter",
        "Print the late letter",
        ("F-1",),
    )
    assert task.payload["amount_due"] == "80.00"
