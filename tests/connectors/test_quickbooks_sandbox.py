"""The QuickBooks Online sandbox over real HTTP: query subset, writes, requestid, CDC, batch, faults,
OAuth (through intuitlib), persistence."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connectors.quickbooks.errors import parse_fault
from connectors.sandbox.generator import generate_company
from connectors.sandbox.quickbooks import QuickBooksSandbox
from connectors.sandbox.server import SandboxControl, json_dumps
from policies.model.ledger import InvoiceStatus

TODAY = date(2026, 3, 2)


@pytest.fixture()
def sandbox() -> Iterator[QuickBooksSandbox]:
    box = QuickBooksSandbox(seed=5, customers=30, invoices=250, today=TODAY)
    box.faults.retry_after = 0
    box.start()
    yield box
    box.stop()
    assert box.server.errors == []


class Api:
    def __init__(self, box: QuickBooksSandbox) -> None:
        self.box = box
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + box.grant()["access_token"]
        self.session.headers["Accept"] = "application/json"

    def url(self, path: str) -> str:
        return f"{self.box.base_url}/company/{self.box.realm_id}/{path}"

    def query(self, text: str, status: int = 200) -> dict[str, Any]:
        response = self.session.get(self.url("query"), params={"query": text, "minorversion": "75"})
        assert response.status_code == status, response.text
        return response.json()

    def post(self, path: str, body: Any, status: int = 200, **params: str) -> dict[str, Any]:
        response = self.session.post(
            self.url(path), data=json_dumps(body), params=params, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture()
def api(sandbox: QuickBooksSandbox) -> Api:
    return Api(sandbox)


def test_implements_control_protocol(sandbox: QuickBooksSandbox) -> None:
    assert isinstance(sandbox, SandboxControl)
    assert sandbox.base_url.endswith("/v3") and sandbox.base_url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize("time_of_day", ["00:10", "07:30", "12:00", "18:59", "23:59"])
def test_generator_never_stamps_records_in_the_future(time_of_day: str) -> None:
    """Records of today were stamped at office hours, possibly later than now: a no-change
    incremental pull right after seeding then saw them as changed. Whatever the time of day, every
    stamp is at least STAMP_MARGIN (wider than the connectors' cursor overlaps) before now."""
    from datetime import UTC, datetime, time

    from connectors.sandbox.generator import STAMP_MARGIN

    hour, minute = map(int, time_of_day.split(":"))
    now = datetime.combine(TODAY, time(hour, minute), UTC)
    kwargs: dict[str, Any] = dict(
        seed=4, customers=50, invoices=3000, today=TODAY, country="FR", currency="EUR", language="fr"
    )
    company = generate_company(**kwargs, now=now)
    every_stamp = [
        *(c.updated_at for c in company.customers),
        *(i.updated_at for i in company.invoices),
        *(i.last_emailed_at for i in company.invoices),
        *(p.updated_at for p in company.payments),
        *(n.updated_at for n in company.credit_notes),
    ]
    stamps = [s for s in every_stamp if s is not None]
    assert max(stamps) <= now - STAMP_MARGIN
    assert any(s.date() == TODAY for s in stamps) or hour < 2  # today's records exist, clamped
    assert generate_company(**kwargs, now=now + timedelta(seconds=59)).invoices == company.invoices


def test_seed_matches_generator_except_what_qbo_cannot_hold() -> None:
    company = generate_company(
        seed=9,
        customers=40,
        invoices=400,
        today=TODAY,
        country="FR",
        currency="EUR",
        other_currencies=("USD",),
        language="fr",
    )
    box = QuickBooksSandbox(today=TODAY)
    box.seed(company)
    truth = box.truth()
    assert {c.id: c.name for c in company.customers} == {c.id: c.name for c in truth.customers.values()}
    for customer in company.customers:
        got_customer = truth.customers[customer.id]
        assert (
            got_customer.emails,
            got_customer.kind,
            got_customer.tags,
            got_customer.language,
            got_customer.country,
            got_customer.currency,
            got_customer.active,
        ) == (
            customer.emails,
            customer.kind,
            customer.tags,
            customer.language,
            customer.country,
            customer.currency,
            customer.active,
        )
    drafts = {i.id for i in company.invoices if i.status is InvoiceStatus.DRAFT}
    assert set(truth.invoices) == {i.id for i in company.invoices} - drafts  # QBO has no drafts
    for invoice in company.invoices:
        if invoice.id in drafts:
            continue
        got = truth.invoices[invoice.id]
        assert got.status == invoice.status
        assert (got.due_date, got.customer_id, got.number, got.email_status) == (
            invoice.due_date,
            invoice.customer_id,
            invoice.number,
            invoice.email_status,
        )
        if invoice.status is not InvoiceStatus.VOID:  # QBO zeroes voided amounts
            assert (got.total, got.balance, got.lines) == (invoice.total, invoice.balance, invoice.lines)
    assert {p.id: p.allocations for p in company.payments} == {
        p.id: p.allocations for p in truth.payments.values()
    }
    assert {n.id: n.allocations for n in company.credit_notes} == {
        n.id: n.allocations for n in truth.credit_notes.values()
    }


def test_query_subset(api: Api, sandbox: QuickBooksSandbox) -> None:
    truth = sandbox.truth()
    open_ids = sorted((i.id for i in truth.invoices.values() if i.balance.amount > 0), key=int)
    body = api.query("SELECT * FROM Invoice WHERE Balance > '0' ORDERBY Id STARTPOSITION 1 MAXRESULTS 1000")
    assert [r["Id"] for r in body["QueryResponse"]["Invoice"]] == open_ids
    assert body["QueryResponse"]["startPosition"] == 1 and "time" in body
    page2 = api.query("select * from Invoice where Balance > '0' orderby Id startposition 11 maxresults 10")
    assert [r["Id"] for r in page2["QueryResponse"]["Invoice"]] == open_ids[10:20]
    count = api.query("SELECT COUNT(*) FROM Invoice WHERE Balance > '0'")
    assert count["QueryResponse"] == {"totalCount": len(open_ids)}
    picked = api.query(f"SELECT * FROM Invoice WHERE Id IN ('{open_ids[0]}', '{open_ids[3]}')")
    assert [r["Id"] for r in picked["QueryResponse"]["Invoice"]] == [open_ids[0], open_ids[3]]
    by_date = api.query(
        "SELECT * FROM Invoice WHERE TxnDate >= '2026-01-01' AND DueDate < '2026-03-15' "
        "ORDERBY TxnDate DESC MAXRESULTS 1000"
    )["QueryResponse"].get("Invoice", [])
    expected = [
        i
        for i in truth.invoices.values()
        if i.issue_date >= date(2026, 1, 1) and i.due_date < date(2026, 3, 15)
    ]
    assert len(by_date) == len(expected)
    assert [r["TxnDate"] for r in by_date] == sorted((r["TxnDate"] for r in by_date), reverse=True)
    assert api.query("SELECT * FROM Invoice MAXRESULTS 5000")["QueryResponse"]["maxResults"] <= 1000
    assert len(api.query("SELECT * FROM Invoice")["QueryResponse"]["Invoice"]) == 100  # QBO's default
    stamp = "2026-03-01T00:00:00+00:00"
    recent = api.query(f"SELECT * FROM Customer WHERE MetaData.LastUpdatedTime > '{stamp}'")["QueryResponse"]
    assert recent == {}  # seeded records are older than an hour before now
    inactive = api.query("SELECT * FROM Customer WHERE Active = false MAXRESULTS 1000")["QueryResponse"]
    assert len(inactive.get("Customer", [])) == sum(1 for c in truth.customers.values() if not c.active)


def test_paged_query_reuses_its_rows_until_the_state_changes(api: Api, sandbox: QuickBooksSandbox) -> None:
    """Pages of one query share one filtered, sorted row list (linear paging); any write makes the
    next page see the new state, and cached answers equal freshly computed ones."""
    base = "SELECT * FROM Invoice WHERE Balance > '0' ORDERBY MetaData.LastUpdatedTime"

    def page(start: int) -> list[str]:
        rows = api.query(f"{base} STARTPOSITION {start} MAXRESULTS 10")["QueryResponse"].get("Invoice", [])
        return [json_dumps(r) for r in rows]

    first, second = page(1), page(11)
    assert len(sandbox._query_cache) == 1  # the paging clauses are not part of the query's shape
    cached = page(11)
    sandbox._query_cache.clear()
    assert cached == second == page(11)
    # the oldest open invoice: edited now, it moves to the end of the order
    invoice_id = api.query(f"{base} STARTPOSITION 1 MAXRESULTS 1")["QueryResponse"]["Invoice"][0]["Id"]
    sandbox.modify_invoices([invoice_id])
    assert page(1)[0] != first[0]
    total = api.query("SELECT COUNT(*) FROM Invoice WHERE Balance > '0'")["QueryResponse"]["totalCount"]
    last = api.query(f"{base} STARTPOSITION {total} MAXRESULTS 10")["QueryResponse"]["Invoice"]
    assert [r["Id"] for r in last] == [invoice_id]


def test_query_errors_are_faults(api: Api) -> None:
    bad = api.query("SELECT * FROM Custmoer", status=400)
    assert bad["Fault"]["Error"][0]["code"] == "4001" and bad["Fault"]["type"] == "ValidationFault"
    assert (
        api.query("SELECT * FROM Invoice WHERE Id = '1' OR Id = '2'", status=400)["Fault"]["Error"][0]["code"]
        == "4000"
    )


def _open_invoice(sandbox: QuickBooksSandbox) -> dict[str, Any]:
    invoice_id = min((i.id for i in sandbox.truth().invoices.values() if i.is_open), key=int)
    return sandbox.record("Invoice", invoice_id)


def test_sparse_update_checks_sync_token(api: Api, sandbox: QuickBooksSandbox) -> None:
    invoice = _open_invoice(sandbox)
    lines = [line for line in invoice["Line"] if line["DetailType"] != "SubTotalLineDetail"]
    fee = {
        "Amount": 12.5,
        "DetailType": "SalesItemLineDetail",
        "Description": "[relance fee] Late fee",
        "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
    }
    stale = {
        "Id": invoice["Id"],
        "SyncToken": str(int(invoice["SyncToken"]) + 5),
        "sparse": True,
        "Line": [*lines, fee],
    }
    answer = api.post("invoice", stale, status=400)
    assert answer["Fault"]["Error"][0]["code"] == "5010"
    fresh = dict(stale, SyncToken=invoice["SyncToken"])
    updated = api.post("invoice", fresh, requestid="req-1")["Invoice"]
    assert updated["SyncToken"] == str(int(invoice["SyncToken"]) + 1)
    assert Decimal(str(updated["TotalAmt"])) == Decimal(str(invoice["TotalAmt"])) + Decimal("12.5")
    assert Decimal(str(updated["Balance"])) == Decimal(str(invoice["Balance"])) + Decimal("12.5")
    again = api.post("invoice", fresh, requestid="req-1")["Invoice"]  # replay: same answer, no effect
    assert again["SyncToken"] == updated["SyncToken"]
    assert [(e.kind, e.idempotency_key) for e in sandbox.effects()] == [("fee_line", "req-1")]


def test_create_with_requestid_is_idempotent(api: Api, sandbox: QuickBooksSandbox) -> None:
    body = {
        "CustomerRef": {"value": "1"},
        "Line": [
            {
                "Amount": 30,
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {"ItemRef": {"value": "1"}},
            }
        ],
    }
    first = api.post("invoice", body, requestid="abc")["Invoice"]
    second = api.post("invoice", body, requestid="abc")["Invoice"]
    third = api.post("invoice", body, requestid="def")["Invoice"]
    assert first["Id"] == second["Id"] != third["Id"]
    assert [e.kind for e in sandbox.effects()] == ["fee_invoice", "fee_invoice"]
    missing = api.post("invoice", {"CustomerRef": {"value": "999"}, "Line": body["Line"]}, status=400)
    assert missing["Fault"]["Error"][0]["code"] == "2500"


def test_items_and_income_accounts(api: Api, sandbox: QuickBooksSandbox) -> None:
    [account] = api.query("SELECT * FROM Account WHERE AccountType = 'Income' MAXRESULTS 1")["QueryResponse"][
        "Account"
    ]
    assert api.query("SELECT * FROM Item WHERE Name = 'Late fee'")["QueryResponse"] == {}
    body = {"Name": "Late fee", "Type": "Service", "IncomeAccountRef": {"value": account["Id"]}}
    created = api.post("item", body, requestid="item-1")["Item"]
    assert api.post("item", body, requestid="item-1")["Item"]["Id"] == created["Id"]  # replayed
    assert created["IncomeAccountRef"] == {"value": account["Id"], "name": account["Name"]}
    found = api.query("SELECT * FROM Item WHERE Name = 'Late fee'")["QueryResponse"]["Item"]
    assert [i["Id"] for i in found] == [created["Id"]]
    duplicate = api.post("item", body, status=400)
    assert duplicate["Fault"]["Error"][0]["code"] == "6240"
    no_account = api.post("item", {"Name": "Other", "Type": "Service"}, status=400)
    assert "income account" in no_account["Fault"]["Error"][0]["Detail"]
    bad_account = api.post(
        "item", {**body, "Name": "Other", "IncomeAccountRef": {"value": "999"}}, status=400
    )
    assert bad_account["Fault"]["Error"][0]["code"] == "2500"
    assert sandbox.effects() == []  # an item is set-up, not an effect on a customer


def test_sales_lines_need_an_existing_item(api: Api, sandbox: QuickBooksSandbox) -> None:
    def line(detail: dict[str, Any]) -> dict[str, Any]:
        return {"Amount": 5, "DetailType": "SalesItemLineDetail", "SalesItemLineDetail": detail}

    for entity in ("invoice", "creditmemo"):
        without = api.post(entity, {"CustomerRef": {"value": "1"}, "Line": [line({})]}, status=400)
        assert without["Fault"]["type"] == "ValidationFault"
        assert without["Fault"]["Error"][0]["element"] == "Line.SalesItemLineDetail.ItemRef"
        unknown = api.post(
            entity, {"CustomerRef": {"value": "1"}, "Line": [line({"ItemRef": {"value": "77"}})]}, status=400
        )
        assert (
            unknown["Fault"]["Error"][0]["code"] == "2500"
            and "Item 77" in unknown["Fault"]["Error"][0]["Detail"]
        )
    invoice = _open_invoice(sandbox)
    update = {
        "Id": invoice["Id"],
        "SyncToken": invoice["SyncToken"],
        "sparse": True,
        "Line": [*[x for x in invoice["Line"] if x["DetailType"] != "SubTotalLineDetail"], line({})],
    }
    refused = api.post("invoice", update, status=400)
    assert refused["Fault"]["Error"][0]["code"] == "2020"
    assert sandbox.record("Invoice", invoice["Id"])["SyncToken"] == invoice["SyncToken"]  # unchanged
    assert sandbox.effects() == []


def test_send_sets_delivery_and_sends_every_time(api: Api, sandbox: QuickBooksSandbox) -> None:
    invoice = _open_invoice(sandbox)
    for _ in range(2):
        response = api.session.post(
            api.url(f"invoice/{invoice['Id']}/send"), params={"sendTo": "x@y.example", "requestid": "same"}
        )
        assert response.status_code == 200
    sent = response.json()["Invoice"]
    assert sent["EmailStatus"] == "EmailSent"
    assert sent["DeliveryInfo"]["DeliveryType"] == "Email" and sent["DeliveryInfo"]["DeliveryTime"]
    assert sent["BillEmail"] == {"Address": "x@y.example"}
    assert [e.kind for e in sandbox.effects()] == ["email", "email"]


def test_batch_items_are_independent(api: Api, sandbox: QuickBooksSandbox) -> None:
    invoice = _open_invoice(sandbox)
    items = [
        {
            "bId": "a",
            "operation": "create",
            "Attachable": {
                "Note": "hello",
                "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice["Id"]}}],
            },
        },
        {
            "bId": "b",
            "operation": "update",
            "Invoice": {"Id": invoice["Id"], "SyncToken": "99", "sparse": True},
        },
        {"bId": "c", "Query": f"SELECT * FROM Invoice WHERE Id = '{invoice['Id']}'"},
    ]
    answer = api.post("batch", {"BatchItemRequest": items})["BatchItemResponse"]
    assert answer[0]["bId"] == "a" and answer[0]["Attachable"]["Note"] == "hello"
    assert answer[1]["Fault"]["Error"][0]["code"] == "5010"
    assert answer[2]["QueryResponse"]["Invoice"][0]["Id"] == invoice["Id"]
    assert [(e.kind, e.invoice_id) for e in sandbox.effects()] == [("note", invoice["Id"])]
    too_many = api.post("batch", {"BatchItemRequest": [items[2]] * 31}, status=400)
    assert too_many["Fault"]["Error"][0]["Detail"] == "Batch request can have at most 30 items"


def test_cdc_window_changes_and_deletes(api: Api, sandbox: QuickBooksSandbox) -> None:
    since = (sandbox.clock.now() - timedelta(minutes=5)).replace(microsecond=0).isoformat()
    invoice = _open_invoice(sandbox)
    sandbox.modify_invoices([invoice["Id"]])
    deletable = next(i for i, r in sandbox.entities["Invoice"].items() if not r.get("LinkedTxn"))
    sandbox.delete_invoice(deletable)
    response = api.session.get(api.url("cdc"), params={"entities": "Invoice,Customer", "changedSince": since})
    body = response.json()
    blocks = body["CDCResponse"][0]["QueryResponse"]
    invoices = blocks[0]["Invoice"]
    assert {r["Id"] for r in invoices} == {invoice["Id"], deletable}
    assert next(r for r in invoices if r["Id"] == deletable)["status"] == "Deleted"
    assert blocks[1] == {}
    old = (sandbox.clock.now() - timedelta(days=31)).isoformat()
    refused = api.session.get(api.url("cdc"), params={"entities": "Invoice", "changedSince": old})
    assert refused.status_code == 400 and "30 days" in refused.text


def test_fault_bodies(api: Api, sandbox: QuickBooksSandbox) -> None:
    sandbox.faults.rate_429 = 1.0
    throttled = api.session.get(api.url("query"), params={"query": "SELECT * FROM Invoice"})
    assert throttled.status_code == 429 and throttled.json()["Fault"]["Error"][0]["code"] == "3001"
    assert throttled.headers["Retry-After"] == "0"
    sandbox.faults.qbo_xml_throttle = True
    xml = api.session.get(api.url("query"), params={"query": "SELECT * FROM Invoice"})
    assert xml.status_code == 429 and xml.text.startswith("<?xml")
    fault = parse_fault(xml.text)
    assert fault is not None and fault.codes == {"3001"}
    sandbox.faults.reset()
    unauthorized = requests.get(api.url("invoice/1"), headers={"Authorization": "Bearer nope"})
    assert unauthorized.status_code == 401
    assert unauthorized.json()["fault"]["error"][0]["code"] == "3200"
    other_realm = api.session.get(f"{sandbox.base_url}/company/123/invoice/1")
    assert other_realm.status_code == 403


def test_oauth_flow_through_intuitlib(sandbox: QuickBooksSandbox) -> None:
    from intuitlib.client import AuthClient
    from intuitlib.enums import Scopes

    client = AuthClient(
        sandbox.client_id, sandbox.client_secret, "http://127.0.0.1:9/callback", sandbox.discovery_url
    )
    url = client.get_authorization_url([Scopes.ACCOUNTING])
    redirect = requests.get(url, allow_redirects=False)
    assert redirect.status_code == 302
    params = parse_qs(urlsplit(redirect.headers["Location"]).query)
    assert params["realmId"] == [sandbox.realm_id]
    client.get_bearer_token(params["code"][0], realm_id=params["realmId"][0])
    read = requests.get(
        f"{sandbox.base_url}/company/{sandbox.realm_id}/invoice/1",
        headers={"Authorization": f"Bearer {client.access_token}", "Accept": "application/json"},
    )
    assert read.status_code == 200 and read.json()["Invoice"]["Id"] == "1"
    old_refresh = client.refresh_token
    client.refresh()
    assert client.refresh_token != old_refresh
    discovery = requests.get(sandbox.discovery_url).json()
    assert {"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "revocation_endpoint"} <= set(
        discovery
    )


def test_state_persists_with_tokens(tmp_path: Path) -> None:
    state = tmp_path / "qbo.json"
    box = QuickBooksSandbox(seed=2, customers=10, invoices=50, today=TODAY, state_file=state)
    box.start()
    api = Api(box)
    api.post(
        "attachable", {"Note": "kept", "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": "3"}}]}
    )
    box.stop()
    box.save()
    truth = box.truth()
    again = QuickBooksSandbox(today=TODAY, state_file=state)
    assert again.truth() == truth
    assert [e.kind for e in again.effects()] == ["note"]
    again.start()
    try:
        api.box = again
        response = api.session.get(api.url("invoice/3"))
        assert response.status_code == 200  # the token issued before the restart still works
    finally:
        again.stop()
