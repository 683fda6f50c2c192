"""The QuickBooks connector through python-quickbooks, over real HTTP, against the QBO sandbox.

The 5,000-invoice pull, its call counts and the 30%-faults pull are in the shared contract suite,
test_connector_contract.py (both ledgers); here are the ledger-specific behaviours.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest

from connectors.base import (
    Connector,
    CreditNoteRequest,
    Cursor,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    PullMode,
    RateLimited,
    Verification,
    WriteRequest,
    WriteStatus,
)
from connectors.limits import reset_limiters
from connectors.oauth import refresher_for, resolve_endpoints
from connectors.quickbooks.connector import QuickBooksConnector
from connectors.sandbox.quickbooks import QuickBooksSandbox
from connectors.secrets import SecretBox, load_key
from connectors.tokens import TokenProvider, Tokens, TokenStore
from policies.model.ledger import LedgerSnapshot

TODAY = date(2026, 3, 2)
HISTORY_FROM = date(2024, 3, 2)


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    reset_limiters()
    yield
    reset_limiters()


def start_sandbox(invoices: int = 300, customers: int = 40, seed: int = 7) -> QuickBooksSandbox:
    sandbox = QuickBooksSandbox(seed=seed, customers=customers, invoices=invoices, today=TODAY)
    sandbox.faults.retry_after = 0
    sandbox.start()
    return sandbox


def connect(sandbox: QuickBooksSandbox, directory: Path, **kwargs: Any) -> QuickBooksConnector:
    store = TokenStore(directory / "tokens.enc.json", SecretBox(load_key(directory)))
    store.save("qbo", Tokens.from_response(sandbox.grant(), account_id=sandbox.realm_id))
    endpoints = resolve_endpoints("quickbooks", discovery_url=sandbox.discovery_url)
    refresher = refresher_for("quickbooks", sandbox.client_id, sandbox.client_secret, endpoints)
    provider = TokenProvider("qbo", store, refresher, lock_dir=directory, ledger="quickbooks")
    options: dict[str, Any] = {"retry_sleep": lambda _: None, "retry_base_wait": 0.0, **kwargs}
    return QuickBooksConnector(
        name="qbo",
        base_url=sandbox.base_url,
        realm_id=sandbox.realm_id,
        tokens=provider,
        clock=sandbox.clock,
        **options,
    )


@pytest.fixture()
def sandbox() -> Iterator[QuickBooksSandbox]:
    box = start_sandbox()
    yield box
    box.stop()
    assert box.server.errors == []


@pytest.fixture()
def connector(sandbox: QuickBooksSandbox, tmp_path: Path) -> Iterator[QuickBooksConnector]:
    conn = connect(sandbox, tmp_path)
    yield conn
    conn.close()


def collect(stream: Any) -> tuple[LedgerSnapshot, list[Any], list[str]]:
    snapshot = LedgerSnapshot()
    quarantined: list[Any] = []
    deleted: list[str] = []
    stores: dict[str, dict[str, Any]] = {
        "customer": snapshot.customers,
        "invoice": snapshot.invoices,
        "payment": snapshot.payments,
        "credit_note": snapshot.credit_notes,
    }
    for page in stream:
        for record in page.records:
            stores[page.entity][record.id] = record
        quarantined.extend(page.quarantined)
        deleted.extend(page.deleted_ids)
    return snapshot, quarantined, deleted


def expected_full(truth: LedgerSnapshot, history_from: date) -> LedgerSnapshot:
    """What a full pull covers: active customers, open invoices, anything dated since history_from."""
    return LedgerSnapshot(
        customers={k: c for k, c in truth.customers.items() if c.active},
        invoices={
            k: i for k, i in truth.invoices.items() if i.balance.amount > 0 or i.issue_date >= history_from
        },
        payments={k: p for k, p in truth.payments.items() if p.date >= history_from},
        credit_notes={k: n for k, n in truth.credit_notes.items() if n.date >= history_from},
    )


def list_calls(sandbox: QuickBooksSandbox) -> int:
    return sandbox.log.count("POST", "/query") + sandbox.log.count("GET", "/query")


def test_is_a_connector(connector: QuickBooksConnector) -> None:
    assert isinstance(connector, Connector)
    assert connector.ledger == "quickbooks"
    assert connector.capabilities.fee_line_on_invoice is True
    assert connector.capabilities.ledger_email_idempotent is False
    assert connector.capabilities.write_batch_size == 30


def test_full_pull_equals_truth_and_streams_pages(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector
) -> None:
    stream = connector.pull(None, history_from=HISTORY_FROM)
    assert stream.mode is PullMode.FULL
    pulled, quarantined, _ = collect(stream)
    assert quarantined == []
    assert pulled == expected_full(sandbox.truth(), HISTORY_FROM)
    assert stream.cursor.ledger == "quickbooks"
    assert stream.cursor.taken_at.date() == TODAY


def test_no_change_incremental_is_one_cdc_call(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector
) -> None:
    first = connector.pull(None, history_from=HISTORY_FROM)
    collect(first)
    sandbox.log.reset()
    second = connector.pull(first.cursor, history_from=HISTORY_FROM)
    pulled, _, deleted = collect(second)
    assert second.mode is PullMode.INCREMENTAL
    assert sandbox.log.snapshot() == {"GET /v3/company/{id}/cdc": 1}
    assert pulled == LedgerSnapshot() and deleted == []
    assert second.cursor.taken_at >= first.cursor.taken_at


def test_incremental_returns_exactly_the_changes(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector
) -> None:
    first = connector.pull(None, history_from=HISTORY_FROM)
    collect(first)
    open_ids = sorted((i.id for i in sandbox.truth().invoices.values() if i.is_open), key=int)
    sandbox.modify_invoices(open_ids[:3])
    payment_id = sandbox.add_payment(open_ids[5], Decimal("1.00"), TODAY)
    sandbox.delete_invoice(
        next(
            i
            for i, r in sandbox.entities["Invoice"].items()
            if not r.get("LinkedTxn") and i not in open_ids[:6]
        )
    )
    pulled, _, deleted = collect(connector.pull(first.cursor, history_from=HISTORY_FROM))
    truth = sandbox.truth()
    assert set(pulled.invoices) == {*open_ids[:3], open_ids[5]}
    for invoice_id, invoice in pulled.invoices.items():
        assert invoice == truth.invoices[invoice_id]
    assert pulled.payments == {payment_id: truth.payments[payment_id]}
    assert len(deleted) == 1 and deleted[0] not in truth.invoices


def test_cdc_at_its_limit_pages_a_query_on_last_updated_time_not_a_full_pull(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CDC answers at most CDC_LIMIT objects per entity; at the limit the connector reads that
    entity's changes with a paged query (ceil(changes / page) calls), deletions from CDC."""
    import time

    import connectors.quickbooks.pull as qbo_pull
    import connectors.sandbox.quickbooks.query as qbo_sandbox

    first = connector.pull(None, history_from=HISTORY_FROM)
    collect(first)
    monkeypatch.setattr(qbo_sandbox, "CDC_LIMIT", 5)
    monkeypatch.setattr(qbo_pull, "CDC_LIMIT", 5)
    monkeypatch.setattr(qbo_pull, "PAGE_SIZE", 4)
    open_ids = sorted((i.id for i in sandbox.truth().invoices.values() if i.is_open), key=int)
    gone = next(
        i for i, r in sandbox.entities["Invoice"].items() if not r.get("LinkedTxn") and i not in open_ids
    )
    sandbox.delete_invoice(gone)
    time.sleep(1.1)  # CDC lists the oldest changes first (1 s stamps): the deletion is among them
    sandbox.modify_invoices(open_ids[:5])
    paid = [sandbox.add_payment(invoice_id, Decimal("1.00"), TODAY) for invoice_id in open_ids[5:7]]
    sandbox.log.reset()
    stream = connector.pull(first.cursor, history_from=HISTORY_FROM)
    pulled, _, deleted = collect(stream)
    assert stream.mode is PullMode.INCREMENTAL
    truth = sandbox.truth()
    assert pulled.invoices == {i: truth.invoices[i] for i in open_ids[:7]}
    assert pulled.payments == {p: truth.payments[p] for p in paid}
    assert deleted == [gone]
    # 1 CDC + the 7 changed invoices in pages of 4 (2 calls); no full pull (that would list customers)
    assert sandbox.log.snapshot() == {"GET /v3/company/{id}/cdc": 1, "POST /v3/company/{id}/query": 2}


