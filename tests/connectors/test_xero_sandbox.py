"""The Xero sandbox over plain HTTP: tenant header, paging, filters, idempotency, errors, limits,
OAuth, persistence."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from connectors.sandbox.server import SandboxControl
from connectors.sandbox.xero import XeroSandbox, compile_where

TODAY = date(2026, 3, 2)


@pytest.fixture()
def sandbox() -> Iterator[XeroSandbox]:
    box = XeroSandbox(
        seed=17, customers=12, invoices=250, today=TODAY, tenant_id=str(uuid.uuid4()), minute_limit=100_000
    )
    box.authority.access_ttl = 30 * 86400  # tests travel in time
    box.start()
    yield box
    box.stop()


@pytest.fixture()
def http(sandbox: XeroSandbox) -> requests.Session:
    session = requests.Session()
    session.headers.update(
        {
            "Authorization": f"Bearer {sandbox.grant()['access_token']}",
            "Xero-tenant-id": sandbox.tenant_id,
        }
    )
    return session


def test_implements_the_control_protocol(sandbox: XeroSandbox) -> None:
    assert isinstance(sandbox, SandboxControl)
    assert sandbox.base_url.endswith("/api.xro/2.0") and sandbox.identity_url == sandbox.root_url


def test_tenant_header_is_required(sandbox: XeroSandbox, http: requests.Session) -> None:
    url = sandbox.base_url + "/Invoices"
    assert http.get(url, headers={"Xero-tenant-id": str(uuid.uuid4())}, timeout=10).status_code == 403
    del http.headers["Xero-tenant-id"]
    answer = http.get(url, timeout=10)
    assert answer.status_code == 403 and answer.json()["Title"] == "Forbidden"
    assert requests.get(url, headers={"Xero-tenant-id": sandbox.tenant_id}, timeout=10).status_code == 401


def test_paging_and_rate_headers(sandbox: XeroSandbox, http: requests.Session) -> None:
    seen: list[str] = []
    for page in (1, 2, 3):
        answer = http.get(sandbox.base_url + "/Invoices", params={"page": page, "pageSize": 100}, timeout=10)
        body = answer.json()
        assert body["pagination"] == {"page": page, "pageSize": 100, "pageCount": 3, "itemCount": 250}
        seen += [i["InvoiceID"] for i in body["Invoices"]]
        assert int(answer.headers["X-MinLimit-Remaining"]) > 0
        assert int(answer.headers["X-DayLimit-Remaining"]) == 5000 - page
        assert "X-AppMinLimit-Remaining" in answer.headers
    assert len(seen) == len(set(seen)) == 250
    capped = http.get(sandbox.base_url + "/Invoices", params={"page": 1, "pageSize": 5000}, timeout=10)
    assert capped.json()["pagination"]["pageSize"] == 1000


def test_filters_where_statuses_ids_and_if_modified_since(
    sandbox: XeroSandbox, http: requests.Session
) -> None:
    url = sandbox.base_url + "/Invoices"
    truth = sandbox.truth().invoices
    open_ids = {i.id for i in truth.values() if i.status.value == "open"}
    by_status = http.get(url, params={"Statuses": "AUTHORISED"}, timeout=10).json()["Invoices"]
    assert {i["InvoiceID"] for i in by_status} == open_ids
    by_where = http.get(url, params={"where": 'Type=="ACCREC" && Status=="AUTHORISED"'}, timeout=10).json()
    assert {i["InvoiceID"] for i in by_where["Invoices"]} == open_ids
    dated = http.get(url, params={"where": "Date>=DateTime(2026,01,01)"}, timeout=10).json()["Invoices"]
    assert {i["InvoiceID"] for i in dated} == {
        i.id for i in truth.values() if i.issue_date >= date(2026, 1, 1)
    }
    some = sorted(truth)[:3]
    by_ids = http.get(url, params={"IDs": ",".join(some)}, timeout=10).json()["Invoices"]
    assert {i["InvoiceID"] for i in by_ids} == set(some)
    sandbox.clock.advance(1)
    since = sandbox.clock.now().replace(tzinfo=None, microsecond=0).isoformat()
    sandbox.clock.advance(1)
    sandbox.modify_invoices(some[:2])
    changed = http.get(url, headers={"If-Modified-Since": since}, timeout=10).json()["Invoices"]
    assert {i["InvoiceID"] for i in changed} == set(some[:2])
    assert http.get(url, params={"where": "Nope==1"}, timeout=10).status_code == 400


def test_where_parser_subset() -> None:
    fields = {"Type": "ACCREC", "Status": "PAID", "Date": date(2025, 5, 1), "Contact.ContactID": "ABC"}
    check = compile_where('Type=="ACCREC" AND (Status=="AUTHORISED" OR Date>=DateTime(2025,01,01))')
    assert check(fields.__getitem__)
    assert not compile_where('Status!="PAID"')(fields.__getitem__)
    assert compile_where('Contact.ContactID==Guid("abc")')(fields.__getitem__)


def test_idempotency_key_replays_without_a_second_effect(
    sandbox: XeroSandbox, http: requests.Session
) -> None:
    contact_id = next(iter(sandbox.contacts))
    body: dict[str, Any] = {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Contact": {"ContactID": contact_id},
                "Status": "AUTHORISED",
                "DueDate": "2026-03-30",
                "LineItems": [{"Description": "Fee", "LineAmount": 40}],
            }
        ]
    }
    first = http.put(sandbox.base_url + "/Invoices", json=body, headers={"Idempotency-Key": "k1"}, timeout=10)
    again = http.put(sandbox.base_url + "/Invoices", json=body, headers={"Idempotency-Key": "k1"}, timeout=10)
    other = http.put(sandbox.base_url + "/Invoices", json=body, headers={"Idempotency-Key": "k2"}, timeout=10)
    assert first.status_code == again.status_code == other.status_code == 200
    assert first.json()["Invoices"][0]["InvoiceID"] == again.json()["Invoices"][0]["InvoiceID"]
    assert other.json()["Invoices"][0]["InvoiceID"] != first.json()["Invoices"][0]["InvoiceID"]
    assert [e.idempotency_key for e in sandbox.effects()] == ["k1", "k2"]
    invoice_id = first.json()["Invoices"][0]["InvoiceID"]
    for _ in range(2):
        sent = http.post(
            sandbox.base_url + f"/Invoices/{invoice_id}/Email",
            json={},
            headers={"Idempotency-Key": "mail-1"},
            timeout=10,
        )
        assert sent.status_code == 204
    assert [e.kind for e in sandbox.effects()].count("email") == 1


def test_errors_like_xero(sandbox: XeroSandbox, http: requests.Session) -> None:
    missing = http.get(sandbox.base_url + f"/Invoices/{uuid.uuid4()}", timeout=10)
    assert missing.status_code == 404
    draft = next((i for i in sandbox.invoices.values() if i.status == "DRAFT"), None)
    if draft is not None:
        refused = http.post(sandbox.base_url + f"/Invoices/{draft.id}/Email", json={}, timeout=10)
        assert refused.status_code == 400 and refused.json()["Type"] == "ValidationException"
    paid = next(i for i in sandbox.invoices.values() if i.status == "PAID")
    overpay = http.put(
        sandbox.base_url + "/Payments",
        timeout=10,
        json={"Payments": [{"Invoice": {"InvoiceID": paid.id}, "Amount": 1, "Date": "2026-03-02"}]},
    )
    assert overpay.status_code == 400


def test_rate_limits_and_faults(http: requests.Session) -> None:
    box = XeroSandbox(seed=1, customers=2, invoices=3, today=TODAY, minute_limit=2)
    box.start()
    try:
        session = requests.Session()
        session.headers.update(
            {"Authorization": f"Bearer {box.grant()['access_token']}", "Xero-tenant-id": box.tenant_id}
        )
        url = box.base_url + "/Contacts"
        assert [session.get(url, timeout=10).status_code for _ in range(3)] == [200, 200, 429]
        limited = session.get(url, timeout=10)
        assert (
            limited.headers["X-Rate-Limit-Problem"] == "minute" and int(limited.headers["Retry-After"]) >= 1
        )
        box.minute_limit = 100
        box.faults.day_limit_remaining = 0
        day = session.get(url, timeout=10)
        assert day.status_code == 429 and day.headers["X-Rate-Limit-Problem"] == "day"
        assert int(day.headers["Retry-After"]) > 0 and day.headers["X-DayLimit-Remaining"] == "0"
    finally:
        box.stop()


def test_oauth_refresh_rotates_and_connections_lists_the_tenant(sandbox: XeroSandbox) -> None:
    tokens = sandbox.grant()
    token_url = sandbox.identity_url + "/connect/token"
    auth = (sandbox.client_id, sandbox.client_secret)
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    fresh = requests.post(token_url, data=form, auth=auth, timeout=10)
    assert fresh.status_code == 200 and fresh.json()["refresh_token"] != tokens["refresh_token"]
    assert requests.post(token_url, data=form, auth=auth, timeout=10).json()["error"] == "invalid_grant"
    listed = requests.get(
        sandbox.root_url + "/connections",
        headers={"Authorization": f"Bearer {fresh.json()['access_token']}"},
        timeout=10,
    )
    assert listed.json()[0]["tenantId"] == sandbox.tenant_id


def test_state_persists_to_a_file(sandbox: XeroSandbox, tmp_path: Path) -> None:
    invoice_id = next(i.id for i in sandbox.invoices.values() if i.status == "AUTHORISED")
    sandbox.add_payment(invoice_id, Decimal("1.00"), TODAY)
    state = tmp_path / "xero.json"
    sandbox.save(state)
    copy = XeroSandbox(state_file=state, tenant_id=sandbox.tenant_id)
    assert copy.truth() == sandbox.truth()
    assert copy.effects() == sandbox.effects()


def test_add_payment_settles_and_marks_paid(sandbox: XeroSandbox) -> None:
    invoice = next(i for i in sandbox.truth().invoices.values() if i.is_open)
    sandbox.add_payment(invoice.id, invoice.balance.amount, TODAY)
    after = sandbox.truth().invoices[invoice.id]
    assert after.status.value == "paid" and after.balance.amount == 0


def test_seeded_records_are_never_updated_in_the_future() -> None:
    """Regression: the generator stamps records at office hours on their day, which may be later
    than the sandbox clock; those records then showed up as "changed" in every incremental pull
    (found by test_connector_contract.py). Seeding a company generated for tomorrow makes
    every such stamp a future one, whatever the time of day the test runs."""
    from datetime import timedelta

    from connectors.sandbox.generator import generate_company

    box = XeroSandbox(today=TODAY, tenant_id=str(uuid.uuid4()))
    tomorrow = TODAY + timedelta(days=1)
    box.seed(
        generate_company(
            seed=3, customers=10, invoices=120, today=tomorrow, country="GB", currency="GBP", language="en"
        )
    )
    now = box.clock.now()
    stamps = [
        record.updated
        for records in (box.contacts, box.invoices, box.payments, box.credit_notes)
        for record in records.values()
    ]
    assert stamps and max(stamps) <= now
