"""The QBO write operations: create / update (SyncToken checked, 5010 Stale Object Error when
stale) / delete / void of one object, invoice send, and batch (at most 30 BatchItemRequest, each
processed on its own), with the effects exactly-once tests count.

Idempotency: a write repeated with the same `requestid` replays the first answer (routes keep the
answers, see state.replays); inside a batch the bId is the effect's key. Invoice send has NO such
protection, as in QBO: each call sends.
"""

from __future__ import annotations

from decimal import Decimal

from connectors.quickbooks import mapping
from connectors.sandbox.messages import JsonObject
from connectors.sandbox.quickbooks.create import ITEM_DETAIL_TYPES, QboCreator
from connectors.sandbox.quickbooks.errors import QboFault, parse_decimal
from connectors.sandbox.quickbooks.query import QboQuery
from connectors.sandbox.quickbooks.state import ENTITY_NAMES, WRITABLE, QboRecord, QboState

BATCH_LIMIT = 30


class QboWriter:
    """The write operations over one company's state."""

    def __init__(self, state: QboState, create: QboCreator, query: QboQuery) -> None:
        self.state = state
        self.create = create
        self.query = query  # batch items may be queries

    def write(self, entity: str, operation: str, body: JsonObject, key: str | None) -> QboRecord:
        """POST /{entity}[?operation=delete|void]: update or delete/void when the body has an Id
        (its SyncToken must be current), else create. `key` is the effect's idempotency key."""
        if entity not in WRITABLE:
            raise QboFault("500", "Unsupported Operation", f"Operation on {entity} is not supported.")
        if body.get("Id") not in (None, ""):
            record = self.state.get(entity, body["Id"])
            if str(body.get("SyncToken", "")) != str(record.get("SyncToken")):
                raise QboFault(
                    "5010",
                    "Stale Object Error",
                    f"Stale Object Error : You and another user were working on {entity} {record['Id']} at "
                    "the same time. The other user finished before you did, so your work was not saved.",
                )
            if operation == "delete":
                self.delete(entity, record)
                return {"Id": record["Id"], "status": "Deleted", "domain": "QBO"}
            if operation == "void":
                if entity != "Invoice":
                    raise QboFault("500", "Unsupported Operation", f"void is not supported on {entity}")
                return self.void(record)
            return self.update(entity, record, body, key)
        if operation in ("delete", "void"):
            raise QboFault("2020", "Required param missing", "Id is required", element="Id")
        record = self.create.create(entity, body)
        effects = self.state.effects
        if entity == "Invoice":
            effects.record(
                "fee_invoice",
                record["Id"],
                key,
                Decimal(str(record["TotalAmt"])),
                record.get("PrivateNote", ""),
            )
        elif entity == "CreditMemo":
            linked = next(
                (t["TxnId"] for t in record.get("LinkedTxn", []) if t.get("TxnType") == "Invoice"), ""
            )
            effects.record(
                "credit_note", linked, key, Decimal(str(record["TotalAmt"])), record.get("PrivateNote", "")
            )
        elif entity == "Attachable":
            refs = record.get("AttachableRef") or []
            target = next(
                (r["EntityRef"]["value"] for r in refs if r.get("EntityRef", {}).get("type") == "Invoice"), ""
            )
            effects.record("note", target, key, None, record.get("Note", ""))
        return record

    def send(self, invoice_id: str, send_to: str | None, key: str | None) -> QboRecord:
        """POST /invoice/{id}/send[?sendTo=]: email the invoice (every call sends)."""
        invoice = self.state.get("Invoice", invoice_id)
        if send_to:
            invoice["BillEmail"] = {"Address": send_to}
        address = (invoice.get("BillEmail") or {}).get("Address")
        if not address:
            raise QboFault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: Email address is missing. Add an email address and try again.",
            )
        invoice["EmailStatus"] = "EmailSent"
        invoice["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": self.state.stamp()}
        self.state.touch(invoice)
        # Deliberately no requestid replay: QBO sends again on every call.
        self.state.effects.record("email", invoice["Id"], key, None, address)
        return invoice

    def batch(self, body: JsonObject) -> JsonObject:
        """POST /batch: each BatchItemRequest (a query or a write) answered on its own."""
        items = body.get("BatchItemRequest")
        if not isinstance(items, list) or not items:
            raise QboFault("2020", "Required param missing", "BatchItemRequest is required")
        if len(items) > BATCH_LIMIT:
            raise QboFault(
                "1001", "Batch size exceeded", f"Batch request can have at most {BATCH_LIMIT} items"
            )
        responses: list[JsonObject] = []
        for item in items:
            bid = str(item.get("bId", ""))
            try:
                if "Query" in item:
                    responses.append({"bId": bid, "QueryResponse": self.query.run(str(item["Query"]))})
                    continue
                operation = str(item.get("operation") or "create").lower()
                entity = next((name for name in ENTITY_NAMES if name in item), None)
                if entity is None or not isinstance(item[entity], dict):
                    raise QboFault(
                        "2000", "Request has invalid or unsupported property", "no entity in batch item"
                    )
                key = bid or None
                record = self.write(
                    entity, "" if operation in ("create", "update") else operation, item[entity], key
                )
                responses.append({"bId": bid, entity: record})
            except QboFault as fault:
                responses.append({"bId": bid, "Fault": fault.body()})
        return {"BatchItemResponse": responses}

    def update(self, entity: str, record: QboRecord, body: JsonObject, key: str | None) -> QboRecord:
        if entity not in ("Customer", "Invoice"):
            raise QboFault(
                "500", "Unsupported Operation", f"update of {entity} is not supported by the sandbox"
            )
        protected = {"Id", "SyncToken", "MetaData", "domain", "sparse", "Balance", "TotalAmt"}
        old_line_ids = {str(line.get("Id")) for line in record.get("Line", []) if line.get("Id")}
        if body.get("sparse") in (True, "true"):
            updated = dict(record)
            updated.update({k: v for k, v in body.items() if k not in protected})
        else:
            updated = {k: v for k, v in body.items() if k not in protected}
            for name in protected:
                if name in record:
                    updated[name] = record[name]
        if entity == "Customer":
            name = str(updated.get("DisplayName") or "").strip()
            if not name:
                raise QboFault(
                    "2020", "Required param missing", "DisplayName is required", element="DisplayName"
                )
            if any(
                c.get("DisplayName") == name and c["Id"] != record["Id"]
                for c in self.state.entities["Customer"].values()
            ):
                raise QboFault(
                    "6240", "Duplicate Name Exists Error", "The name supplied already exists. : null"
                )
        else:
            self.state.customer_of(updated)
            added = [
                line
                for line in updated.get("Line", [])
                if isinstance(line, dict)
                and line.get("DetailType") in ITEM_DETAIL_TYPES
                and str(line.get("Id") or "") not in old_line_ids
            ]
            lines, total = self.create.priced_lines(updated.get("Line"))
            paid = Decimal(str(record["TotalAmt"])) - Decimal(str(record["Balance"]))
            if total < paid:
                raise QboFault(
                    "6000", "A business validation error has occurred", "total below amounts received"
                )
            updated["Line"] = lines
            updated["TotalAmt"] = total
            updated["Balance"] = total - paid
            for line in added:
                amount = parse_decimal(line.get("Amount", 0), "Amount")
                self.state.effects.record("fee_line", record["Id"], key, amount, line.get("Description", ""))
        record.clear()
        record.update(updated)
        self.state.touch(record)
        if entity == "Invoice":
            self.state.recompute_customer_balances()
        return record

    def void(self, invoice: QboRecord) -> QboRecord:
        for line in invoice.get("Line", []):
            line["Amount"] = Decimal(0)
        invoice["TotalAmt"] = Decimal(0)
        invoice["Balance"] = Decimal(0)
        invoice["PrivateNote"] = mapping.VOIDED_NOTE
        self.state.touch(invoice)
        return invoice

    def delete(self, entity: str, record: QboRecord) -> None:
        self.state.changed()
        if entity == "Invoice" and record.get("LinkedTxn"):
            raise QboFault("6480", "Deletion failed", "This transaction is linked to other transactions")
        del self.state.entities[entity][record["Id"]]
        self.state.deleted[entity][record["Id"]] = self.state.stamp()
