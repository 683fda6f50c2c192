"""The Xero connector through xero-python over real HTTP to the Xero sandbox.

The 5,000-invoice pull, its call counts and the 30%-faults pull are in the shared contract suite,
test_connector_contract.py (both ledgers); here are the ledger-specific behaviours.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from connectors.base import (
    AuthError,
    Connector,
    CreditNoteRequest,
    Cursor,
    DayLimitReached,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    Page,
    PullMode,
    PullStream,
    Verification,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from connectors.limits import limiter_for
from connectors.oauth import refresher_for, resolve_endpoints
from connectors.sandbox.generator import generate_company
from connectors.sandbox.xero import XeroSandbox
from connectors.secrets import SecretBox
from connectors.tokens import TokenProvider, Tokens, TokenStore
from connectors.xero.connector import XeroConnector
from connectors.xero.keys import batch_key
from policies.model.ledger import CustomerKind, InvoiceStatus, LedgerSnapshot

TODAY = date(2026, 3, 2)
HISTORY_FROM = TODAY - timedelta(days=800)  # before every generated record (540 days of history)


@dataclass
class Rig:
    sandbox: XeroSandbox
    connector: XeroConnector
    provider: TokenProvider
    store: TokenStore
    config_dir: Path

    def pull(
        self, cursor: Cursor | None = None, history_from: date = HISTORY_FROM
    ) -> tuple[LedgerSnapshot, PullStream, list[Page]]:
        stream = self.connector.pull(cursor, history_from=history_from)
        snapshot = LedgerSnapshot()
        pages = []
        for page in stream:
            pages.append(page)
            stores: dict[str, dict[str, Any]] = {
                "customer": snapshot.customers,
                "invoice": snapshot.invoices,
                "payment": snapshot.payments,
                "credit_note": snapshot.credit_notes,
            }
            target = stores[page.entity]
            for record in page.records:
                assert record.id not in target, f"{page.entity} {record.id} pulled twice"
                target[record.id] = record
        return snapshot, stream, pages


@pytest.fixture()
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    started: list[XeroSandbox] = []

    def build(customers: int = 40, invoices: int = 300, seed: int = 11, **sandbox_args: object) -> Rig:
        tenant = str(uuid.uuid4())  # one limiter per test: limits never leak between tests
        sandbox = XeroSandbox(
            seed=seed,
            customers=customers,
            invoices=invoices,
            today=TODAY,
            tenant_id=tenant,
            minute_limit=100_000,
            **sandbox_args,  # type: ignore[arg-type]
        )
        sandbox.authority.access_ttl = 30 * 86400  # time-travel tests must not expire it by accident
        sandbox.start()
        started.append(sandbox)
        config_dir = tmp_path / f"config-{len(started)}"
        store = TokenStore(config_dir / "tokens.enc.json", SecretBox(Fernet.generate_key()))
        store.save("books", Tokens.from_response(sandbox.grant(), account_id=tenant))
        endpoints = resolve_endpoints("xero", identity_url=sandbox.identity_url, base_url=sandbox.base_url)
        provider = TokenProvider(
            "books",
            store,
            refresher_for("xero", sandbox.client_id, sandbox.client_secret, endpoints),
            ledger="xero",
            lock_dir=config_dir,
        )
        limiter_for("xero", tenant, per_minute=100_000, concurrent=5)
        connector = XeroConnector(
            name="books",
            base_url=sandbox.base_url,
            tenant_id=tenant,
            tokens=provider,
            clock=sandbox.clock,
            retry_base_wait=0.01,
        )
        return Rig(sandbox, connector, provider, store, config_dir)

    yield build
    for sandbox in started:
        sandbox.stop()


def _active_truth(truth: LedgerSnapshot) -> LedgerSnapshot:
    return replace(truth, customers={k: c for k, c in truth.customers.items() if c.active})


def _list_calls(sandbox: XeroSandbox, resource: str) -> int:
    return sandbox.log.count("GET", path_contains=f"/api.xro/2.0/{resource}")


def test_is_a_connector(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=2, invoices=3)
    assert isinstance(rig.connector, Connector)
    assert rig.connector.ledger == "xero"
    assert rig.connector.capabilities.fee_line_on_invoice is False
    assert rig.connector.capabilities.ledger_email_idempotent is True


def test_full_pull_maps_the_generated_company_faithfully(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=25, invoices=200, seed=5)
    company = generate_company(
        seed=5,
        customers=25,
        invoices=200,
        today=TODAY,
        country="FR",
        currency="EUR",
        other_currencies=("USD", "GBP"),
        language="fr",
    )
    snapshot, _, _ = rig.pull()
    by_number = {invoice.number: invoice for invoice in snapshot.invoices.values()}
    for original in company.invoices:
        pulled = by_number[original.number]
        assert pulled.id == rig.sandbox.xero_id("invoice", original.id)
        assert pulled.customer_id == rig.sandbox.xero_id("customer", original.customer_id)
        assert (pulled.issue_date, pulled.due_date) == (original.issue_date, original.due_date)
        assert (pulled.total, pulled.balance, pulled.status) == (
            original.total,
            original.balance,
            original.status,
        )
        assert [(line.description, line.amount) for line in pulled.lines] == [
            (line.description, line.amount) for line in original.lines
        ]
        assert pulled.reference == original.reference
        assert pulled.email_status == ("sent" if original.email_status == "EmailSent" else "not_sent")
    for generated in company.customers:
        pulled_customer = snapshot.customers.get(rig.sandbox.xero_id("customer", generated.id))
        if not generated.active:
            assert pulled_customer is None
            continue
        assert pulled_customer is not None
        assert (pulled_customer.name, pulled_customer.emails, pulled_customer.country) == (
            generated.name,
            generated.emails,
            generated.country,
        )
        assert (pulled_customer.kind, pulled_customer.language, pulled_customer.tags) == (
            generated.kind,
            generated.language,
            tuple(sorted(generated.tags)),
        )
        assert pulled_customer.currency == generated.currency
    assert sum(len(p.allocations) for p in snapshot.payments.values()) == sum(
        len(p.allocations) for p in company.payments
    )


def test_history_window_keeps_open_invoices_and_drops_old_paid_ones(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=20, invoices=300, seed=9)
    cutoff = TODAY - timedelta(days=200)
    snapshot, _, _ = rig.pull(history_from=cutoff)
    truth = rig.sandbox.truth()
    expected = {
        i.id for i in truth.invoices.values() if i.issue_date >= cutoff or i.status is InvoiceStatus.OPEN
    }
    assert set(snapshot.invoices) == expected
    assert set(snapshot.payments) == {p.id for p in truth.payments.values() if p.date >= cutoff}
    assert len(expected) < len(truth.invoices)  # the window really filtered something


def test_incremental_without_changes_makes_three_calls_then_returns_exactly_the_changes(
    make_rig: Callable[..., Rig],
) -> None:
    rig = make_rig(customers=30, invoices=400, seed=4)
    _, first, _ = rig.pull()
    rig.sandbox.clock.advance(1)
    rig.sandbox.log.reset()
    nothing, stream, pages = rig.pull(first.cursor)
    assert stream.mode is PullMode.INCREMENTAL
    assert rig.sandbox.log.count() <= 3
    assert pages == [] and nothing == LedgerSnapshot()

    rig.sandbox.clock.advance(1)
    open_ids = [i.id for i in rig.sandbox.truth().invoices.values() if i.is_open][:3]
    rig.sandbox.modify_invoices(open_ids[:2])
    payment_id = rig.sandbox.add_payment(open_ids[2], Decimal("1.00"), rig.sandbox.clock.today())
    changes, third, _ = rig.pull(stream.cursor)
    truth = rig.sandbox.truth()
    assert set(changes.invoices) == set(open_ids)
    assert set(changes.payments) == {payment_id}
    assert changes.customers == {} and changes.credit_notes == {}
    for invoice_id in open_ids:
        assert changes.invoices[invoice_id] == truth.invoices[invoice_id]
    assert changes.payments[payment_id] == truth.payments[payment_id]
    assert third.cursor.taken_at >= stream.cursor.taken_at


def test_each_write_sent_twice_with_the_same_key_has_one_effect(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=10, invoices=60, seed=8)
    truth = rig.sandbox.truth()
    emailable = [
        i
        for i in truth.invoices.values()
        if i.is_open and truth.customers[i.customer_id].emails and i.balance.amount > 5
    ]
    first, second = emailable[0], emailable[1]
    requests: list[WriteRequest] = [
        FeeInvoice(
            "k-fee-1",
            first.customer_id,
            first.currency,
            (("Late fee", Decimal("40.00")),),
            first.number,
            TODAY + timedelta(days=15),
            TODAY,
        ),
        FeeInvoice(
            "k-fee-2",
            second.customer_id,
            second.currency,
            (("Interest", Decimal("3.17")), ("Admin fee", Decimal("5"))),
            second.number,
            TODAY + timedelta(days=15),
            TODAY,
        ),
        LedgerEmail("k-email", first.id),
        Note("k-note", first.id, "relance: reminder step before-due sent"),
        CreditNoteRequest(
            "k-credit",
            second.customer_id,
            second.id,
            second.currency,
            Decimal("2.50"),
            "Early-payment discount",
            TODAY,
        ),
        FeeLine("k-line", first.id, "Late fee", Decimal("10"), first.currency),
    ]
    results_1 = rig.connector.write(requests)
    results_2 = rig.connector.write(requests)
    statuses = [r.status for r in results_1]
    assert statuses == [WriteStatus.DONE] * 5 + [WriteStatus.FAILED]
    assert "not supported by Xero: use fee invoices" in (results_1[5].error or "")
    assert [r.ledger_id for r in results_1] == [r.ledger_id for r in results_2]
    effects = rig.sandbox.effects()
    kinds = sorted(e.kind for e in effects)
    assert kinds == ["credit_note", "email", "fee_invoice", "fee_invoice", "note"]
    fee_keys = {e.idempotency_key for e in effects if e.kind == "fee_invoice"}
    assert fee_keys == {batch_key(["k-fee-1", "k-fee-2"])}  # one batched PUT for both
    fee_puts = [e for e in rig.sandbox.log.entries if e.method == "PUT" and e.path.endswith("/Invoices")]
    assert len(fee_puts) == 2  # one batched PUT per write(); the second was replayed
    after = rig.sandbox.truth()
    fee = after.invoices[results_1[1].ledger_id or ""]
    assert fee.total.amount == Decimal("8.17") and fee.reference == second.number
    assert all(line.is_relance_fee for line in fee.lines)
    assert after.invoices[second.id].balance.amount == second.balance.amount - Decimal("2.50")
    assert len(after.credit_notes) == len(truth.credit_notes) + 1
    assert after.invoices[first.id].email_status == "sent"


def test_credit_notes_are_created_in_batches_and_never_twice(
    make_rig: Callable[..., Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One lookup + one PUT per batch, one allocation per note; a note created by an earlier attempt
    (even in a batch of another composition) is found by its reference and only allocated."""
    rig = make_rig(customers=8, invoices=60, seed=16)
    truth = rig.sandbox.truth()
    targets = [i for i in truth.invoices.values() if i.is_open and i.balance.amount > 5][:4]
    requests = [
        CreditNoteRequest(
            f"b-credit-{n}", i.customer_id, i.id, i.currency, Decimal("1.50"), "Early-payment discount", TODAY
        )
        for n, i in enumerate(targets)
    ]

    def calls() -> dict[str, int]:
        counted: dict[str, int] = {}
        for entry in rig.sandbox.log.entries:
            if "/CreditNotes" in entry.path:
                resource = "Allocations" if entry.path.endswith("/Allocations") else "CreditNotes"
                name = f"{entry.method} {resource}"
                counted[name] = counted.get(name, 0) + 1
        return counted

    # an earlier attempt created the first note, then died before allocating it
    real_allocate = rig.connector.credit_notes._allocate
    monkeypatch.setattr(
        rig.connector.credit_notes,
        "_allocate",
        lambda r, n: WriteResult(r.key, WriteStatus.UNCERTAIN, error="killed"),
    )
    assert rig.connector.write(requests[:1])[0].status is WriteStatus.UNCERTAIN
    monkeypatch.setattr(rig.connector.credit_notes, "_allocate", real_allocate)
    rig.sandbox.log.reset()
    first = rig.connector.write(requests)
    assert [r.status for r in first] == [WriteStatus.DONE] * 4
    assert calls() == {"GET CreditNotes": 1, "PUT CreditNotes": 1, "PUT Allocations": 4}
    rig.sandbox.log.reset()
    again = rig.connector.write(requests)
    assert [r.ledger_id for r in again] == [r.ledger_id for r in first]
    assert calls() == {"GET CreditNotes": 1}  # found, already allocated: nothing to do
    after = rig.sandbox.truth()
    assert len(after.credit_notes) == len(truth.credit_notes) + 4
    assert sorted(e.invoice_id for e in rig.sandbox.effects() if e.kind == "credit_note") == sorted(
        i.id for i in targets
    )
    for invoice in targets:
        assert after.invoices[invoice.id].balance.amount == invoice.balance.amount - Decimal("1.50")


