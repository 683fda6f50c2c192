"""The sandbox HTTP framework over real HTTP: routing, OAuth, faults, 401, request log, clock."""

from __future__ import annotations

import base64
import re
import threading
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connectors.sandbox.generator import generate_company
from connectors.sandbox.server import (
    Faults,
    OAuthAuthority,
    RequestLog,
    Route,
    SandboxClock,
    SandboxRequest,
    SandboxResponse,
    SandboxServer,
    json_response,
    oauth_routes,
    openid_discovery_route,
    path_pattern,
    text_response,
)


@pytest.fixture()
def sandbox():
    clock = SandboxClock(date(2026, 3, 1))
    authority = OAuthAuthority("client-1", "secret-1", access_ttl=3600, clock=clock)
    items: dict[str, dict] = {}
    counter = {"n": 0}

    def create(request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        counter["n"] += 1
        item_id = str(counter["n"])
        items[item_id] = {"Id": item_id, **(request.json() or {})}
        return json_response(items[item_id], 200)

    def read(_: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        item = items.get(match["id"])
        return json_response(item) if item else json_response({"error": "gone"}, 404)

    def boom(_: SandboxRequest, __: re.Match[str]) -> SandboxResponse:
        raise RuntimeError("handler exploded")

    def fault_body(kind: str, _: SandboxRequest) -> SandboxResponse:
        return text_response(f"ledger says {kind}", 401 if kind == "401" else 503 if kind == "5xx" else 429)

    routes = [
        Route("POST", r"/api/items", create),
        Route("GET", r"/api/items/(?P<id>\d+)", read),
        Route("GET", r"/api/boom", boom),
        Route("GET", r"/public/ping", lambda r, m: json_response({"pong": True}), auth=False),
        openid_discovery_route(
            r"/\.well-known/openid_configuration", authorize_path="/auth", token_path="/token"
        ),
        *oauth_routes(
            authority,
            authorize_path=r"/auth",
            token_path=r"/token",
            redirect_extra=lambda request: {"realmId": "9130"},
        ),
    ]
    server = SandboxServer(
        routes,
        authority=authority,
        clock=clock,
        faults=Faults(seed=7),
        log=RequestLog(),
        fault_response=fault_body,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def bearer(server: SandboxServer) -> dict[str, str]:
    return {"Authorization": "Bearer " + server.authority.grant()["access_token"]}


def test_routes_dispatch_with_keep_alive_and_log_counts(sandbox: SandboxServer) -> None:
    session = requests.Session()
    headers = bearer(sandbox)
    created = session.post(sandbox.url + "/api/items", json={"Amount": 12.5}, headers=headers).json()
    assert created == {"Id": "1", "Amount": 12.5}
    assert session.get(f"{sandbox.url}/api/items/1", headers=headers).json()["Amount"] == 12.5
    assert session.get(f"{sandbox.url}/api/items/99", headers=headers).status_code == 404
    assert session.get(f"{sandbox.url}/nowhere", headers=headers).status_code == 404
    assert session.get(f"{sandbox.url}/public/ping").json() == {"pong": True}

    assert sandbox.log.count("GET", "/api/items") == 2
    assert sandbox.log.count(status=404) == 2
    assert sandbox.log.snapshot()["GET /api/items/{id}"] == 2
    sandbox.log.reset()
    assert sandbox.log.count() == 0


def test_handler_exception_is_500_and_recorded(sandbox: SandboxServer) -> None:
    response = requests.get(sandbox.url + "/api/boom", headers=bearer(sandbox))
    assert response.status_code == 500
    assert "handler exploded" in response.json()["message"]
    assert sandbox.errors and "handler exploded" in sandbox.errors[0]


def test_missing_or_expired_bearer_gets_ledger_401(sandbox: SandboxServer) -> None:
    assert requests.get(sandbox.url + "/api/items/1").status_code == 401
    headers = bearer(sandbox)
    assert requests.get(sandbox.url + "/api/items/1", headers=headers).status_code == 404  # valid token
    sandbox.faults.expire_tokens = True
    response = requests.get(sandbox.url + "/api/items/1", headers=headers)
    assert response.status_code == 401 and response.text == "ledger says 401"
    assert sandbox.faults.expire_tokens is False  # the flag resets once applied
    # time travel past the access-token lifetime expires new tokens too
    headers = bearer(sandbox)
    sandbox.clock.advance(1)
    assert requests.get(sandbox.url + "/api/items/1", headers=headers).status_code == 401


def test_faults_429_5xx_burst_and_day_limit(sandbox: SandboxServer) -> None:
    headers = bearer(sandbox)
    url = sandbox.url + "/api/items/1"
    sandbox.faults.burst_5xx = 2
    assert [requests.get(url, headers=headers).status_code for _ in range(3)] == [503, 503, 404]

    sandbox.faults.rate_429 = 1.0
    sandbox.faults.retry_after = 2.5
    limited = requests.get(url, headers=headers)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2.5"
    sandbox.faults.rate_429 = 0.3
    sandbox.faults.rate_5xx = 0.2
    statuses = [requests.get(url, headers=headers).status_code for _ in range(60)]
    assert 5 < statuses.count(429) < 35 and statuses.count(503) > 2 and statuses.count(404) > 10
    sandbox.faults.reset()

    sandbox.faults.day_limit_remaining = 2
    first = requests.get(url, headers=headers)
    assert first.headers["X-DayLimit-Remaining"] == "1"
    requests.get(url, headers=headers)
    blocked = requests.get(url, headers=headers)
    assert blocked.status_code == 429
    assert blocked.headers["X-Rate-Limit-Problem"] == "day"
    assert int(blocked.headers["Retry-After"]) >= 1
    # OAuth routes are never faulted
    assert requests.get(sandbox.url + "/public/ping").status_code == 200


def test_qbo_xml_throttle_default_body() -> None:
    authority = OAuthAuthority("c", "s")
    server = SandboxServer(
        [Route("GET", "/x", lambda r, m: json_response({}))],
        authority=authority,
        faults=Faults(rate_429=1.0, qbo_xml_throttle=True),
    )
    with server:
        response = requests.get(server.url + "/x", headers=bearer(server))
    assert response.status_code == 429
    assert '<Error code="3001">' in response.text and "application/xml" in response.headers["Content-Type"]


def test_latency_is_applied_per_request(monkeypatch: pytest.MonkeyPatch) -> None:
    authority = OAuthAuthority("c", "s")
    slept: list[float] = []
    server = SandboxServer(
        [Route("GET", "/x", lambda r, m: json_response({}))], authority=authority, faults=Faults(latency=0.01)
    )
    original = __import__("time").sleep

    def spy(seconds: float) -> None:
        slept.append(seconds)
        original(seconds)

    import connectors.sandbox.server as module

    monkeypatch.setattr(module.time, "sleep", spy)
    with server:
        requests.get(server.url + "/x", headers=bearer(server))
    assert 0.01 in slept


def test_oauth_code_flow_and_refresh_rotation(sandbox: SandboxServer) -> None:
    discovery = requests.get(sandbox.url + "/.well-known/openid_configuration").json()
    assert discovery["token_endpoint"] == sandbox.url + "/token"
    redirect = requests.get(
        discovery["authorization_endpoint"],
        params={
            "client_id": "client-1",
            "redirect_uri": "http://127.0.0.1:1/cb",
            "state": "xyz",
            "scope": "a",
        },
        allow_redirects=False,
    )
    assert redirect.status_code == 302
    query = parse_qs(urlsplit(redirect.headers["Location"]).query)
    assert query["state"] == ["xyz"] and query["realmId"] == ["9130"]
    basic = "Basic " + base64.b64encode(b"client-1:secret-1").decode()
    token = requests.post(
        sandbox.url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": "http://127.0.0.1:1/cb",
        },
        headers={"Authorization": basic},
    ).json()
    assert set(token) >= {
        "access_token",
        "refresh_token",
        "expires_in",
        "x_refresh_token_expires_in",
        "token_type",
    }
    reused = requests.post(
        sandbox.url + "/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": "http://127.0.0.1:1/cb",
        },
        headers={"Authorization": basic},
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    # form client credentials work too; the old refresh token dies on use
    form = {
        "grant_type": "refresh_token",
        "refresh_token": token["refresh_token"],
        "client_id": "client-1",
        "client_secret": "secret-1",
    }
    rotated = requests.post(sandbox.url + "/token", data=form)
    assert rotated.status_code == 200 and rotated.json()["refresh_token"] != token["refresh_token"]
    again = requests.post(sandbox.url + "/token", data=form)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    wrong_client = requests.post(sandbox.url + "/token", data={**form, "client_secret": "nope"})
    assert wrong_client.json()["error"] == "invalid_client"


def test_authority_state_round_trips() -> None:
    clock = SandboxClock(date(2026, 1, 10))
    authority = OAuthAuthority("c", "s", clock=clock)
    pair = authority.grant()
    restored = OAuthAuthority.from_dict(authority.to_dict(), clock=clock)
    assert restored.check_bearer("Bearer " + pair["access_token"])
    assert restored.refresh(pair["refresh_token"], "c", "s")["access_token"]
    assert not restored.check_bearer("Bearer nope")


def test_clock_time_travel_is_thread_safe() -> None:
    clock = SandboxClock(date(2026, 1, 1))

    def travel() -> None:
        for _ in range(50):
            clock.advance(1)

    threads = [threading.Thread(target=travel) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.today() == date(2026, 1, 1) + timedelta(days=200)
    clock.set_today(date(2025, 6, 1))
    assert clock.today() == date(2025, 6, 1)


def test_path_pattern_groups_ids() -> None:
    assert path_pattern("/v3/company/9130/invoice/42") == "/v3/company/{id}/invoice/{id}"
    assert path_pattern("/api.xro/2.0/Invoices/0f7b2a3c-1d2e-4f5a-8b9c-0d1e2f3a4b5c/Email") == (
        "/api.xro/2.0/Invoices/{id}/Email"
    )


def test_generator_is_deterministic_and_realistic() -> None:
    kwargs: dict[str, Any] = dict(
        seed=3,
        customers=200,
        invoices=3000,
        today=date(2026, 3, 1),
        country="FR",
        currency="EUR",
        other_currencies=("GBP", "USD"),
        language="fr",
    )
    company = generate_company(**kwargs)
    assert company.today is not None  # generate_company always dates the company
    assert company.invoices == generate_company(**kwargs).invoices
    assert len(company.invoices) == 3000 and len(company.customers) == 200
    currencies = {invoice.currency for invoice in company.invoices}
    assert currencies == {"EUR", "GBP", "USD"}
    eur_share = sum(invoice.currency == "EUR" for invoice in company.invoices) / 3000
    assert eur_share > 0.7
    assert {(invoice.due_date - invoice.issue_date).days for invoice in company.invoices} == {30, 45, 60}
    open_invoices = [invoice for invoice in company.invoices if invoice.is_open]
    paid = [invoice for invoice in company.invoices if invoice.status == "paid"]
    assert len(paid) > len(open_invoices) > 50
    assert any((company.today - invoice.due_date).days > 90 for invoice in open_invoices)
    assert any("DISPUTE" in (invoice.reference or "") for invoice in company.invoices)
    assert any("disputed" in customer.tags for customer in company.customers)
    assert company.credit_notes
    # balances agree with payments and credit notes, to the cent
    settled: dict[str, Decimal] = {}
    for payment in company.payments:
        for allocation in payment.allocations:
            settled[allocation.invoice_id] = (
                settled.get(allocation.invoice_id, Decimal(0)) + allocation.amount
            )
    for note in company.credit_notes:
        for allocation in note.allocations:
            settled[allocation.invoice_id] = (
                settled.get(allocation.invoice_id, Decimal(0)) + allocation.amount
            )
    for invoice in company.invoices:
        if invoice.status in ("open", "paid"):
            assert invoice.total.amount - settled.get(invoice.id, Decimal(0)) == invoice.balance.amount
    partial = [i for i in open_invoices if 0 < i.balance.amount < i.total.amount]
    assert partial
    assert all(p.date <= company.today for p in company.payments)
    assert all("@" in c.emails[0] for c in company.customers)
