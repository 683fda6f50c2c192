"""One contract for both connectors: the same tests, parametrised over QuickBooks Online and Xero.

Real pieces only: each sandbox is an HTTP server on 127.0.0.1, each connector goes through its
official SDK (python-quickbooks, xero-python), tokens live encrypted in a TokenStore and are
refreshed against the sandbox's OAuth authority. Pacing limits are opened up (limiter_for with
per_minute=10**6) so tests count calls instead of sleeping.

Spec validation of Xero answers and parsing of recorded real QBO answers are part of the contract
too; they live in test_xero_spec.py and test_quickbooks_recorded.py (both skip with a
clear reason when ../shared is absent).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.base import (
    Capabilities,
    Connector,
    CreditNoteRequest,
    Cursor,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    Page,
    PullMode,
    Verification,
    WriteRequest,
    WriteStatus,
)
from connectors.limits import limiter_for, reset_limiters
from connectors.oauth import refresher_for, resolve_endpoints
from connectors.quickbooks import connector as qbo
from connectors.quickbooks import pull as qbo_pull
from connectors.secrets import SecretBox, load_key
from connectors.tokens import TokenProvider, Tokens, TokenStore
from connectors.xero import connector as xero
from connectors.xero import pull as xero_pull
from policies.model.ledger import Invoice, LedgerSnapshot
from tests.support.sandboxes import company, make_sandbox

TODAY = date(2026, 3, 2)
HISTORY_FROM = TODAY - timedelta(days=800)  # before every generated record (540 days of history)
LEDGERS = ["quickbooks", "xero"]
BIG_INVOICES = 5000
EFFECT_KIND = {
    Note: "note",
    FeeLine: "fee_line",
    FeeInvoice: "fee_invoice",
    CreditNoteRequest: "credit_note",
    LedgerEmail: "email",
}


# ---------------------------------------------------------------- rig


@dataclass
class Rig:
    ledger: str
    sandbox: Any
    connector: Any
    provider: TokenProvider
    store: TokenStore
    config_dir: Path

    @property
    def capabilities(self) -> Capabilities:
        caps: Capabilities = self.connector.capabilities
        return caps

    def pull(self, cursor: Cursor | None = None) -> tuple[LedgerSnapshot, Any, list[Page]]:
        stream = self.connector.pull(cursor, history_from=HISTORY_FROM)
        snapshot = LedgerSnapshot()
        pages: list[Page] = []
        for page in stream:
            pages.append(page)
            target = entity_map(snapshot)[page.entity]
            for record in page.records:
                assert record.id not in target, f"{page.entity} {record.id} pulled twice"
                target[record.id] = record
        return snapshot, stream, pages

    def list_calls(self) -> int:
        if self.ledger == "quickbooks":
            return int(self.sandbox.log.count(path_contains="/query"))
        return sum(
            self.sandbox.log.count("GET", path_contains=f"/api.xro/2.0/{resource}")
            for resource in ("Contacts", "Invoices", "Payments", "CreditNotes")
        )

    def stop(self) -> None:
        self.connector.close()
        self.sandbox.stop()
        assert self.sandbox.server.errors == []


def entity_map(snapshot: LedgerSnapshot) -> dict[str, dict[str, Any]]:
    return {
        "customer": snapshot.customers,
        "invoice": snapshot.invoices,
        "payment": snapshot.payments,
        "credit_note": snapshot.credit_notes,
    }


def build_rig(ledger: str, config_dir: Path, *, customers: int, invoices: int, seed: int) -> Rig:
    sandbox = make_sandbox(ledger, TODAY)
    sandbox.seed(company(ledger, seed=seed, customers=customers, invoices=invoices, today=TODAY))
    sandbox.faults.retry_after = 0.01
    sandbox.authority.access_ttl = 10**8  # tests move the sandbox clock by days; expiry is tested on purpose
    sandbox.start()
    account = sandbox.realm_id if ledger == "quickbooks" else sandbox.tenant_id
    name = f"contract-{ledger}"
    store = TokenStore(config_dir / "tokens.enc.json", SecretBox(load_key(config_dir)))
    store.save(name, Tokens.from_response(sandbox.grant(), account_id=account))
    if ledger == "quickbooks":
        endpoints = resolve_endpoints(ledger, discovery_url=sandbox.discovery_url)
    else:
        endpoints = resolve_endpoints(ledger, identity_url=sandbox.identity_url, base_url=sandbox.base_url)
    provider = TokenProvider(
        name,
        store,
        refresher_for(ledger, sandbox.client_id, sandbox.client_secret, endpoints),
        lock_dir=config_dir,
        ledger=ledger,
    )
    common: dict[str, Any] = {
        "name": name,
        "base_url": sandbox.base_url,
        "tokens": provider,
        "clock": sandbox.clock,
        "limiter": limiter_for(ledger, account, per_minute=10**6),
        "retry_base_wait": 0.01,
        "max_attempts": 10,
    }
    if ledger == "quickbooks":
        connector: Any = qbo.QuickBooksConnector(realm_id=account, **common)
    else:
        connector = xero.XeroConnector(tenant_id=account, **common)
    return Rig(ledger, sandbox, connector, provider, store, config_dir)


@pytest.fixture(autouse=True)
def _fresh_limiters() -> Iterator[None]:
    reset_limiters()  # rigs hold their own limiter objects; the registry must not leak between tests
    yield
    reset_limiters()


@pytest.fixture(params=LEDGERS)
def small(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    rig = build_rig(request.param, tmp_path / "config", customers=12, invoices=80, seed=17)
    yield rig
    rig.stop()


@dataclass
class BigPull:
    rig: Rig
    truth: LedgerSnapshot  # the sandbox's truth when the full pull ran
    pulled: LedgerSnapshot
    pages: list[Page]
    mode: PullMode
    cursor: Cursor
    list_calls: int
    all_calls: int


@pytest.fixture(scope="module", params=LEDGERS)
def big(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BigPull]:
    """A 5,000-invoice company per ledger, built and fully pulled once per module."""
    rig = build_rig(
        request.param,
        tmp_path_factory.mktemp(f"big-{request.param}"),
        customers=300,
        invoices=BIG_INVOICES,
        seed=3,
    )
    rig.sandbox.log.reset()
    pulled, stream, pages = rig.pull()
    yield BigPull(
        rig,
        rig.sandbox.truth(),
        pulled,
        pages,
        stream.mode,
        stream.cursor,
        rig.list_calls(),
        rig.sandbox.log.count(),
    )
    rig.stop()


# ---------------------------------------------------------------- helpers


def expected_full(truth: LedgerSnapshot) -> LedgerSnapshot:
    """What a full pull covers: active customers, open invoices, everything dated since HISTORY_FROM."""
    return LedgerSnapshot(
        customers={k: c for k, c in truth.customers.items() if c.active},
        invoices={
            k: i for k, i in truth.invoices.items() if i.balance.amount > 0 or i.issue_date >= HISTORY_FROM
        },
        payments={k: p for k, p in truth.payments.items() if p.date >= HISTORY_FROM},
        credit_notes={k: n for k, n in truth.credit_notes.items() if n.date >= HISTORY_FROM},
    )


def assert_same_records(pulled: LedgerSnapshot, expected: LedgerSnapshot) -> None:
    """Entity by entity, record by record, field by field (readable failures on 5,000 records)."""
    for entity, records in entity_map(expected).items():
        got = entity_map(pulled)[entity]
        missing = sorted(set(records) - set(got))[:5]
        extra = sorted(set(got) - set(records))[:5]
        assert not missing and not extra, f"{entity}: missing {missing}, unexpected {extra}"
        for record_id, want in records.items():
            have = got[record_id]
            differences = [
                f"{field.name}: pulled {getattr(have, field.name)!r}, ledger {getattr(want, field.name)!r}"
                for field in dataclasses.fields(want)
                if getattr(have, field.name) != getattr(want, field.name)
            ]
            assert not differences, f"{entity} {record_id}: " + "; ".join(differences)
    assert pulled == expected


def documented_full_pull_calls(ledger: str, pulled: LedgerSnapshot) -> int:
    """The formula each connector documents for a full pull's list calls."""
    if ledger == "quickbooks":
        old_open = sum(1 for i in pulled.invoices.values() if i.issue_date < HISTORY_FROM)
        rows = [
            len(pulled.customers),
            old_open,
            len(pulled.invoices) - old_open,
            len(pulled.payments),
            len(pulled.credit_notes),
        ]
        return qbo_pull.full_pull_list_calls(rows)
    rows = [len(pulled.customers), len(pulled.invoices), len(pulled.payments), len(pulled.credit_notes)]
    return xero_pull.full_pull_list_calls(rows)