def test_a_refused_credit_note_fails_alone_in_its_batch(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=5, invoices=20, seed=17)
    target = next(i for i in rig.sandbox.truth().invoices.values() if i.is_open)
    good = CreditNoteRequest(
        "c-good", target.customer_id, target.id, target.currency, Decimal("1"), "Discount", TODAY
    )
    bad = replace(good, key="c-bad", customer_id=str(uuid.uuid4()))
    results = rig.connector.write([good, bad])
    assert results[0].status is WriteStatus.DONE
    assert results[1].status is WriteStatus.FAILED and "contact could not be found" in (
        results[1].error or ""
    )


def test_verify_tells_what_happened(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=8, invoices=40, seed=12)
    truth = rig.sandbox.truth()
    target = next(i for i in truth.invoices.values() if i.is_open and truth.customers[i.customer_id].emails)
    since = rig.sandbox.clock.now() - timedelta(seconds=1)
    fee = FeeInvoice(
        "v-fee",
        target.customer_id,
        target.currency,
        (("Late fee", Decimal("40")),),
        target.number,
        TODAY + timedelta(days=10),
        TODAY,
    )
    note = Note("v-note", target.id, "relance: final notice sent")
    email = LedgerEmail("v-email", target.id)
    credit = CreditNoteRequest(
        "v-credit", target.customer_id, target.id, target.currency, Decimal("1"), "Fee reversal", TODAY
    )
    for request in (fee, note, credit):
        assert rig.connector.verify(request, since=since) is Verification.NOT_HAPPENED
    # History cannot tell which request sent an email: UNKNOWN, and the engine repeats the
    # (idempotent) email under the same key rather than guess.
    assert rig.connector.verify(email, since=since) is Verification.UNKNOWN
    assert all(r.status is WriteStatus.DONE for r in rig.connector.write([fee, note, email, credit]))
    for request in (fee, note, credit):
        assert rig.connector.verify(request, since=since) is Verification.HAPPENED
    assert rig.connector.verify(email, since=since) is Verification.UNKNOWN


