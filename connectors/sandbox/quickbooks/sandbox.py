"""QuickBooksSandbox: one QBO company served over real HTTP, assembled from its parts (state,
query, create, writes, routes) and driven by tests and benchmarks (SandboxControl)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from connectors.sandbox.faults import Faults
from connectors.sandbox.lifecycle import SandboxLifecycle
from connectors.sandbox.paging import RowCache
from connectors.sandbox.quickbooks.create import QboCreator
from connectors.sandbox.quickbooks.query import QboQuery
from connectors.sandbox.quickbooks.routes import API_PREFIX, DISCOVERY_PATH, SCOPE, QboRoutes
from connectors.sandbox.quickbooks.state import DEFAULT_REALM_ID, QboRecord, QboState
from connectors.sandbox.quickbooks.writes import QboWriter


class QuickBooksSandbox(SandboxLifecycle):
    """The QBO v3 API subset relance uses, stateful, over real HTTP (implements SandboxControl;
    seed, effects, truth, save and load are SandboxLifecycle's)."""

    ledger = "quickbooks"
    grant_scope = SCOPE
    state: QboState
    query: QboQuery

    def __init__(
        self,
        *,
        seed: int | None = None,
        customers: int = 0,
        invoices: int = 0,
        today: date | None = None,
        state_file: Path | None = None,
        realm_id: str = DEFAULT_REALM_ID,
        faults: Faults | None = None,
        client_id: str = "qbo-sandbox-client",
        client_secret: str = "qbo-sandbox-secret",
        country: str = "FR",
        currency: str = "EUR",
        language: str = "fr",
    ) -> None:
        super().__init__(
            seed=seed,
            today=today,
            state_file=state_file,
            faults=faults,
            client_id=client_id,
            client_secret=client_secret,
        )
        self.state = QboState(self.clock, realm_id=str(realm_id), home_currency=currency.upper())
        self.query = QboQuery(self.state)
        self.create = QboCreator(self.state)
        self.writer = QboWriter(self.state, self.create, self.query)
        routes = QboRoutes(self.state, self.query, self.writer, self.authority, self.faults)
        self._serve(routes.routes(), routes.fault_response)
        # A company is generated only when a seed is given (Xero's sandbox defaults it to 0).
        self._open(
            seed=seed,
            customers=customers,
            invoices=invoices,
            today=today,
            country=country,
            currency=currency,
            language=language,
        )

    # ------------------------------------------------------------ the company

    @property
    def base_url(self) -> str:
        """The SDK's api_url_v3 equivalent: resource paths are appended to it."""
        return self.server.url + API_PREFIX

    @property
    def discovery_url(self) -> str:
        return self.server.url + DISCOVERY_PATH

    @property
    def realm_id(self) -> str:
        return self.state.realm_id

    @property
    def home_currency(self) -> str:
        return self.state.home_currency

    @property
    def entities(self) -> dict[str, dict[str, QboRecord]]:
        """The stored records by entity and Id (tests edit them under `lock`, then `changed()`)."""
        return self.state.entities

    @property
    def deleted(self) -> dict[str, dict[str, str]]:
        return self.state.deleted

    @property
    def _query_cache(self) -> RowCache:
        """The query engine's cached row lists (tests check that paging reuses them)."""
        return self.query.cache

    def record(self, entity: str, entity_id: str) -> QboRecord:
        """A copy of one stored QBO record (tests)."""
        with self.lock:
            return self.state.record(entity, entity_id)

    # ------------------------------------------------------------ SandboxControl

    def add_payment(self, invoice_id: str, amount: Decimal, on: date) -> str:
        """A customer pays (part of) an invoice, as if keyed in QBO."""
        with self.lock:
            invoice = self.state.get("Invoice", invoice_id)
            body = {
                "CustomerRef": dict(invoice["CustomerRef"]),
                "TotalAmt": amount,
                "TxnDate": on.isoformat(),
                "CurrencyRef": dict(invoice["CurrencyRef"]),
                "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": str(invoice_id), "TxnType": "Invoice"}]}],
            }
            return str(self.create.payment(body)["Id"])

    def modify_invoices(self, ids: Sequence[str]) -> None:
        """Simulate edits in QBO: the due date moves a day later; SyncToken and LastUpdatedTime change."""
        with self.lock:
            for invoice_id in ids:
                invoice = self.state.get("Invoice", invoice_id)
                due = date.fromisoformat(invoice.get("DueDate") or invoice["TxnDate"])
                invoice["DueDate"] = (due + timedelta(days=1)).isoformat()
                self.state.touch(invoice)

    def void_invoice(self, invoice_id: str) -> None:
        with self.lock:
            self.writer.void(self.state.get("Invoice", invoice_id))

    def delete_invoice(self, invoice_id: str) -> None:
        with self.lock:
            self.writer.delete("Invoice", self.state.get("Invoice", invoice_id))