def emailable_open_invoices(truth: LedgerSnapshot) -> list[Invoice]:
    found = [
        i
        for i in truth.invoices.values()
        if i.is_open and i.balance.amount > 10 and truth.customers[i.customer_id].emails
    ]
    return sorted(found, key=lambda i: i.number)


# ---------------------------------------------------------------- the contract


def test_is_a_connector(small: Rig) -> None:
    assert isinstance(small.connector, Connector)
    assert small.connector.ledger == small.ledger


def test_full_pull_of_5000_invoices_equals_the_ledger_truth(big: BigPull) -> None:
    assert big.mode is PullMode.FULL
    assert len(big.truth.invoices) >= BIG_INVOICES * 0.98  # QBO leaves the generator's drafts out
    assert [q for page in big.pages for q in page.quarantined] == []
    assert_same_records(big.pulled, expected_full(big.truth))
    assert len(big.pulled.invoices) == len(big.truth.invoices)
    assert big.pulled.payments and big.pulled.credit_notes
    assert len(big.pulled.customers) < len(big.truth.customers)  # inactive customers really left out
    assert max(len(page.records) for page in big.pages) <= 1000  # streamed in pages, not all at once


def test_full_pull_list_calls_follow_the_documented_formula(big: BigPull) -> None:
    ceilings = sum(max(1, math.ceil(len(records) / 1000)) for records in entity_map(big.pulled).values())
    documented = documented_full_pull_calls(big.rig.ledger, big.pulled)
    assert big.list_calls == documented
    assert big.all_calls == big.list_calls  # nothing else: no token refresh, no look-ups
    constant = {"quickbooks": 5, "xero": 0}[big.rig.ledger]  # QBO: five queries, each ends on a short page
    assert ceilings <= big.list_calls <= ceilings + constant
    assert big.list_calls < 15  # 5,000 invoices in a handful of calls