def test_expired_token_is_refreshed_and_persisted_encrypted(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=5, invoices=20, seed=2)
    old = rig.store.get("books")
    assert old is not None
    rig.sandbox.faults.expire_tokens = True
    snapshot, _, _ = rig.pull()
    assert len(snapshot.invoices) == 20
    assert rig.provider.refreshes == 1
    assert rig.sandbox.log.count("GET", status=401) == 1
    new = rig.store.get("books")
    assert new is not None and new.access_token != old.access_token
    assert new.refresh_token != old.refresh_token  # rotated and saved
    for path in rig.config_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert new.access_token not in text and new.refresh_token not in text


def test_day_limit_stops_the_tenant_with_the_reset_time(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=5, invoices=30, seed=6)
    rig.sandbox.faults.day_limit_remaining = 1
    with pytest.raises(DayLimitReached) as caught:
        rig.pull()
    assert caught.value.reset_at is not None and caught.value.reset_at > datetime.now(UTC)
    assert "books" in str(caught.value)
    calls = rig.sandbox.log.count()
    with pytest.raises(DayLimitReached):
        rig.pull()
    assert rig.sandbox.log.count() == calls  # no call at all until the reset


def test_unknown_tenant_is_a_clear_auth_error(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=2, invoices=2)
    connector = XeroConnector(
        name="books",
        base_url=rig.sandbox.base_url,
        tenant_id=str(uuid.uuid4()),
        tokens=rig.provider,
    )
    limiter_for("xero", connector.tenant_id, per_minute=100_000)
    with pytest.raises(AuthError) as caught:
        list(connector.pull(None, history_from=HISTORY_FROM))
    message = str(caught.value)
    assert "[books]" in message and "403" in message and "GET Contacts" in message
    assert "at-" not in message  # never a token