def test_cursor_older_than_cdc_window_falls_back_to_full(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector
) -> None:
    old = Cursor(
        "quickbooks", {"changed_since": "2025-12-01T00:00:00+00:00"}, datetime(2025, 12, 1, tzinfo=UTC)
    )
    sandbox.log.reset()
    stream = connector.pull(old, history_from=HISTORY_FROM)
    pulled, _, _ = collect(stream)
    assert stream.mode is PullMode.FULL
    assert sandbox.log.count(path_contains="/cdc") == 0
    assert pulled == expected_full(sandbox.truth(), HISTORY_FROM)


def test_server_side_window_refusal_falls_back_to_full(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector
) -> None:
    first = connector.pull(None, history_from=HISTORY_FROM)
    collect(first)
    frozen = first.cursor.taken_at
    connector._clock = lambda: frozen  # the local clock does not know the sandbox travelled in time
    sandbox.clock.advance(31)
    stream = connector.pull(first.cursor, history_from=HISTORY_FROM)
    pulled, _, _ = collect(stream)
    assert stream.mode is PullMode.FULL
    assert sandbox.log.count("GET", "/cdc", status=400) == 1
    assert pulled == expected_full(sandbox.truth(), HISTORY_FROM)


def _open_invoice(sandbox: QuickBooksSandbox, offset: int = 0) -> Any:
    return sorted((i for i in sandbox.truth().invoices.values() if i.is_open), key=lambda i: int(i.id))[
        offset
    ]


