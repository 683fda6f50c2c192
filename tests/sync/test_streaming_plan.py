"""Streamed planning (sync.engine.plan_for over store.planning.iter_batches) gives the very plan of the
single pass over the whole snapshot (plan_from_snapshot), on SQLite and PostgreSQL.

The ledger is a generated company written to the store page by page, in two shapes: QuickBooks
(numeric ids) and Xero (GUIDs, so the customer order is unlike the insertion order). On top: a
history of earlier daily runs (notices, notes, fees, superseded steps, some cancelled), a payment
plan, a dispute, a pause, a payment allocated to another customer's invoice (a parent paying for a
sub-customer), an early-payment discount taken. Batches are kept small so customers span many.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from connectors.base import Page
from connectors.sandbox.generator import iter_company
from policies.model.actions import ActionStatus, PlanStatus
from policies.model.ledger import (
    Allocation,
    CreditNote,
    Customer,
    Invoice,
    InvoiceStatus,
    Payment,
    settlements_by_invoice,
)
from policies.model.money import Money
from policies.payment_plans import PaymentPlan
from policies.planning import Plan
from sync.plans import iter_plan_parts, plan_for, plan_from_snapshot
from sync.store import Store, open_store
from tests.support.paths import EXAMPLE_POLICIES
from tests.support.rules import load_policy

TODAY = date(2026, 3, 16)
NAME = "acme"
PAGE = 500


def _xero_id(kind: str, value: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}/{value}"))


def _reshape(record: Any, shape: str) -> Any:
    """Xero-shaped ids (GUIDs) for every record and reference; QuickBooks ids are kept."""
    if shape == "quickbooks":
        return record
    if isinstance(record, Customer):
        return replace(record, id=_xero_id("customer", record.id))
    cid = _xero_id("customer", record.customer_id)
    if isinstance(record, Invoice):
        return replace(record, id=_xero_id("invoice", record.id), customer_id=cid)
    allocations = tuple(Allocation(_xero_id("invoice", a.invoice_id), a.amount) for a in record.allocations)
    kind = "payment" if isinstance(record, Payment) else "credit_note"
    return replace(record, id=_xero_id(kind, record.id), customer_id=cid, allocations=allocations)


def _pages(shape: str) -> Iterator[Page]:
    customers, stream = iter_company(
        seed=5,
        customers=80,
        invoices=1500,
        today=TODAY,
        country="FR",
        currency="EUR",
        other_currencies=("USD",),
        history_days=420,
        language="fr",
    )
    yield Page("customer", tuple(_reshape(c, shape) for c in customers))
    buffers: dict[str, list[Any]] = {"invoice": [], "payment": [], "credit_note": []}
    for item in stream:
        buffers["invoice"].append(_reshape(item.invoice, shape))
        buffers["payment"].extend(_reshape(p, shape) for p in item.payments)
        buffers["credit_note"].extend(_reshape(n, shape) for n in item.credit_notes)
        for entity, rows in buffers.items():
            if len(rows) >= PAGE:
                yield Page(entity, tuple(rows))  # type: ignore[arg-type]
                rows.clear()
    for entity, rows in buffers.items():
        if rows:
            yield Page(entity, tuple(rows))  # type: ignore[arg-type]


def _extras(store: Store) -> None:
    """Cases the generator does not make: a cross-customer payment, a discount taken, a credit note
    of another customer, a payment plan, a dispute and a pause."""
    snapshot = store.ledger.snapshot(NAME)
    open_by_customer: dict[str, list[Invoice]] = {}
    for invoice in sorted(snapshot.invoices.values(), key=lambda i: i.id):
        if invoice.is_open and invoice.currency == "EUR" and invoice.due_date < TODAY - timedelta(days=20):
            open_by_customer.setdefault(invoice.customer_id, []).append(invoice)
    owners = sorted(open_by_customer, key=lambda c: -len(open_by_customer[c]))
    parent, child, planned, disputed, paused = owners[:5]
    target = open_by_customer[child][0]
    part = (target.balance.amount / 2).quantize(Decimal("0.01"))
    store.ledger.upsert_records(
        NAME,
        Page(
            "payment",
            (
                Payment(
                    "x-parent-pays",
                    parent,
                    TODAY - timedelta(days=3),
                    Money(part, "EUR"),
                    (Allocation(target.id, part),),
                ),
            ),
        ),
    )
    store.ledger.upsert_records(
        NAME, Page("invoice", (replace(target, balance=Money(target.balance.amount - part, "EUR")),))
    )
    second = open_by_customer[child][1]
    store.ledger.upsert_records(
        NAME,
        Page(
            "credit_note",
            (
                CreditNote(
                    "x-parent-note",
                    "CN-X",
                    parent,
                    TODAY - timedelta(days=2),
                    Money(Decimal("10.00"), "EUR"),
                    Money(Decimal("0.00"), "EUR"),
                    (Allocation(second.id, Decimal("10.00")),),
                ),
            ),
        ),
    )
    covered = open_by_customer[planned][:2]
    balance = sum((i.balance.amount for i in covered), Decimal(0))
    first = (balance / 2).quantize(Decimal("0.01"))
    from policies.model.ledger import Instalment

    store.cases.add_payment_plan(
        NAME,
        PaymentPlan(
            "plan-x",
            planned,
            tuple(i.id for i in covered),
            (
                Instalment(TODAY - timedelta(days=20), first),
                Instalment(TODAY + timedelta(days=10), balance - first),
            ),
        ),
    )
    store.cases.set_dispute(NAME, open_by_customer[disputed][0].id, reason="quantities")
    store.cases.set_pause(NAME, paused, TODAY + timedelta(days=5))


def _discount_taken(store: Store, customer_id: str) -> None:
    """Paid within 10 days less the 2% discount: the balance left is the discount (added after the
    history runs, so today's plan is the first to see it)."""
    issue = TODAY - timedelta(days=12)
    total = Decimal("1000.00")
    store.ledger.upsert_records(
        NAME,
        Page(
            "invoice",
            (
                Invoice(
                    "x-discount",
                    "INV-X-DISCOUNT",
                    customer_id,
                    issue,
                    issue + timedelta(days=30),
                    "EUR",
                    Money(total, "EUR"),
                    Money(Decimal("20.00"), "EUR"),
                    InvoiceStatus.OPEN,
                ),
            ),
        ),
    )
    store.ledger.upsert_records(
        NAME,
        Page(
            "payment",
            (
                Payment(
                    "x-discount-pay",
                    customer_id,
                    issue + timedelta(days=5),
                    Money(Decimal("980.00"), "EUR"),
                    (Allocation("x-discount", Decimal("980.00")),),
                ),
            ),
        ),
    )


def _apply_everything(store: Store, plan: Plan, *, cancel_every: int = 0) -> None:
    """What a daily run leaves in the outbox: actions done (some cancelled), steps superseded.
    Statuses are set in two statements (the claim/done transitions have their own tests)."""
    import sqlalchemy as sa

    from sync.store import schema

    store.outbox.record_superseded(NAME, plan.superseded)
    store.outbox.record_planned(NAME, plan.actions)
    keys = [a.key for a in plan.actions]
    cancelled = set(keys[::cancel_every]) if cancel_every else set()
    actions = schema.actions
    with store.engine.begin() as conn:
        for status, chosen in (
            (ActionStatus.SUPERSEDED, cancelled),
            (ActionStatus.DONE, set(keys) - cancelled),
        ):
            if chosen:
                conn.execute(
                    sa.update(actions).where(actions.c.key.in_(sorted(chosen))).values(status=status)
                )


def _assert_same(streamed: Plan, reference: Plan) -> None:
    assert [a.key for a in streamed.actions] == [a.key for a in reference.actions]
    for mine, theirs in zip(streamed.actions, reference.actions, strict=True):
        assert mine.charges == theirs.charges, mine.key
        assert mine.reason == theirs.reason, mine.key
        assert mine == theirs, mine.key
    assert streamed.superseded == reference.superseded
    assert streamed.credit == reference.credit
    assert streamed.suggestions == reference.suggestions
    # skipped and warnings are listed in ledger order, which the snapshot never fixed
    assert sorted(streamed.skipped, key=repr) == sorted(reference.skipped, key=repr)
    assert set(streamed.warnings) == set(reference.warnings)


@pytest.fixture
def ledger(request: pytest.FixtureRequest, store_url: str) -> Iterator[Store]:
    """The generated ledger in the store, QuickBooks-shaped unless the test asks for "xero"."""
    store = open_store(store_url)
    try:
        for page in _pages(getattr(request, "param", "quickbooks")):
            store.ledger.upsert_records(NAME, page)
        _extras(store)
        yield store
    finally:
        store.close()


@pytest.mark.parametrize(
    ("ledger", "policy_file"),
    [("quickbooks", "fr-b2b.yaml"), ("xero", "us-net30.yaml")],
    indirect=["ledger"],
)
def test_streamed_plan_equals_snapshot_plan(ledger: Store, policy_file: str) -> None:
    policy = load_policy(EXAMPLE_POLICIES / policy_file)
    # Earlier daily runs build a history (notices, notes, fees, thanks, superseded, cancelled).
    for days_before, cancel_every in ((45, 0), (20, 7), (6, 0)):
        day = TODAY - timedelta(days=days_before)
        _apply_everything(ledger, plan_from_snapshot(ledger, policy, NAME, day), cancel_every=cancel_every)
    assert ledger.outbox.history(NAME)
    _discount_taken(ledger, ledger.ledger.view(NAME).payments["x-parent-pays"].customer_id)

    reference = plan_from_snapshot(ledger, policy, NAME, TODAY)
    parts = list(iter_plan_parts(ledger, policy, NAME, TODAY, batch=150))
    assert len(parts) > 3  # customers really are spread over batches
    streamed = plan_for(ledger, policy, NAME, TODAY, batch=150)

    kinds = {a.kind.value for a in reference.actions}
    assert {"reminder", "note", "fee"} <= kinds, kinds  # the comparison covers real work
    assert any(a.kind.value == "credit_note" for a in reference.actions)
    assert reference.suggestions or reference.credit
    _assert_same(streamed, reference)
    _assert_same(plan_for(ledger, policy, NAME, TODAY), reference)  # one big batch
    _assert_inputs(ledger, policy)


def _assert_inputs(store: Store, policy: Any) -> None:
    """Each batch streams exactly the invoices that can matter, with the snapshot's settlements and
    history for them."""
    snapshot = store.ledger.snapshot(NAME)
    settlements = settlements_by_invoice(snapshot.payments.values(), snapshot.credit_notes.values())
    history = store.outbox.history(NAME)
    since = TODAY - timedelta(days=policy.credit.suggestion.lookback_days)
    linked = {i for record in store.outbox.actions(NAME) for i in record.invoice_ids}
    expected = {
        i.id
        for i in snapshot.invoices.values()
        if i.status is InvoiceStatus.OPEN
        or (i.status is InvoiceStatus.DRAFT and policy.credit.include_drafts)
        or (i.status is InvoiceStatus.PAID and (i.issue_date >= since or i.id in linked))
    }
    streamed = []
    for batch in store.planning.iter_batches(
        NAME, paid_since=since, include_drafts=policy.credit.include_drafts, batch=150
    ):
        for invoice in batch.invoices:
            streamed.append(invoice.id)
            assert invoice == snapshot.invoices[invoice.id]
            assert batch.settlements.get(invoice.id) == settlements.get(invoice.id), invoice.id
            assert batch.history.get(invoice.id) == history.get(invoice.id), invoice.id
            assert batch.customers.get(invoice.customer_id) == snapshot.customers.get(invoice.customer_id)
    assert len(streamed) == len(set(streamed))
    assert set(streamed) == expected


@pytest.mark.parametrize("ledger", ["quickbooks", "xero"], indirect=True)
def test_cross_customer_payment_settles_in_its_batch(ledger: Store) -> None:
    """The parent's payment reaches the sub-customer's invoice, whatever batch each lands in."""
    batches = list(ledger.planning.iter_batches(NAME, paid_since=None, include_drafts=False, batch=100))
    reference = ledger.ledger.settlements_for(NAME, [i.id for b in batches for i in b.invoices])
    for batch in batches:
        for invoice in batch.invoices:
            assert batch.settlements.get(invoice.id) == reference.get(invoice.id), invoice.id
    crossed = [s for items in reference.values() for s in items if s.source_id.startswith("x-parent")]
    assert len(crossed) == 2
    # a customer never spans two batches
    seen: set[str] = set()
    for batch in batches:
        mine = {i.customer_id for i in batch.invoices}
        assert not mine & seen
        seen |= mine


def test_plan_spanning_customers_falls_back_to_the_snapshot(ledger: Store) -> None:
    """An invoice moved to another customer after its payment plan: still the reference plan."""
    from policies.model.ledger import Instalment

    policy = load_policy(EXAMPLE_POLICIES / "fr-b2b.yaml")
    ledger.cases.set_payment_plan_status("plan-x", PlanStatus.CANCELLED)
    by_customer: dict[str, list[Invoice]] = {}
    for invoice in sorted(ledger.ledger.snapshot(NAME).invoices.values(), key=lambda i: i.id):
        if invoice.is_open and invoice.currency == "EUR":
            by_customer.setdefault(invoice.customer_id, []).append(invoice)
    owner = max(by_customer, key=lambda c: len(by_customer[c]))
    covered = by_customer[owner][-2:]
    total = sum((i.balance.amount for i in covered), Decimal(0))
    ledger.cases.add_payment_plan(
        NAME,
        PaymentPlan(
            "plan-y",
            owner,
            tuple(i.id for i in covered),
            (Instalment(TODAY + timedelta(days=10), total),),
        ),
    )
    other = next(c for c in by_customer if c != owner)
    ledger.ledger.upsert_records(NAME, Page("invoice", (replace(covered[1], customer_id=other),)))
    reference = plan_from_snapshot(ledger, policy, NAME, TODAY)
    assert len(list(iter_plan_parts(ledger, policy, NAME, TODAY, batch=150))) == 1  # the fallback
    _assert_same(plan_for(ledger, policy, NAME, TODAY, batch=150), reference)


def test_ledger_view_reads_on_demand(ledger: Store) -> None:
    view = ledger.ledger.view(NAME, cache_size=8)
    snapshot = ledger.ledger.snapshot(NAME)
    some = sorted(snapshot.invoices)[:20]
    for invoice_id in some:
        assert view.invoices[invoice_id] == snapshot.invoices[invoice_id]
        assert invoice_id in view.invoices
    assert view.invoices.get("nope") is None and "nope" not in view.invoices
    with pytest.raises(KeyError):
        view.customers["nope"]
    assert {i.id: i for i in view.invoices.values()} == snapshot.invoices
    assert len(view.customers) == len(snapshot.customers)
    assert view.payments.get("x-parent-pays") == snapshot.payments["x-parent-pays"]
    assert dict(view.credit_notes.items()) == snapshot.credit_notes