def test_malformed_record_is_quarantined_and_the_pull_goes_on(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=5, invoices=30, seed=14)
    broken = next(i for i in rig.sandbox.invoices.values() if not i.payment_ids and not i.credited)
    broken.currency = "EURO"
    rig.sandbox.changed()  # a direct edit: cached list results must be recomputed
    snapshot, _, pages = rig.pull()
    quarantined = [q for page in pages for q in page.quarantined]
    assert [(q.entity, q.record_id) for q in quarantined] == [("invoice", broken.id)]
    assert "CurrencyCode" in quarantined[0].reason
    assert len(snapshot.invoices) == 29


def test_rejected_fee_invoice_fails_alone_in_its_batch(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=5, invoices=10, seed=15)
    target = next(iter(rig.sandbox.truth().invoices.values()))
    good = FeeInvoice(
        "r-good",
        target.customer_id,
        target.currency,
        (("Late fee", Decimal("40")),),
        target.number,
        TODAY,
        TODAY,
    )
    bad = replace(good, key="r-bad", customer_id=str(uuid.uuid4()))
    results = rig.connector.write([good, bad])
    assert results[0].status is WriteStatus.DONE
    assert results[1].status is WriteStatus.FAILED
    assert "contact could not be found" in (results[1].error or "")
    assert [e.kind for e in rig.sandbox.effects()] == ["fee_invoice"]


def test_customer_conventions_from_contact_groups(make_rig: Callable[..., Rig]) -> None:
    rig = make_rig(customers=30, invoices=5, seed=1)
    snapshot, _, _ = rig.pull()
    kinds = {c.kind for c in snapshot.customers.values()}
    assert kinds <= {CustomerKind.B2B, CustomerKind.B2C} and CustomerKind.B2B in kinds
    assert all(c.language for c in snapshot.customers.values())
