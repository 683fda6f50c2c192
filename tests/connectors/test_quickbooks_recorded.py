"""Every recorded real QuickBooks Online response body is read by the mapping / error layer."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from connectors.base import AuthError, RejectedByLedger, StaleObject
from connectors.quickbooks import mapping
from connectors.quickbooks.errors import error_from_response, parse_fault
from policies.model.ledger import Customer
from tests.support.paths import SHARED

RECORDED = SHARED / "specs" / "quickbooks" / "recorded"
NEUTRAL = {"Customer": "customer", "Invoice": "invoice", "Payment": "payment", "CreditMemo": "credit_note"}

if not RECORDED.is_dir():
    pytest.skip(
        f"recorded QBO responses not found at {RECORDED} (../shared is absent)", allow_module_level=True
    )


def interactions() -> list[tuple[str, int, dict[str, Any], str]]:
    found = []
    for path in sorted(RECORDED.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for number, interaction in enumerate(data["http_interactions"]):
            response = interaction["response"]
            found.append(
                (
                    f"{path.stem}#{number}",
                    int(response["status"]["code"]),
                    response["headers"],
                    response["body"]["string"],
                )
            )
    return found


CASES = interactions()


def entity_lists(body: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """(entity, records) wherever QBO puts them: QueryResponse, CDC, batch, single-object answers."""
    found: list[tuple[str, list[Any]]] = []
    for name in NEUTRAL:
        if isinstance(body.get(name), dict):
            found.append((name, [body[name]]))
    query = body.get("QueryResponse")
    for block in query if isinstance(query, list) else [query] if isinstance(query, dict) else []:
        for name in NEUTRAL:
            if isinstance(block.get(name), list):
                found.append((name, block[name]))
    for cdc in body.get("CDCResponse") or []:
        for block in cdc.get("QueryResponse") or []:
            found.extend(entity_lists({"QueryResponse": block}))
    for item in body.get("BatchItemResponse") or []:
        found.extend(entity_lists(item))
    return found


def test_recordings_are_present() -> None:
    assert len(CASES) >= 10


@pytest.mark.parametrize(("name", "status", "headers", "body"), CASES, ids=[c[0] for c in CASES])
def test_recorded_body_is_understood(name: str, status: int, headers: dict[str, Any], body: str) -> None:
    content_type = " ".join(headers.get("Content-Type") or headers.get("content-type") or [])
    if "json" not in content_type:
        assert error_from_response(status, body, connection="rec", call=name) is None  # e.g. the PDF
        return
    parsed = json.loads(body)
    error = error_from_response(status, body, connection="rec", call=name)
    if status != 200:
        assert error is not None, name
        assert str(error).startswith(f"[rec] {name}: ")
        if status == 401:
            assert isinstance(error, AuthError)
            assert "AB01601390262" not in str(error)  # the token echoed by QBO is redacted
        else:
            assert isinstance(error, RejectedByLedger)
        return
    assert error is None
    for entity, records in entity_lists(parsed):
        mapped, quarantined = mapping.map_records(NEUTRAL[entity], records)  # type: ignore[arg-type]
        assert quarantined == [], (name, quarantined[:1])
        assert len(mapped) == len(records)
    for item in parsed.get("BatchItemResponse") or []:
        if "Fault" in item:
            fault = parse_fault(json.dumps(item))
            assert fault is not None and fault.errors


def test_recorded_customers_map_to_neutral_fields() -> None:
    body = next(json.loads(b) for n, s, _, b in CASES if n == "all_customers#1")
    customers, _ = mapping.map_records("customer", body["QueryResponse"]["Customer"])
    amy = next(c for c in customers if c.id == "1")
    assert isinstance(amy, Customer)
    assert amy.name == "Amy's Bird Sanctuary"
    assert amy.currency == "USD" and amy.active
    assert amy.updated_at is not None and amy.updated_at.tzinfo is not None


def test_recorded_void_and_created_invoices() -> None:
    bodies = {n: json.loads(b) for n, _, _, b in CASES if n.startswith(("void_invoice", "create_invoice"))}
    before = mapping.invoice_from_qbo(bodies["void_invoice#0"]["Invoice"])
    after = mapping.invoice_from_qbo(bodies["void_invoice#1"]["Invoice"])
    assert before.status == "open" and str(before.balance.amount) == "100.00"
    assert after.status == "void" and after.reference is None
    created = mapping.invoice_from_qbo(bodies["create_invoice#0"]["Invoice"])
    assert created.customer_id == "1" and created.lines[0].amount == 100


def test_recorded_stale_object_in_batch_maps_to_stale() -> None:
    body = next(json.loads(b) for n, _, _, b in CASES if n == "batch_basic#0")
    stale = next(i for i in body["BatchItemResponse"] if i["bId"] == "bid3")
    error = error_from_response(400, json.dumps(stale), connection="rec", call="batch")
    assert isinstance(error, StaleObject)
