"""XeroSandbox: one Xero organisation served over real HTTP, assembled from its parts (state,
query, render, writes, limits, routes) and driven by tests and benchmarks (SandboxControl)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from connectors.sandbox.faults import Faults
from connectors.sandbox.lifecycle import SandboxLifecycle
from connectors.sandbox.xero.limits import XeroLimits
from connectors.sandbox.xero.query import XeroQuery
from connectors.sandbox.xero.records import XContact, XCreditNote, XHistory, XInvoice, XPayment
from connectors.sandbox.xero.render import XeroRenderer
from connectors.sandbox.xero.routes import API_PREFIX, XeroRoutes
from connectors.sandbox.xero.state import DEFAULT_TENANT_ID, XeroState
from connectors.sandbox.xero.writes import XeroWriter


class XeroSandbox(SandboxLifecycle):
    """The Xero Accounting API subset relance uses, stateful, over real HTTP (SandboxControl;
    seed, effects, truth, save and load are SandboxLifecycle's)."""

    ledger = "xero"
    grant_scope = "offline_access accounting.transactions accounting.contacts"
    state: XeroState
    query: XeroQuery

    def __init__(
        self,
        *,
        seed: int | None = None,
        customers: int = 0,
        invoices: int = 0,
        today: date | None = None,
        state_file: Path | None = None,
        tenant_id: str = DEFAULT_TENANT_ID,
        faults: Faults | None = None,
        client_id: str = "xero-sandbox-client",
        client_secret: str = "xero-sandbox-secret",
        minute_limit: int = 60,
        app_minute_limit: int = 10_000,
        day_limit: int = 5_000,
        tenant_name: str = "Relance Demo Company",
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
        self.state = XeroState(
            self.clock, tenant_id=tenant_id, tenant_name=tenant_name, base_currency=currency.upper()
        )
        self.query = XeroQuery(self.state)
        render = XeroRenderer(self.state)
        self.limits = XeroLimits(
            self.clock,
            self.faults,
            minute_limit=minute_limit,
            app_minute_limit=app_minute_limit,
            day_limit=day_limit,
        )
        routes = XeroRoutes(
            self.state, self.query, render, XeroWriter(self.state, render), self.limits, self.authority
        )
        self._serve(routes.routes(), self.limits.fault_response)
        # Unlike QBO's sandbox, a size alone generates a company: the seed defaults to 0.
        self._open(
            seed=seed or 0,
            customers=customers,
            invoices=invoices,
            today=today,
            country=country,
            currency=currency,
            language=language,
        )

    # ------------------------------------------------------------ the organisation

    @property
    def base_url(self) -> str:
        return self.server.url + API_PREFIX

    @property
    def identity_url(self) -> str:
        return self.server.url

    @property
    def tenant_id(self) -> str:
        return self.state.tenant_id

    @property
    def tenant_name(self) -> str:
        return self.state.tenant_name

    @property
    def base_currency(self) -> str:
        return self.state.base_currency

    @property
    def contacts(self) -> dict[str, XContact]:
        return self.state.contacts

    @property
    def invoices(self) -> dict[str, XInvoice]:
        return self.state.invoices

    @property
    def payments(self) -> dict[str, XPayment]:
        return self.state.payments

    @property
    def credit_notes(self) -> dict[str, XCreditNote]:
        return self.state.credit_notes

    @property
    def history(self) -> dict[str, list[XHistory]]:
        return self.state.history

    # The server-side rate limits, mutable while the server runs (tests lower them).
    @property
    def minute_limit(self) -> int:
        return self.limits.minute_limit

    @minute_limit.setter
    def minute_limit(self, value: int) -> None:
        self.limits.minute_limit = value

    @property
    def app_minute_limit(self) -> int:
        return self.limits.app_minute_limit

    @app_minute_limit.setter
    def app_minute_limit(self, value: int) -> None:
        self.limits.app_minute_limit = value

    @property
    def day_limit(self) -> int:
        return self.limits.day_limit

    @day_limit.setter
    def day_limit(self, value: int) -> None:
        self.limits.day_limit = value

    def xero_id(self, kind: str, neutral_id: str) -> str:
        """The Xero UUID the seed gave a generator record ("customer"|"invoice"|"payment"|"credit_note")."""
        return self.state.uuid(kind, neutral_id)

    # ------------------------------------------------------------ SandboxControl

    def add_payment(self, invoice_id: str, amount: Decimal, on: date) -> str:
        with self.lock:
            self.state.changed()
            xi = self.state.invoices[invoice_id.lower()]
            return self.state.apply_payment(xi, Decimal(amount), on).id

    def modify_invoices(self, ids: Sequence[str]) -> None:
        """Simulate edits in Xero: the due date moves a week later; UpdatedDateUTC changes."""
        with self.lock:
            self.state.changed()
            now = self.state.now()
            for invoice_id in ids:
                xi = self.state.invoices[invoice_id.lower()]
                xi.due_date = xi.due_date + timedelta(days=7)
                xi.updated = now
