"""What creating each writable QBO entity does: Customer, Item, Invoice, Payment, CreditMemo and
Attachable, with QBO's validation (sales lines need SalesItemLineDetail.ItemRef naming an existing,
active Item; an Item of Type Service needs an existing income account), payments and credit memos
applied to invoice balances, and customer balances kept up to date.

The company starts with the Item "Services" and one Income account (see state); /item creates more.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from connectors.sandbox.messages import JsonObject
from connectors.sandbox.quickbooks.errors import QboFault, parse_decimal
from connectors.sandbox.quickbooks.state import URL_ENTITY, QboRecord, QboState

ITEM_TYPES = ("Service", "NonInventory", "Inventory", "Other Charge", "Group", "Category", "Bundle")
ITEM_DETAIL_TYPES = ("SalesItemLineDetail", "DescriptionOnly", "GroupLineDetail")


class QboCreator:
    """Creates records in one company's state (no effects, no SyncToken: see writes)."""

    def __init__(self, state: QboState) -> None:
        self.state = state

    def create(self, entity: str, body: JsonObject) -> QboRecord:
        """A new `entity` record from a request body (`entity` is one of state.WRITABLE)."""
        creators = {
            "Customer": self.customer,
            "Invoice": self.invoice,
            "Payment": self.payment,
            "CreditMemo": self.credit_memo,
            "Attachable": self.attachable,
            "Item": self.item,
        }
        return creators[entity](body)

    def _base_record(self, entity: str) -> QboRecord:
        self.state.changed()
        stamp = self.state.stamp()
        return {
            "domain": "QBO",
            "sparse": False,
            "Id": self.state.new_id(entity),
            "SyncToken": "0",
            "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
        }

    def priced_lines(self, lines: object, *, required: bool = True) -> tuple[list[JsonObject], Decimal]:
        """Sales lines checked and numbered (LineNum, missing Ids), with their SubTotalLine and total."""
        if not isinstance(lines, list) or (required and not lines):
            raise QboFault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter Line is missing in the request",
                element="Line",
            )
        result: list[JsonObject] = []
        total = Decimal(0)
        used_ids = {str(line.get("Id")) for line in lines if isinstance(line, dict) and line.get("Id")}
        next_line = max((int(i) for i in used_ids if i.isdigit()), default=0) + 1
        for line in lines:
            if not isinstance(line, dict):
                raise QboFault(
                    "2000", "Request has invalid or unsupported property", "Line entries must be objects"
                )
            detail_type = line.get("DetailType")
            if detail_type == "SubTotalLineDetail":
                continue
            if detail_type not in ITEM_DETAIL_TYPES:
                raise QboFault(
                    "2010",
                    "Request has invalid or unsupported property",
                    f"DetailType {detail_type!r}",
                    element="Line",
                )
            if detail_type == "SalesItemLineDetail":
                self._check_item_ref(line.get("SalesItemLineDetail"))
            copy = dict(line)
            copy["Amount"] = parse_decimal(line.get("Amount", 0), "Line.Amount")
            if not copy.get("Id"):
                copy["Id"] = str(next_line)
                next_line += 1
            total += copy["Amount"]
            result.append(copy)
        for number, line in enumerate(result, start=1):
            line["LineNum"] = number
        result.append({"Amount": total, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
        return result, total

    def _check_item_ref(self, detail: object) -> None:
        """A sales line must name an existing, active Item (QBO refuses the whole request)."""
        ref = detail.get("ItemRef") if isinstance(detail, dict) else None
        value = str(ref.get("value") or "") if isinstance(ref, dict) else ""
        if not value:
            raise QboFault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter Line.SalesItemLineDetail.ItemRef is missing in the request",
                element="Line.SalesItemLineDetail.ItemRef",
            )
        item = self.state.entities["Item"].get(value)
        if item is None or not item.get("Active", True):
            raise QboFault(
                "2500",
                "Invalid Reference Id",
                f"Invalid Reference Id : Item assigned to this transaction has been deleted or does not "
                f"exist (Item {value})",
                element="Line.SalesItemLineDetail.ItemRef",
            )

    def _unique_name(self, entity: str, field: str, body: JsonObject) -> str:
        """The body's `field` (stripped), which QBO requires and no other `entity` may have."""
        name = str(body.get(field) or "").strip()
        if not name:
            raise QboFault("2020", "Required param missing", f"{field} is required", element=field)
        if any(record.get(field) == name for record in self.state.entities[entity].values()):
            raise QboFault("6240", "Duplicate Name Exists Error", "The name supplied already exists. : null")
        return name

    def item(self, body: JsonObject) -> QboRecord:
        name = self._unique_name("Item", "Name", body)
        item_type = str(body.get("Type") or "Service")
        if item_type not in ITEM_TYPES:
            raise QboFault(
                "2010", "Request has invalid or unsupported property", f"Type {item_type!r}", element="Type"
            )
        if item_type in ("Service", "NonInventory", "Inventory", "Other Charge"):
            ref = body.get("IncomeAccountRef")
            value = str(ref.get("value") or "") if isinstance(ref, dict) else ""
            account = self.state.entities["Account"].get(value)
            if not value:
                raise QboFault(
                    "6000",
                    "A business validation error has occurred while processing your request",
                    "Business Validation Error: Select an income account for this item.",
                    element="IncomeAccountRef",
                )
            if account is None:
                raise QboFault(
                    "2500",
                    "Invalid Reference Id",
                    f"Invalid Reference Id : Account {value}",
                    element="IncomeAccountRef",
                )
            if account.get("AccountType") not in ("Income", "Other Income"):
                raise QboFault(
                    "6000",
                    "A business validation error has occurred while processing your request",
                    f"Business Validation Error: account {value} is not an income account.",
                    element="IncomeAccountRef",
                )
            body = {**body, "IncomeAccountRef": {"value": account["Id"], "name": account.get("Name", "")}}
        record = {**body, **self._base_record("Item")}
        record.update({"Name": name, "FullyQualifiedName": name, "Type": item_type})
        record.setdefault("Active", True)
        record.setdefault("Taxable", False)
        record.setdefault("UnitPrice", Decimal(0))
        self.state.entities["Item"][record["Id"]] = record
        return record

    def customer(self, body: JsonObject) -> QboRecord:
        name = self._unique_name("Customer", "DisplayName", body)
        record = {**body, **self._base_record("Customer")}
        record.setdefault("Active", True)
        record.setdefault(
            "CurrencyRef", {"value": self.state.home_currency, "name": self.state.home_currency}
        )
        record.setdefault("Balance", Decimal(0))
        record.setdefault("FullyQualifiedName", name)
        self.state.entities["Customer"][record["Id"]] = record
        return record

    def invoice(self, body: JsonObject) -> QboRecord:
        customer = self.state.customer_of(body)
        lines, total = self.priced_lines(body.get("Line"))
        record = {**body, **self._base_record("Invoice")}
        today = self.state.clock.today()
        txn_date = body.get("TxnDate") or today.isoformat()
        record.update(
            {
                "Line": lines,
                "TotalAmt": total,
                "Balance": total,
                "TxnDate": txn_date,
                "DueDate": body.get("DueDate")
                or (date.fromisoformat(txn_date) + timedelta(days=30)).isoformat(),
                "DocNumber": body.get("DocNumber") or str(1000 + int(record["Id"])),
                "CurrencyRef": body.get("CurrencyRef") or customer.get("CurrencyRef"),
                "CustomerRef": {"value": customer["Id"], "name": customer.get("DisplayName", "")},
                "EmailStatus": body.get("EmailStatus") or "NotSet",
                "PrintStatus": body.get("PrintStatus") or "NotSet",
                "LinkedTxn": [],
                "TxnTaxDetail": {"TotalTax": Decimal(0)},
            }
        )
        address = (customer.get("PrimaryEmailAddr") or {}).get("Address")
        if address and "BillEmail" not in body:
            record["BillEmail"] = {"Address": address.split(",")[0].strip()}
        self.state.entities["Invoice"][record["Id"]] = record
        return record

    def _apply_to_invoice(self, invoice_id: str, amount: Decimal, txn_id: str, txn_type: str) -> None:
        invoice = self.state.get("Invoice", invoice_id)
        balance = Decimal(str(invoice["Balance"]))
        if amount > balance:
            raise QboFault(
                "6000",
                "A business validation error has occurred while processing your request",
                f"Business Validation Error: the amount applied ({amount}) exceeds invoice {invoice_id}'s "
                f"balance ({balance})",
            )
        invoice["Balance"] = balance - amount
        invoice.setdefault("LinkedTxn", []).append({"TxnId": txn_id, "TxnType": txn_type})
        self.state.touch(invoice)

    def payment(self, body: JsonObject) -> QboRecord:
        customer = self.state.customer_of(body)
        total = parse_decimal(body.get("TotalAmt"), "TotalAmt")
        lines = body.get("Line") or []
        applied: list[tuple[str, Decimal]] = []
        for line in lines:
            amount = parse_decimal(line.get("Amount"), "Line.Amount")
            for link in line.get("LinkedTxn") or []:
                if link.get("TxnType") == "Invoice":
                    invoice = self.state.get("Invoice", link.get("TxnId"))
                    if invoice["CustomerRef"]["value"] != customer["Id"]:
                        raise QboFault(
                            "6000", "A business validation error has occurred", "invoice of another customer"
                        )
                    applied.append((invoice["Id"], amount))
        if sum((a for _, a in applied), Decimal(0)) > total:
            raise QboFault(
                "6000", "A business validation error has occurred", "applied amount exceeds TotalAmt"
            )
        record = {**body, **self._base_record("Payment")}
        for invoice_id, amount in applied:
            self._apply_to_invoice(invoice_id, amount, record["Id"], "Payment")
        record.update(
            {
                "TotalAmt": total,
                "UnappliedAmt": total - sum((a for _, a in applied), Decimal(0)),
                "TxnDate": body.get("TxnDate") or self.state.clock.today().isoformat(),
                "CurrencyRef": body.get("CurrencyRef") or customer.get("CurrencyRef"),
                "CustomerRef": {"value": customer["Id"], "name": customer.get("DisplayName", "")},
            }
        )
        self.state.entities["Payment"][record["Id"]] = record
        self.state.recompute_customer_balances()
        return record

    def credit_memo(self, body: JsonObject) -> QboRecord:
        customer = self.state.customer_of(body)
        lines, total = self.priced_lines(body.get("Line"))
        record = {**body, **self._base_record("CreditMemo")}
        remaining = total
        linked = [
            t for t in body.get("LinkedTxn") or [] if isinstance(t, dict) and t.get("TxnType") == "Invoice"
        ]
        if len(linked) > 1:
            raise QboFault(
                "6000", "A business validation error has occurred", "link a credit memo to one invoice"
            )
        if linked:
            invoice = self.state.get("Invoice", linked[0].get("TxnId"))
            applied = min(total, Decimal(str(invoice["Balance"])))
            if applied > 0:
                self._apply_to_invoice(invoice["Id"], applied, record["Id"], "CreditMemo")
            remaining = total - applied
        record.update(
            {
                "Line": lines,
                "TotalAmt": total,
                "RemainingCredit": remaining,
                "Balance": remaining,
                "TxnDate": body.get("TxnDate") or self.state.clock.today().isoformat(),
                "DocNumber": body.get("DocNumber") or f"CM-{record['Id']}",
                "CurrencyRef": body.get("CurrencyRef") or customer.get("CurrencyRef"),
                "CustomerRef": {"value": customer["Id"], "name": customer.get("DisplayName", "")},
                "LinkedTxn": [{"TxnId": t["TxnId"], "TxnType": "Invoice"} for t in linked],
                "EmailStatus": "NotSet",
            }
        )
        self.state.entities["CreditMemo"][record["Id"]] = record
        self.state.recompute_customer_balances()
        return record

    def attachable(self, body: JsonObject) -> QboRecord:
        note = body.get("Note")
        if not note and not body.get("FileName"):
            raise QboFault("2020", "Required param missing", "Note or FileName is required", element="Note")
        refs = body.get("AttachableRef") or []
        for ref in refs:
            entity_ref = ref.get("EntityRef") or {}
            entity = URL_ENTITY.get(str(entity_ref.get("type", "")).lower())
            if entity is None:
                raise QboFault("2010", "Request has invalid or unsupported property", "EntityRef.type")
            self.state.get(entity, entity_ref.get("value"))
        record = {**body, **self._base_record("Attachable")}
        self.state.entities["Attachable"][record["Id"]] = record
        return record
