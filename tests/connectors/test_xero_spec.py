"""Xero sandbox answers validated against Xero's official OpenAPI spec (component schemas, with
jsonschema), and read back by xero-python's own model deserialiser."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import requests
import yaml

from connectors.sandbox.xero import XeroSandbox
from tests.support.paths import SHARED

SPEC = SHARED / "specs" / "xero" / "xero_accounting.yaml"
TODAY = date(2026, 3, 2)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[XeroSandbox]:
    box = XeroSandbox(
        seed=13, customers=15, invoices=500, today=TODAY, tenant_id=str(uuid.uuid4()), minute_limit=100_000
    )
    box.start()
    yield box
    box.stop()


@pytest.fixture(scope="module")
def http(sandbox: XeroSandbox) -> requests.Session:
    session = requests.Session()
    session.headers.update(
        {
            "Authorization": f"Bearer {sandbox.grant()['access_token']}",
            "Xero-tenant-id": sandbox.tenant_id,
            "Accept": "application/json",
        }
    )
    return session


@pytest.fixture(scope="module")
def schema_for() -> Any:
    if not SPEC.exists():
        pytest.skip(f"the official Xero spec is not available at {SPEC} (../shared is absent)")
    from jsonschema import Draft4Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=loader)
    registry = Registry().with_resource(
        "urn:xero", Resource.from_contents(spec, default_specification=DRAFT4)
    )

    def validate(name: str, body: Any) -> None:
        validator = Draft4Validator(
            {"$ref": f"urn:xero#/components/schemas/{name}"},
            registry=registry,
            format_checker=Draft4Validator.FORMAT_CHECKER,
        )
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])

    return validate


def _get(http: requests.Session, sandbox: XeroSandbox, path: str, **params: Any) -> Any:
    response = http.get(sandbox.base_url + path, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def _first_invoice(sandbox: XeroSandbox, *, with_payments: bool = False, with_notes: bool = False) -> str:
    for invoice in sandbox.invoices.values():
        if (not with_payments or invoice.payment_ids) and (not with_notes or invoice.credited):
            return invoice.id
    raise AssertionError("no such invoice in the seeded company")


@pytest.mark.parametrize(
    ("path", "schema", "params"),
    [
        ("/Invoices", "Invoices", {"page": 1, "pageSize": 50}),
        ("/Invoices", "Invoices", {"where": 'Type=="ACCREC" AND Status=="AUTHORISED"'}),
        ("/Contacts", "Contacts", {"page": 1, "pageSize": 1000}),
        ("/Payments", "Payments", {"page": 1, "pageSize": 1000}),
        ("/CreditNotes", "CreditNotes", {"page": 1}),
    ],
)
def test_list_answers_match_the_spec(
    schema_for: Any,
    http: requests.Session,
    sandbox: XeroSandbox,
    path: str,
    schema: str,
    params: dict[str, Any],
) -> None:
    body = _get(http, sandbox, path, **params)
    assert body[schema], f"{path} returned no records to validate"
    schema_for(schema, body)


def test_single_invoice_history_and_online_invoice_match_the_spec(
    schema_for: Any, http: requests.Session, sandbox: XeroSandbox
) -> None:
    invoice_id = _first_invoice(sandbox, with_payments=True)
    schema_for("Invoices", _get(http, sandbox, f"/Invoices/{invoice_id}"))
    put = http.put(
        sandbox.base_url + f"/Invoices/{invoice_id}/History",
        json={"HistoryRecords": [{"Details": "relance: reminder sent"}]},
        timeout=10,
    )
    assert put.status_code == 200
    schema_for("HistoryRecords", put.json())
    schema_for("HistoryRecords", _get(http, sandbox, f"/Invoices/{invoice_id}/History"))
    schema_for("OnlineInvoices", _get(http, sandbox, f"/Invoices/{invoice_id}/OnlineInvoice"))


def test_credit_note_with_allocations_matches_the_spec(
    schema_for: Any, http: requests.Session, sandbox: XeroSandbox
) -> None:
    invoice_id = _first_invoice(sandbox, with_notes=True)
    note_id = sandbox.invoices[invoice_id].credited[0][0]
    body = _get(http, sandbox, "/CreditNotes", where=f'CreditNoteID==Guid("{note_id}")')
    assert body["CreditNotes"][0]["Allocations"]
    schema_for("CreditNotes", body)


def test_errors_match_the_spec(schema_for: Any, http: requests.Session, sandbox: XeroSandbox) -> None:
    contact_id = next(iter(sandbox.contacts))
    refused = http.put(
        sandbox.base_url + "/Invoices",
        json={"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": contact_id}, "LineItems": []}]},
        timeout=10,
    )
    assert refused.status_code == 400
    body = refused.json()
    schema_for("Error", body)
    assert body["Type"] == "ValidationException"
    assert body["Elements"][0]["ValidationErrors"][0]["Message"]
    bad_where = http.get(sandbox.base_url + "/Invoices", params={"where": "Type=="}, timeout=10)
    assert bad_where.status_code == 400
    schema_for("Error", bad_where.json())


def test_write_answers_match_the_spec(schema_for: Any, http: requests.Session, sandbox: XeroSandbox) -> None:
    contact_id = next(iter(sandbox.contacts))
    created = http.put(
        sandbox.base_url + "/Invoices",
        params={"summarizeErrors": "false"},
        json={
            "Invoices": [
                {
                    "Type": "ACCREC",
                    "Contact": {"ContactID": contact_id},
                    "Status": "AUTHORISED",
                    "Date": "2026-03-02",
                    "DueDate": "2026-03-20",
                    "LineItems": [{"Description": "Late fee", "Quantity": 1, "UnitAmount": 40}],
                }
            ]
        },
        timeout=10,
    )
    assert created.status_code == 200
    schema_for("Invoices", created.json())
    invoice_id = created.json()["Invoices"][0]["InvoiceID"]
    paid = http.put(
        sandbox.base_url + "/Payments",
        json={
            "Payments": [
                {
                    "Invoice": {"InvoiceID": invoice_id},
                    "Account": {"Code": "090"},
                    "Date": "2026-03-02",
                    "Amount": 10,
                }
            ]
        },
        timeout=10,
    )
    assert paid.status_code == 200, paid.text
    schema_for("Payments", paid.json())


def test_xero_python_reads_every_answer_into_its_models(sandbox: XeroSandbox) -> None:
    """The SDK's own deserialiser accepts the sandbox's JSON (e.g. IsReconciled is a boolean)."""
    from xero_python.accounting import AccountingApi
    from xero_python.api_client import ApiClient
    from xero_python.api_client.configuration import Configuration
    from xero_python.api_client.oauth2 import OAuth2Token

    token = sandbox.grant()["access_token"]
    configuration = Configuration()
    configuration.oauth2_token = OAuth2Token()
    client = ApiClient(
        configuration,
        oauth2_token_getter=lambda: {
            "access_token": token,
            "token_type": "Bearer",
            "scope": [],
            "expires_in": None,
            "expires_at": None,
        },
        oauth2_token_saver=lambda _: None,
    )
    api = AccountingApi(client, base_url=sandbox.base_url)
    invoices = api.get_invoices(sandbox.tenant_id, page=1, page_size=1000)
    assert len(invoices.invoices) == len(sandbox.invoices)
    assert invoices.pagination.item_count == len(sandbox.invoices)
    first = invoices.invoices[0]
    assert isinstance(first.date, date) and first.updated_date_utc.tzinfo is not None
    payments = api.get_payments(sandbox.tenant_id, page=1, page_size=1000)
    assert payments.payments and all(p.is_reconciled is False for p in payments.payments)
    contacts = api.get_contacts(sandbox.tenant_id, page=1)
    assert contacts.contacts[0].contact_groups is not None
    notes = api.get_credit_notes(sandbox.tenant_id, page=1)
    assert notes.credit_notes
    history = api.get_invoice_history(sandbox.tenant_id, first.invoice_id)
    assert history.history_records is not None
    connections = requests.get(
        sandbox.root_url + "/connections", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert connections[0]["tenantId"] == sandbox.tenant_id and connections[0]["tenantType"] == "ORGANISATION"
    json.dumps(connections)
