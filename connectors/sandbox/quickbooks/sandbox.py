"""QuickBooksSandbox: one QBO company served over real HTTP, assembled from its parts (state,
query, create, writes, routes) and driven by tests and benchmarks (SandboxControl)."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from connectors.sandbox.effects import Effect
from connectors.sandbox.faults import Faults
from connectors.sandbox.generator import GeneratedCompany, generate_company
from connectors.sandbox.paging import RowCache
from connectors.sandbox.quickbooks.create import QboCreator
from connectors.sandbox.quickbooks.query import QboQuery
from connectors.sandbox.quickbooks.routes import API_PREFIX, DISCOVERY_PATH, SCOPE, QboRoutes
from connectors.sandbox.quickbooks.state import DEFAULT_REALM_ID, QboRecord, QboState
from connectors.sandbox.quickbooks.writes import QboWriter
from connectors.sandbox.server import (
    OAuthAuthority,
    RequestLog,
    SandboxClock,
    SandboxLifecycle,
    SandboxServer,
    write_json_atomic,
)
from policies.model.ledger import LedgerSnapshot


class QuickBooksSandbox(SandboxLifecycle):
    """The QBO v3 API subset relance uses, stateful, over real HTTP (implements SandboxControl)."""

    ledger = "quickbooks"
    grant_scope = SCOPE

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
        self.clock = SandboxClock(today)
        self.faults = faults if faults is not None else Faults(seed=seed or 0)
        self.log = RequestLog()
        self.client_id = client_id
        self.client_secret = client_secret
        self.state_file = Path(state_file) if state_file else None
        self.authority = OAuthAuthority(client_id, client_secret, clock=self.clock)
        self.lock = threading.RLock()
        self.state = QboState(self.clock, realm_id=str(realm_id), home_currency=currency.upper())
        self.query = QboQuery(self.state)
        self.create = QboCreator(self.state)
        self.writer = QboWriter(self.state, self.create, self.query)
        routes = QboRoutes(self.state, self.query, self.writer, self.authority, self.faults)
        self.server = SandboxServer(
            routes.routes(),
            authority=self.authority,
            clock=self.clock,
            faults=self.faults,
            log=self.log,
            fault_response=routes.fault_response,
            state_lock=self.lock,
        )
        if self.state_file is not None and self.state_file.exists():
            self.load(self.state_file)
        elif seed is not None and (customers or invoices):
            self.seed(
                generate_company(
                    seed=seed,
                    customers=max(1, customers),
                    invoices=invoices,
                    today=today or self.clock.today(),
                    country=country,
                    currency=currency,
                    other_currencies=("USD", "GBP"),
                    language=language,
                )
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

    def changed(self) -> None:
        """Bump the state version: cached query results are recomputed. Every write path calls it;
        code that edits `entities` directly (tests) must call it too."""
        self.state.changed()

    def record(self, entity: str, entity_id: str) -> QboRecord:
        """A copy of one stored QBO record (tests)."""
        with self.lock:
            return self.state.record(entity, entity_id)

    # ------------------------------------------------------------ SandboxControl

    def seed(self, company: GeneratedCompany) -> None:
        """Replace the ledger with a generated company (QBO has no draft invoices: drafts are left out)."""
        with self.lock:
            self.query.reset()
            self.state.seed(company)

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

    def effects(self) -> list[Effect]:
        with self.lock:
            return self.state.effects.snapshot()

    def truth(self) -> LedgerSnapshot:
        """Every record of the ledger in the neutral model (inactive customers with active=False)."""
        with self.lock:
            return self.state.truth()

    # ------------------------------------------------------------ persistence

    def save(self, path: Path | None = None) -> None:
        target = Path(path) if path else self.state_file
        if target is None:
            raise ValueError("no state file: pass a path or construct the sandbox with state_file=")
        with self.lock:
            data = self.state.dump()
            data["authority"] = self.authority.to_dict()
            write_json_atomic(target, data)

    def load(self, path: Path) -> None:
        data = json.loads(Path(path).read_text(encoding="utf-8"), parse_float=Decimal)
        with self.lock:
            self.query.reset()
            self.state.restore(data)
            if data.get("authority"):
                self.authority.restore(data["authority"])