def test_incremental_pull_returns_exactly_the_changes(big: BigPull) -> None:
    rig = big.rig
    rig.sandbox.clock.advance(1)
    rig.sandbox.log.reset()
    nothing, quiet, pages = rig.pull(big.cursor)
    assert quiet.mode is PullMode.INCREMENTAL
    assert nothing == LedgerSnapshot() and [p for p in pages if p.deleted_ids or p.quarantined] == []
    no_change_calls = rig.sandbox.log.count()
    if rig.ledger == "quickbooks":
        assert rig.sandbox.log.snapshot() == {"GET /v3/company/{id}/cdc": 1}  # one CDC call
    else:
        assert no_change_calls <= 3

    rig.sandbox.clock.advance(1)
    truth_before = rig.sandbox.truth()
    ids = sorted(truth_before.invoices)
    modified = ids[::100]  # ~1% of the invoices
    paid = next(i for i in emailable_open_invoices(truth_before) if i.id not in modified)
    rig.sandbox.modify_invoices(modified)
    payment_id = rig.sandbox.add_payment(paid.id, Decimal("1.00"), rig.sandbox.clock.today())
    # time passes before the next pull: changes made within a cursor's overlap (seconds before a
    # pull) are delivered twice by design, which would blur the last no-change check below
    rig.sandbox.clock.advance(1)
    changes, stream, pages = rig.pull(quiet.cursor)
    truth = rig.sandbox.truth()
    assert stream.mode is PullMode.INCREMENTAL
    assert set(changes.invoices) == {*modified, paid.id}
    assert changes.payments == {payment_id: truth.payments[payment_id]}
    assert changes.customers == {} and changes.credit_notes == {}
    for invoice_id, invoice in changes.invoices.items():
        assert invoice == truth.invoices[invoice_id]
    assert changes.invoices[paid.id].balance.amount == paid.balance.amount - Decimal("1.00")
    assert all(changes.invoices[i].due_date > truth_before.invoices[i].due_date for i in modified)
    assert [p for p in pages if p.deleted_ids or p.quarantined] == []

    rig.sandbox.log.reset()
    again, _, _ = rig.pull(stream.cursor)
    assert again == LedgerSnapshot()
    assert rig.sandbox.log.count() == no_change_calls


