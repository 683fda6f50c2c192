"""Focused unit tests of the QBO HTTP layer with `responses`: error bodies -> relance errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from quickbooks import exceptions as qb

from connectors.base import (
    AuthError,
    FeeInvoice,
    LedgerEmail,
    LedgerUnavailable,
    RateLimited,
    RejectedByLedger,
    StaleObject,
    WriteStatus,
)
from connectors.limits import reset_limiters
from connectors.quickbooks.connector import QuickBooksConnector
from connectors.quickbooks.errors import error_from_exception, parse_fault

BASE = "https://qbo.test/v3"
REALM = "4620816365"
QUERY_URL = f"{BASE}/company/{REALM}/query"
THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2026-03-02T10:00:00.000-08:00">'
    '<Fault type="SERVICE"><Error code="3001"><Message>'
    "message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>"
    "<Detail>The request limit was reached.</Detail></Error></Fault></IntuitResponse>"
)


class FakeTokens:
    def __init__(self) -> None:
        self.token = "token-1"
        self.refreshed_from: list[str] = []
        self.reject = False

    def access_token(self) -> str:
        return self.token

    def force_refresh(self, stale: str) -> str:
        self.refreshed_from.append(stale)
        if self.reject:
            raise AuthError("[qbo] refresh token rejected: run `relance connect quickbooks --name qbo` again")
        self.token = f"token-{len(self.refreshed_from) + 1}"
        return self.token


def fault(code: str, message: str, detail: str = "") -> dict:
    return {
        "Fault": {"Error": [{"Message": message, "Detail": detail, "code": code}], "type": "ValidationFault"}
    }


def empty_query() -> dict:
    return {"QueryResponse": {}, "time": "2026-03-02T10:00:00.000-08:00"}


@pytest.fixture()
def tokens() -> FakeTokens:
    return FakeTokens()


@pytest.fixture()
def connector(tokens: FakeTokens) -> Iterator[QuickBooksConnector]:
    reset_limiters()
    conn = QuickBooksConnector(
        name="qbo", base_url=BASE, realm_id=REALM, tokens=tokens, retry_sleep=lambda _: None, max_attempts=3
    )
    yield conn
    conn.close()
    reset_limiters()


def _url(request: requests.PreparedRequest) -> str:
    assert request.url is not None
    return request.url


def _sent_json(request: requests.PreparedRequest) -> Any:
    assert isinstance(request.body, str | bytes), request.body
    return json.loads(request.body)


@responses.activate
def test_xml_throttle_is_rate_limited_then_retried(connector: QuickBooksConnector) -> None:
    responses.post(
        QUERY_URL, body=THROTTLE_XML, status=429, content_type="application/xml", headers={"Retry-After": "0"}
    )
    responses.post(QUERY_URL, json=empty_query())
    assert connector.query("SELECT * FROM Invoice") == {}
    assert len(responses.calls) == 2


@responses.activate
def test_xml_throttle_exhausted_names_connection_and_call(connector: QuickBooksConnector) -> None:
    responses.post(QUERY_URL, body=THROTTLE_XML, status=429, content_type="application/xml")
    with pytest.raises(RateLimited) as caught:
        connector.query("SELECT * FROM Invoice", describe="query Invoice page 1")
    assert len(responses.calls) == 3
    text = str(caught.value)
    assert text.startswith("[qbo] query Invoice page 1: ") and "3001" in text and "500 requests" in text


@responses.activate
def test_throttle_fault_in_a_200_body_is_rate_limited(connector: QuickBooksConnector) -> None:
    responses.post(QUERY_URL, json=fault("3001", "message=ThrottleExceeded; errorCode=003001"))
    responses.post(QUERY_URL, json=empty_query())
    assert connector.query("SELECT * FROM Invoice") == {}


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("5010", "Stale Object Error", StaleObject),
        ("6240", "Duplicate Name Exists Error", RejectedByLedger),
        ("4001", "Invalid query", RejectedByLedger),
        ("610", "Object Not Found", RejectedByLedger),
        ("2030", "Invalid ID", RejectedByLedger),
    ],
)
@responses.activate
def test_validation_faults_are_not_retried(
    connector: QuickBooksConnector, code: str, message: str, expected: type
) -> None:
    responses.post(QUERY_URL, json=fault(code, message, "details here"), status=400)
    with pytest.raises(expected) as caught:
        connector.query("SELECT * FROM Invoice")
    assert len(responses.calls) == 1
    assert f"code {code}" in str(caught.value) and "[qbo]" in str(caught.value)


@responses.activate
def test_html_5xx_is_unavailable_after_retries(connector: QuickBooksConnector) -> None:
    responses.post(
        QUERY_URL, body="<html><h1>503 Service Unavailable</h1></html>", status=503, content_type="text/html"
    )
    with pytest.raises(LedgerUnavailable) as caught:
        connector.query("SELECT * FROM Invoice")
    assert len(responses.calls) == 3
    assert "gave up after 3 attempts" in str(caught.value)


@responses.activate
def test_non_json_200_is_mapped_not_leaked(connector: QuickBooksConnector) -> None:
    responses.post(QUERY_URL, body="<html>maintenance</html>", status=200, content_type="text/html")
    with pytest.raises(LedgerUnavailable):
        connector.query("SELECT * FROM Invoice")


@responses.activate
def test_401_refreshes_once_and_retries_with_new_token(
    connector: QuickBooksConnector, tokens: FakeTokens
) -> None:
    body = {
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": "Token expired: AB0123secret",
                    "code": "3200",
                }
            ],
            "type": "AUTHENTICATION",
        }
    }
    responses.post(QUERY_URL, json=body, status=401)
    responses.post(QUERY_URL, json=empty_query())
    connector.query("SELECT * FROM Invoice")
    assert tokens.refreshed_from == ["token-1"]
    assert responses.calls[1].request.headers["Authorization"] == "Bearer token-2"


@responses.activate
def test_401_after_refresh_is_auth_error_without_token(connector: QuickBooksConnector) -> None:
    body = {
        "fault": {
            "error": [
                {"message": "AuthenticationFailed", "detail": "Token expired: AB0123secret", "code": "3200"}
            ],
            "type": "AUTHENTICATION",
        }
    }
    responses.post(QUERY_URL, json=body, status=401)
    with pytest.raises(AuthError) as caught:
        connector.query("SELECT * FROM Invoice")
    assert len(responses.calls) == 2
    assert "AB0123secret" not in str(caught.value)
    assert "relance connect quickbooks --name qbo" in str(caught.value)


@responses.activate
def test_connection_error_is_unavailable(connector: QuickBooksConnector) -> None:
    responses.post(QUERY_URL, body=requests.ConnectionError("refused"))
    with pytest.raises(LedgerUnavailable) as caught:
        connector.query("SELECT * FROM Invoice")
    assert "base_url" in str(caught.value)


@responses.activate
def test_send_5xx_is_uncertain_and_sent_once(connector: QuickBooksConnector) -> None:
    url = f"{BASE}/company/{REALM}/invoice/42/send"
    responses.post(url, body="bad gateway", status=502)
    [result] = connector.write([LedgerEmail("k-send", "42", "a@b.example")])
    assert result.status is WriteStatus.UNCERTAIN
    assert len(responses.calls) == 1
    query = parse_qs(urlsplit(_url(responses.calls[0].request)).query)
    assert query["sendTo"] == ["a@b.example"] and query["minorversion"] == ["75"]


@responses.activate
def test_batch_carries_requestid_and_maps_item_faults(connector: QuickBooksConnector) -> None:
    def query(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        text = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        if "FROM Item" in text:  # the fee item exists: its id goes into every fee line
            answer = {"QueryResponse": {"Item": [{"Id": "9", "Name": "Late fee", "Type": "Service"}]}}
            return 200, {}, json.dumps(answer)
        return 200, {}, json.dumps(empty_query())  # nothing created yet under these keys

    responses.add_callback(responses.POST, QUERY_URL, callback=query)
    batch_url = f"{BASE}/company/{REALM}/batch"
    responses.post(
        batch_url,
        json={
            "BatchItemResponse": [
                {"bId": "key-a", "Invoice": {"Id": "77"}},
                {"bId": "key-b", **fault("6000", "A business validation error has occurred", "bad customer")},
            ],
            "time": "2026-03-02T10:00:00.000-08:00",
        },
    )
    requests_ = [
        FeeInvoice(key, "1", "USD", (("Fee", Decimal("5.00")),), "INV-1", date(2026, 3, 30), date(2026, 3, 2))
        for key in ("key-a", "key-b")
    ]
    results = connector.write(requests_)
    assert [(r.status, r.ledger_id) for r in results] == [
        (WriteStatus.DONE, "77"),
        (WriteStatus.FAILED, None),
    ]
    assert "bad customer" in (results[1].error or "")
    batch_call = responses.calls[2].request  # after the DocNumber look-up and the item look-up
    assert "requestid" in parse_qs(urlsplit(_url(batch_call)).query)
    sent = _sent_json(batch_call)["BatchItemRequest"]
    assert [item["bId"] for item in sent] == ["key-a", "key-b"]
    line = sent[0]["Invoice"]["Line"][0]
    assert line["Amount"] == 5.0
    assert line["SalesItemLineDetail"]["ItemRef"] == {"value": "9", "name": "Late fee"}
    assert len(responses.calls) == 3  # the item id is cached: no second look-up


@responses.activate
def test_fee_item_is_created_once_with_a_deterministic_requestid(connector: QuickBooksConnector) -> None:
    def query(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        text = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        if "FROM Account" in text:
            assert "AccountType = 'Income'" in text
            answer = {"QueryResponse": {"Account": [{"Id": "79", "Name": "Sales", "AccountType": "Income"}]}}
            return 200, {}, json.dumps(answer)
        return 200, {}, json.dumps(empty_query())

    responses.add_callback(responses.POST, QUERY_URL, callback=query)
    item_url = f"{BASE}/company/{REALM}/item"
    responses.post(item_url, body="bad gateway", status=502)  # lost answer: retried, same requestid
    responses.post(item_url, json={"Item": {"Id": "31", "Name": "Late fee"}, "time": "2026-03-02T10:00:00Z"})
    assert connector.fee_item_ref() == {"value": "31", "name": "Late fee"}
    assert connector.fee_item_ref() == {"value": "31", "name": "Late fee"}  # cached
    creates = [c.request for c in responses.calls if urlsplit(_url(c.request)).path.endswith("/item")]
    assert len(creates) == 2
    ids = {parse_qs(urlsplit(_url(c)).query)["requestid"][0] for c in creates}
    assert len(ids) == 1 and next(iter(ids)).startswith("relance-item-")
    body = _sent_json(creates[0])
    assert body["Name"] == "Late fee" and body["Type"] == "Service"
    assert body["IncomeAccountRef"] == {"value": "79", "name": "Sales"}


@responses.activate
def test_no_fee_item_and_no_income_account_fails_fee_writes_clearly(connector: QuickBooksConnector) -> None:
    responses.post(QUERY_URL, json=empty_query())
    request = FeeInvoice(
        "key-c", "1", "USD", (("Fee", Decimal("5")),), "INV-1", date(2026, 3, 30), date(2026, 3, 2)
    )
    [result] = connector.write([request])
    assert result.status is WriteStatus.FAILED
    assert "[qbo]" in (result.error or "") and "Late fee" in (result.error or "")
    assert not any(urlsplit(_url(c.request)).path.endswith("/batch") for c in responses.calls)


@pytest.mark.parametrize(
    ("exception", "expected"),
    [
        (qb.AuthorizationException("Application authentication failed", 401, "{}"), AuthError),
        (qb.ValidationException("Invalid query", 4001, "bad"), RejectedByLedger),
        (qb.ObjectNotFoundException("Object Not Found", 610, "gone"), RejectedByLedger),
        (qb.SevereException("Internal error", 10001, "boom"), LedgerUnavailable),
        (qb.QuickbooksException("Error returned with status code '503': down", 10000), LedgerUnavailable),
        (qb.QuickbooksException(f"Error reading json response: {THROTTLE_XML}", 10000), RateLimited),
        (qb.GeneralException("Stale Object Error", 5010, "stale"), StaleObject),
        (requests.Timeout("slow"), LedgerUnavailable),
    ],
)
def test_sdk_exceptions_map_to_relance_errors(exception: Exception, expected: type) -> None:
    error = error_from_exception(exception, connection="qbo", call="some call")
    assert isinstance(error, expected)
    assert str(error).startswith("[qbo] some call: ")


def test_parse_fault_reads_all_three_shapes() -> None:
    xml = parse_fault(THROTTLE_XML)
    assert xml is not None and xml.codes == {"3001"} and xml.type == "SERVICE"
    lower = parse_fault('{"fault": {"error": [{"message": "m", "code": "3200"}], "type": "AUTHENTICATION"}}')
    assert lower is not None and lower.codes == {"3200"}
    upper = parse_fault(json.dumps(fault("5010", "Stale Object Error")))
    assert upper is not None and upper.errors[0].message == "Stale Object Error"
    assert parse_fault("not a fault") is None and parse_fault('{"QueryResponse": {}}') is None