def test_each_write_twice_has_one_effect(sandbox: QuickBooksSandbox, connector: QuickBooksConnector) -> None:
    invoice = _open_invoice(sandbox)
    other = _open_invoice(sandbox, 1)
    requests: list[WriteRequest] = [
        FeeLine("fee-key-1", invoice.id, "Late payment fee", Decimal("40.00"), invoice.currency),
        FeeLine("fee-key-2", invoice.id, "Interest", Decimal("3.17"), invoice.currency),  # same invoice
        Note("note-key-1", invoice.id, "relance: reminder 1 sent"),
        CreditNoteRequest(
            "credit-key-1",
            other.customer_id,
            other.id,
            other.currency,
            Decimal("2.00"),
            "Early payment",
            TODAY,
        ),
        FeeInvoice(
            "feeinv-key-1",
            invoice.customer_id,
            invoice.currency,
            (("Late fee", Decimal("15.00")),),
            invoice.number,
            TODAY + timedelta(days=15),
            TODAY,
        ),
    ]
    first = connector.write(requests)
    assert [r.status for r in first] == [WriteStatus.DONE] * 5, first
    second = connector.write(requests)
    assert [r.status for r in second] == [WriteStatus.DONE] * 5, second
    assert [r.ledger_id for r in second[2:]] == [r.ledger_id for r in first[2:]]
    # sent again inside a batch of a different composition: still recognised
    third = connector.write([requests[0], requests[3]])
    assert [r.status for r in third] == [WriteStatus.DONE] * 2
    effects = sandbox.effects()
    keys = sorted(e.idempotency_key or "" for e in effects)
    assert keys == sorted(r.key for r in requests)
    stored = sandbox.truth().invoices[invoice.id]
    fee_lines = [line for line in stored.lines if line.is_relance_fee]
    assert [line.amount for line in fee_lines] == [Decimal("40.00"), Decimal("3.17")]
    assert stored.balance.amount == invoice.balance.amount + Decimal("43.17")
    assert sandbox.truth().invoices[other.id].balance.amount == other.balance.amount - Decimal("2.00")
    for request in requests:
        assert connector.verify(request, since=datetime(2000, 1, 1, tzinfo=UTC)) is Verification.HAPPENED
    unsent = Note("note-key-never", invoice.id, "never sent")
    assert connector.verify(unsent, since=datetime(2000, 1, 1, tzinfo=UTC)) is Verification.NOT_HAPPENED