def _write_requests(rig: Rig) -> tuple[list[WriteRequest], LedgerEmail]:
    truth = rig.sandbox.truth()
    first, second, third = emailable_open_invoices(truth)[:3]
    requests: list[WriteRequest] = [Note("c-note", first.id, "relance: reminder step before-due sent")]
    if rig.capabilities.fee_line_on_invoice:
        requests.append(FeeLine("c-fee-line", first.id, "Late payment fee", Decimal("40.00"), first.currency))
    if rig.capabilities.fee_invoice:
        requests.append(
            FeeInvoice(
                "c-fee-invoice",
                second.customer_id,
                second.currency,
                (("Late payment fee", Decimal("40.00")), ("Interest", Decimal("3.17"))),
                second.number,
                TODAY + timedelta(days=15),
                TODAY,
            )
        )
    requests.append(
        CreditNoteRequest(
            "c-credit",
            second.customer_id,
            second.id,
            second.currency,
            Decimal("2.50"),
            "Early-payment discount",
            TODAY,
        )
    )
    # the engine records the ledger's pre-send delivery time with the send (verify compares with it)
    return requests, LedgerEmail("c-email", third.id, previous_delivery=third.last_emailed_at)


def _before_verdicts(rig: Rig, request: WriteRequest) -> set[Verification]:
    """Idempotent ledger emails may answer UNKNOWN (Xero's History does not say which request
    sent an email): the engine then repeats them under the same key. Everything else must know."""
    if isinstance(request, LedgerEmail) and rig.capabilities.ledger_email_idempotent:
        return {Verification.NOT_HAPPENED, Verification.UNKNOWN}
    return {Verification.NOT_HAPPENED}


def _after_verdicts(rig: Rig, request: WriteRequest) -> set[Verification]:
    if isinstance(request, LedgerEmail) and rig.capabilities.ledger_email_idempotent:
        return {Verification.HAPPENED, Verification.UNKNOWN}
    return {Verification.HAPPENED}


def test_each_write_sent_twice_with_the_same_key_has_one_effect(small: Rig) -> None:
    rig = small
    requests, email = _write_requests(rig)
    since = rig.sandbox.clock.now() - timedelta(seconds=1)
    if rig.capabilities.ledger_email_idempotent:
        requests.append(email)
    for request in requests:
        assert rig.connector.verify(request, since=since) in _before_verdicts(rig, request)
    before = rig.sandbox.truth()
    first = rig.connector.write(requests)
    assert [r.status for r in first] == [WriteStatus.DONE] * len(requests), first
    second = rig.connector.write(requests)
    assert [r.status for r in second] == [WriteStatus.DONE] * len(requests), second
    assert [r.ledger_id for r in second] == [r.ledger_id for r in first]

    effects = rig.sandbox.effects()
    assert sorted(e.kind for e in effects) == sorted(EFFECT_KIND[type(r)] for r in requests)
    for request, result in zip(requests, first, strict=True):
        [effect] = [e for e in effects if e.kind == EFFECT_KIND[type(request)]]
        target = result.ledger_id if isinstance(request, FeeInvoice) else request.invoice_id
        assert effect.invoice_id.lower() == str(target).lower(), (request, effect)
        assert rig.connector.verify(request, since=since) in _after_verdicts(rig, request)

    after = rig.sandbox.truth()
    for request in requests:
        if isinstance(request, CreditNoteRequest):
            was = before.invoices[request.invoice_id].balance.amount
            assert after.invoices[request.invoice_id].balance.amount == was - request.amount
        if isinstance(request, FeeLine):
            was = before.invoices[request.invoice_id].balance.amount
            assert after.invoices[request.invoice_id].balance.amount == was + request.amount
    for request, result in zip(requests, first, strict=True):
        if isinstance(request, FeeInvoice):
            fee = after.invoices[result.ledger_id or ""]
            assert fee.total.amount == Decimal("43.17") and all(line.is_relance_fee for line in fee.lines)
            assert fee.customer_id == request.customer_id
    assert len(after.invoices) == len(before.invoices) + sum(isinstance(r, FeeInvoice) for r in requests)
    assert len(after.credit_notes) == len(before.credit_notes) + 1


