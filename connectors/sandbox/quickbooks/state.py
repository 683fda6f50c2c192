"""The QBO company in memory: its records as QBO JSON (by entity and Id), deletions (for CDC),
id sequences, the company's defaults, seeding from a generated company, the ledger in the neutral
model (`truth`) and the state file's contents.

Nothing here locks: the sandbox calls in under its lock (HTTP handlers run under the same lock).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.quickbooks import mapping
from connectors.sandbox.clock import SandboxClock
from connectors.sandbox.effects import Effect, EffectLog, ReplayStore
from connectors.sandbox.generator import GeneratedCompany
from connectors.sandbox.messages import JsonObject, json_dumps
from connectors.sandbox.quickbooks.errors import QboFault, not_found
from policies.model.ledger import CreditNote, InvoiceStatus, LedgerSnapshot, Payment

DEFAULT_REALM_ID = "9130350000000000"
ENTITY_NAMES = ("Customer", "Invoice", "Payment", "CreditMemo", "Attachable", "Item", "Account")
WRITABLE = ("Customer", "Invoice", "Payment", "CreditMemo", "Attachable", "Item")
URL_ENTITY = {name.lower(): name for name in ENTITY_NAMES}  # invoice -> Invoice (URLs, refs)
JSON_CONTENT_TYPE = "application/json;charset=utf-8"  # how QBO labels its answers (and replays)

QboRecord = dict[str, Any]  # one stored object, as QBO JSON


class QboState:
    """One QBO company. `version` changes with every write (cached query results are keyed by it);
    code that edits `entities` directly must call `changed()`."""

    def __init__(self, clock: SandboxClock, *, realm_id: str, home_currency: str) -> None:
        self.clock = clock
        self.realm_id = realm_id
        self.home_currency = home_currency
        self.version = 0
        self.effects = EffectLog(clock)
        self.replays = ReplayStore()  # answers by requestid
        self.reset()

    def reset(self) -> None:
        """An empty company with QBO's defaults: an income account and the "Services" item."""
        self.entities: dict[str, dict[str, QboRecord]] = {name: {} for name in ENTITY_NAMES}
        self.deleted: dict[str, dict[str, str]] = {name: {} for name in ENTITY_NAMES}  # Id -> when
        self.next_id: dict[str, int] = {name: 1 for name in ENTITY_NAMES}
        self.replays.replace(())
        self.effects.replace(())
        self.changed()
        self.entities["Account"]["1"] = {
            "Id": "1",
            "Name": "Services",
            "FullyQualifiedName": "Services",
            "AccountType": "Income",
            "AccountSubType": "ServiceFeeIncome",
            "Classification": "Revenue",
            "Active": True,
            "SubAccount": False,
            "CurrentBalance": Decimal(0),
            "CurrencyRef": {"value": self.home_currency, "name": self.home_currency},
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "MetaData": mapping._meta(self.clock.now()),
        }
        self.next_id["Account"] = 2
        self.entities["Item"]["1"] = {
            "Id": "1",
            "Name": "Services",
            "FullyQualifiedName": "Services",
            "Type": "Service",
            "Active": True,
            "IncomeAccountRef": {"value": "1", "name": "Services"},
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "MetaData": mapping._meta(self.clock.now()),
        }
        self.next_id["Item"] = 2

    def changed(self) -> None:
        """Bump the state version: cached query results are recomputed."""
        self.version += 1

    # ------------------------------------------------------------ stamps, ids, lookups

    def now(self) -> datetime:
        return self.clock.now()

    def stamp(self) -> str:
        """Now as MetaData times are written."""
        return mapping.format_datetime(self.now())

    def time(self) -> str:
        """Now as the `time` field of every answer."""
        return self.now().isoformat(timespec="milliseconds")

    def new_id(self, entity: str) -> str:
        value = self.next_id[entity]
        self.next_id[entity] = value + 1
        return str(value)

    def touch(self, record: QboRecord) -> None:
        """A record changed: next SyncToken, LastUpdatedTime now."""
        self.changed()
        record["SyncToken"] = str(int(record.get("SyncToken", "0")) + 1)
        meta = record.setdefault("MetaData", {})
        meta["LastUpdatedTime"] = self.stamp()
        meta.setdefault("CreateTime", meta["LastUpdatedTime"])

    def get(self, entity: str, entity_id: object) -> QboRecord:
        text = str(entity_id or "")
        if text and not text.isdigit():
            raise QboFault(
                "2030", "Invalid ID", f"Id should be a valid number. Supplied value:{text}", element="Id"
            )
        record = self.entities[entity].get(text)
        if record is None:
            raise not_found(entity, text)
        return record

    def customer_of(self, body: JsonObject) -> QboRecord:
        """The customer a body's CustomerRef names (Fault 2020 without one, 2500 if unknown)."""
        ref = body.get("CustomerRef")
        value = ref.get("value") if isinstance(ref, dict) else None
        if not value:
            raise QboFault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter CustomerRef is missing in the request",
                element="CustomerRef",
            )
        customer = self.entities["Customer"].get(str(value))
        if customer is None:
            raise QboFault("2500", "Invalid Reference Id", f"Invalid Reference Id : Customer {value}")
        return customer

    def recompute_customer_balances(self) -> None:
        self.changed()
        totals: dict[str, Decimal] = {}
        for invoice in self.entities["Invoice"].values():
            customer_id = invoice["CustomerRef"]["value"]
            totals[customer_id] = totals.get(customer_id, Decimal(0)) + Decimal(str(invoice["Balance"]))
        for customer_id, customer in self.entities["Customer"].items():
            customer["Balance"] = customer["BalanceWithJobs"] = totals.get(customer_id, Decimal(0))

    # ------------------------------------------------------------ seeding

    def seed(self, company: GeneratedCompany) -> None:
        """Replace the ledger with a generated company (QBO has no draft invoices: drafts are left out)."""
        self.reset()
        ceiling = self.now() - timedelta(hours=1)  # older than any cursor overlap
        if company.currency:
            self.home_currency = company.currency

        def clamp(moment: datetime | None) -> datetime:
            return min(moment, ceiling) if moment is not None else ceiling

        names: dict[str, str] = {}
        emails: dict[str, str | None] = {}
        for customer in company.customers:
            record = mapping.customer_to_qbo(customer)
            record["MetaData"] = mapping._meta(clamp(customer.updated_at))
            self.entities["Customer"][customer.id] = record
            names[customer.id] = customer.name
            emails[customer.id] = customer.emails[0] if customer.emails else None
        linked: dict[str, list[dict[str, str]]] = {}

        def settle(entity: str, settlement: Payment | CreditNote, record: QboRecord) -> None:
            """Store a payment or credit memo and link it to the invoices it is allocated to."""
            record["MetaData"] = mapping._meta(clamp(settlement.updated_at))
            self.entities[entity][settlement.id] = record
            for allocation in settlement.allocations:
                linked.setdefault(allocation.invoice_id, []).append(
                    {"TxnId": settlement.id, "TxnType": entity}
                )

        for payment in company.payments:
            settle("Payment", payment, mapping.payment_to_qbo(payment, names.get(payment.customer_id, "")))
        for note in company.credit_notes:
            settle("CreditMemo", note, mapping.credit_memo_to_qbo(note, names.get(note.customer_id, "")))
        for invoice in company.invoices:
            if invoice.status is InvoiceStatus.DRAFT:
                continue
            record = mapping.invoice_to_qbo(
                invoice, names.get(invoice.customer_id, ""), emails.get(invoice.customer_id)
            )
            record["MetaData"] = mapping._meta(clamp(invoice.updated_at))
            record["LinkedTxn"] = linked.get(invoice.id, [])
            self.entities["Invoice"][invoice.id] = record
        for entity in ("Customer", "Invoice", "Payment", "CreditMemo"):
            ids = [int(i) for i in self.entities[entity] if i.isdigit()]
            self.next_id[entity] = max(ids, default=0) + 1
        self.recompute_customer_balances()
        self.changed()

    # ------------------------------------------------------------ the neutral model

    def truth(self) -> LedgerSnapshot:
        """Every record of the ledger in the neutral model (inactive customers with active=False)."""
        result: dict[str, dict[str, Any]] = {}
        for neutral, entity in mapping.QBO_ENTITY.items():
            records, quarantined = mapping.map_records(neutral, self.entities[entity].values())
            if quarantined:
                raise AssertionError(f"sandbox holds unreadable records: {quarantined[:3]}")
            result[neutral] = {r.id: r for r in records}
        return LedgerSnapshot(
            customers=result["customer"],
            invoices=result["invoice"],
            payments=result["payment"],
            credit_notes=result["credit_note"],
        )

    def record(self, entity: str, entity_id: str) -> QboRecord:
        """A copy of one stored QBO record."""
        copy: QboRecord = json.loads(json_dumps(self.get(entity, entity_id)), parse_float=Decimal)
        return copy

    # ------------------------------------------------------------ the state file

    def dump(self) -> JsonObject:
        """The state file's contents."""
        return {
            "version": 1,
            "ledger": "quickbooks",
            "realm_id": self.realm_id,
            "home_currency": self.home_currency,
            "clock_today": self.clock.today().isoformat(),
            "entities": self.entities,
            "deleted": self.deleted,
            "next_id": self.next_id,
            "replays": {
                key: [status, body.decode("utf-8")] for key, (status, body, _) in self.replays.items()
            },
            "effects": [
                {
                    "kind": e.kind,
                    "invoice_id": e.invoice_id,
                    "idempotency_key": e.idempotency_key,
                    "amount": str(e.amount) if e.amount is not None else None,
                    "at": e.at.isoformat(),
                    "detail": e.detail,
                }
                for e in self.effects
            ],
        }

    def restore(self, data: JsonObject) -> None:
        """Replace the ledger with a state file's contents (`dump`, numbers read as Decimal)."""
        self.reset()
        self.realm_id = str(data.get("realm_id", self.realm_id))
        self.home_currency = data.get("home_currency", self.home_currency)
        for name in ENTITY_NAMES:
            self.entities[name].update(data.get("entities", {}).get(name, {}))
            self.deleted[name].update(data.get("deleted", {}).get(name, {}))
        self.next_id.update({k: int(v) for k, v in data.get("next_id", {}).items()})
        self.replays.replace(
            (k, (int(v[0]), str(v[1]).encode("utf-8"), {"Content-Type": JSON_CONTENT_TYPE}))
            for k, v in data.get("replays", {}).items()
        )
        self.effects.replace(
            Effect(
                e["kind"],
                e["invoice_id"],
                e.get("idempotency_key"),
                Decimal(e["amount"]) if e.get("amount") is not None else None,
                datetime.fromisoformat(e["at"]),
                e.get("detail", ""),
            )
            for e in data.get("effects", [])
        )
        self.changed()