def test_fee_lines_and_fee_invoices_reference_the_fee_item_created_once(
    sandbox: QuickBooksSandbox, tmp_path: Path
) -> None:
    invoice = _open_invoice(sandbox)
    fee_line = FeeLine("item-fee-1", invoice.id, "Late fee", Decimal("15.00"), invoice.currency)
    fee_invoice = FeeInvoice(
        "item-feeinv-1",
        invoice.customer_id,
        invoice.currency,
        (("Late fee", Decimal("15.00")), ("Interest", Decimal("1.20"))),
        invoice.number,
        TODAY + timedelta(days=15),
        TODAY,
    )
    first = connect(sandbox, tmp_path / "a")
    assert [r.status for r in first.write([fee_line, fee_invoice])] == [WriteStatus.DONE] * 2
    # a second worker (fresh cache) finds the item instead of creating another
    second = connect(sandbox, tmp_path / "b")
    other = _open_invoice(sandbox, 1)
    [again] = second.write([FeeLine("item-fee-2", other.id, "Late fee", Decimal("5"), other.currency)])
    assert again.status is WriteStatus.DONE
    items = [i for i in sandbox.entities["Item"].values() if i["Name"] == "Late fee"]
    assert len(items) == 1 and items[0]["Type"] == "Service"
    assert sandbox.log.count("POST", "/item") == 1
    account = sandbox.entities["Account"][items[0]["IncomeAccountRef"]["value"]]
    assert account["AccountType"] == "Income"
    expected_ref = {"value": items[0]["Id"], "name": "Late fee"}
    stored = sandbox.record("Invoice", invoice.id)
    fee_lines = [line for line in stored["Line"] if "item-fee-1" in str(line.get("Description"))]
    assert [line["SalesItemLineDetail"]["ItemRef"] for line in fee_lines] == [expected_ref]
    fee_record = sandbox.record("Invoice", first.write([fee_invoice])[0].ledger_id or "")
    refs = [line["SalesItemLineDetail"]["ItemRef"] for line in fee_record["Line"] if line.get("Description")]
    assert refs == [expected_ref, expected_ref]
    # the seeded lines keep their own item
    assert any(
        line["SalesItemLineDetail"]["ItemRef"]["value"] == "1"
        for line in stored["Line"]
        if line["DetailType"] == "SalesItemLineDetail"
    )


def test_invoice_send_is_not_idempotent_and_is_verified(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector
) -> None:
    invoice = _open_invoice(sandbox)
    request = LedgerEmail("send-key-1", invoice.id, "accounts@example.com", invoice.last_emailed_at)
    before = sandbox.clock.now() - timedelta(seconds=1)
    assert connector.verify(request, since=before) is Verification.NOT_HAPPENED
    [result] = connector.write([request])
    assert result.status is WriteStatus.DONE
    assert connector.verify(request, since=before) is Verification.HAPPENED
    stored = sandbox.record("Invoice", invoice.id)
    assert stored["EmailStatus"] == "EmailSent"
    assert stored["DeliveryInfo"]["DeliveryType"] == "Email"
    connector.write([request])
    assert [e.kind for e in sandbox.effects()] == ["email", "email"]  # the real API sends twice


def test_ambiguous_send_failure_is_uncertain_not_retried(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector
) -> None:
    invoice = _open_invoice(sandbox)
    request = LedgerEmail("send-key-2", invoice.id, previous_delivery=invoice.last_emailed_at)
    sandbox.log.reset()
    sandbox.faults.burst_5xx = 1
    [result] = connector.write([request])
    assert result.status is WriteStatus.UNCERTAIN
    assert sandbox.log.count("POST", "/send") == 1  # never retried blindly
    assert sandbox.effects() == []
    assert (
        connector.verify(request, since=sandbox.clock.now() - timedelta(minutes=5))
        is Verification.NOT_HAPPENED
    )


def test_stale_sync_token_is_reread_and_retried(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector
) -> None:
    invoice = _open_invoice(sandbox)
    original = connector.writer._read_invoices
    calls = {"n": 0}

    def read_then_someone_edits(ids: Any) -> Any:
        found = original(ids)
        calls["n"] += 1
        if calls["n"] == 1:
            sandbox.modify_invoices([invoice.id])  # a user saves the invoice meanwhile
        return found

    connector.writer._read_invoices = read_then_someone_edits  # type: ignore[method-assign]
    [result] = connector.write([FeeLine("fee-stale", invoice.id, "Fee", Decimal("5.00"), invoice.currency)])
    assert result.status is WriteStatus.DONE
    assert calls["n"] == 2
    assert sandbox.log.count("POST", "/batch", status=200) == 2
    assert [e.kind for e in sandbox.effects()] == ["fee_line"]