def test_ledger_email_goes_out_once(small: Rig) -> None:
    """Idempotent ledgers replay the key; QBO's send has no idempotency, so the engine verifies
    before any resend: verify() must say HAPPENED right after the first send."""
    rig = small
    _, email = _write_requests(rig)
    since = rig.sandbox.clock.now() - timedelta(seconds=1)
    assert rig.connector.verify(email, since=since) in _before_verdicts(rig, email)
    [result] = rig.connector.write([email])
    assert result.status is WriteStatus.DONE
    assert rig.connector.verify(email, since=since) in _after_verdicts(rig, email)
    if rig.capabilities.ledger_email_idempotent:
        [again] = rig.connector.write([email])
        assert again.status is WriteStatus.DONE
    emails = [e for e in rig.sandbox.effects() if e.kind == "email"]
    assert [e.invoice_id.lower() for e in emails] == [email.invoice_id.lower()]
    # the neutral model keeps each ledger's own wording (QBO EmailStatus, Xero SentToContact)
    assert rig.sandbox.truth().invoices[email.invoice_id].email_status in ("EmailSent", "sent")


def test_thirty_percent_of_calls_failing_gives_the_identical_pull(big: BigPull) -> None:
    rig = big.rig
    clean, _, _ = rig.pull()  # the ledger as it is now (other tests may have changed it)
    faults = rig.sandbox.faults
    faults.rng = random.Random(2026)  # a fixed fault pattern: this test cannot pass by luck
    faults.rate_429, faults.rate_5xx, faults.retry_after = 0.15, 0.15, 0.01
    rig.sandbox.log.reset()
    try:
        flaky, _, pages = rig.pull()
    finally:
        faults.reset()
    assert flaky == clean
    assert_same_records(flaky, expected_full(rig.sandbox.truth()))
    assert [q for page in pages for q in page.quarantined] == []
    failed = rig.sandbox.log.count(status=429) + rig.sandbox.log.count(status=503)
    assert rig.sandbox.log.count(status=429) > 0 and rig.sandbox.log.count(status=503) > 0
    assert failed >= 0.15 * rig.sandbox.log.count()  # about 30% of the calls really failed


def test_expired_token_is_refreshed_and_persisted_encrypted(small: Rig) -> None:
    rig = small
    old = rig.provider.current()
    rig.sandbox.faults.expire_tokens = True
    pulled, _, _ = rig.pull()
    assert_same_records(pulled, expected_full(rig.sandbox.truth()))
    assert rig.provider.refreshes == 1 and rig.sandbox.authority.refresh_count == 1
    assert rig.sandbox.log.count(status=401) == 1
    new = rig.store.get(rig.provider.connection)
    assert new is not None
    assert new.access_token != old.access_token and new.refresh_token != old.refresh_token
    assert new.account_id == old.account_id
    assert rig.sandbox.authority.check_bearer(f"Bearer {new.access_token}")  # the live token is stored
    raw = rig.store.path.read_text(encoding="utf-8")
    for secret in (new.access_token, new.refresh_token, old.access_token, old.refresh_token):
        assert secret not in raw
    cipher = json.loads(raw)["connections"][rig.provider.connection]["tokens"]
    decrypted = json.loads(SecretBox(load_key(rig.config_dir)).decrypt(cipher))
    assert (decrypted["access_token"], decrypted["refresh_token"]) == (new.access_token, new.refresh_token)