def test_write_refusals_fail_cleanly(sandbox: QuickBooksSandbox, connector: QuickBooksConnector) -> None:
    invoice = _open_invoice(sandbox)
    results = connector.write(
        [
            FeeLine("missing", "999999", "Fee", Decimal("5.00"), invoice.currency),
            FeeLine("wrong-cur", invoice.id, "Fee", Decimal("5.00"), "JPY"),
            CreditNoteRequest(
                "bad-customer", "999999", invoice.id, invoice.currency, Decimal("1"), "x", TODAY
            ),
        ]
    )
    assert [r.status for r in results] == [WriteStatus.FAILED] * 3
    assert "999999" in (results[0].error or "")
    assert "JPY" in (results[1].error or "")
    assert "[qbo]" in (results[2].error or "") and "Invalid Reference Id" in (results[2].error or "")
    assert sandbox.effects() == []


def test_thirty_percent_faults_give_identical_pull(sandbox: QuickBooksSandbox, tmp_path: Path) -> None:
    clean_conn = connect(sandbox, tmp_path / "a", max_attempts=12)
    clean, _, _ = collect(clean_conn.pull(None, history_from=HISTORY_FROM))
    sandbox.faults.rate_429 = 0.15
    sandbox.faults.rate_5xx = 0.15
    sandbox.log.reset()
    faulty_conn = connect(sandbox, tmp_path / "b", max_attempts=12)
    faulty, _, _ = collect(faulty_conn.pull(None, history_from=HISTORY_FROM))
    assert faulty == clean
    assert sandbox.log.count(status=429) + sandbox.log.count(status=503) > 0


def test_expired_token_is_refreshed_and_persisted_encrypted(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector, tmp_path: Path
) -> None:
    provider = cast(TokenProvider, connector.tokens)
    old = provider.current()
    sandbox.faults.expire_tokens = True
    pulled, _, _ = collect(connector.pull(None, history_from=HISTORY_FROM))
    assert pulled.invoices
    new = provider.current()
    assert new.access_token != old.access_token and new.refresh_token != old.refresh_token
    assert sandbox.authority.refresh_count == 1
    stored_text = (tmp_path / "tokens.enc.json").read_text()
    for secret in (new.access_token, new.refresh_token, old.access_token):
        assert secret not in stored_text


def test_xml_throttle_body_is_recognised(sandbox: QuickBooksSandbox, tmp_path: Path) -> None:
    conn = connect(sandbox, tmp_path, max_attempts=2)
    sandbox.faults.qbo_xml_throttle = True
    sandbox.faults.rate_429 = 1.0
    with pytest.raises(RateLimited) as caught:
        collect(conn.pull(None, history_from=HISTORY_FROM))
    message = str(caught.value)
    assert "[qbo]" in message and "3001" in message and "ThrottleExceeded" in message
    assert sandbox.log.count(status=429) == 2


def test_malformed_record_is_quarantined_and_pull_goes_on(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector
) -> None:
    invoice = _open_invoice(sandbox)
    expected = expected_full(sandbox.truth(), HISTORY_FROM)
    with sandbox.lock:
        del sandbox.entities["Invoice"][invoice.id]["CurrencyRef"]
        sandbox.entities["Invoice"][str(int(invoice.id) + 1)]["TxnDate"] = "not a date"
        sandbox.changed()  # direct edits: cached query results must be recomputed
    pulled, quarantined, _ = collect(connector.pull(None, history_from=HISTORY_FROM))
    bad = {invoice.id, str(int(invoice.id) + 1)}
    assert {q.record_id for q in quarantined} == bad
    assert all(q.entity == "invoice" and q.reason for q in quarantined)
    assert set(pulled.invoices) == set(expected.invoices) - bad


def test_send_verification_compares_ledger_time_with_ledger_time(
    sandbox: QuickBooksSandbox, connector: QuickBooksConnector
) -> None:
    """The ledger's clock may be far behind ours (time travel here, skew in production): verify
    compares the delivery time with the one the ledger reported before the send, not with `since`."""
    invoice = _open_invoice(sandbox, 2)
    request = LedgerEmail("send-key-3", invoice.id, previous_delivery=invoice.last_emailed_at)
    far_future = sandbox.clock.now() + timedelta(days=400)  # our clock, way ahead of the ledger's
    assert connector.verify(request, since=far_future) is Verification.NOT_HAPPENED
    [result] = connector.write([request])
    assert result.status is WriteStatus.DONE
    assert connector.verify(request, since=far_future) is Verification.HAPPENED
