"""The Xero JSON of each record, as the official OpenAPI spec (xero_accounting.yaml) shapes it:
MS-JSON dates ("/Date(1700000000000+0000)/"), UpdatedDateUTC, the nested refs and empty arrays
the SDK expects."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connectors.sandbox.messages import JsonObject
from connectors.sandbox.xero.records import Line, XContact, XCreditNote, XHistory, XInvoice, XPayment
from connectors.sandbox.xero.state import XeroState
from connectors.xero.mapping import ms_date, ms_datetime

SALES_ACCOUNT = {"AccountID": "5040915e-8ce7-4177-8d08-fde416232f18", "Code": "200"}
BANK_ACCOUNT = {"AccountID": "bd9e85e0-0478-433d-ae9f-0b3c4f04bfe4", "Code": "090"}


class XeroRenderer:
    """Records of one organisation's state to Xero JSON."""

    def __init__(self, state: XeroState) -> None:
        self.state = state

    def contact_ref(self, contact_id: str) -> JsonObject:
        contact = self.state.contacts.get(contact_id)
        ref: JsonObject = {"ContactID": contact_id}
        if contact is not None:
            ref["Name"] = contact.name
        return ref

    def contact(self, contact: XContact) -> JsonObject:
        body: JsonObject = {
            "ContactID": contact.id,
            "ContactStatus": contact.status,
            "Name": contact.name,
            "Addresses": [{"AddressType": "STREET", "Country": contact.country or ""}],
            "Phones": [],
            "UpdatedDateUTC": ms_datetime(contact.updated),
            "ContactGroups": [
                {
                    "Name": name,
                    "Status": "ACTIVE",
                    "ContactGroupID": self.state.uuid("group", name),
                    "Contacts": [],
                }
                for name in contact.groups
            ],
            "IsSupplier": False,
            "IsCustomer": True,
            "ContactPersons": [],
            "HasAttachments": False,
            "HasValidationErrors": False,
        }
        if contact.email:
            body["EmailAddress"] = contact.email
        if contact.currency:
            body["DefaultCurrency"] = contact.currency
        return body

    def line_items(self, lines: list[Line], kind: str, owner: str) -> list[JsonObject]:
        return [
            {
                "LineItemID": self.state.uuid(f"{kind}-line", f"{owner}:{index}"),
                "Description": description,
                "Quantity": Decimal(1),
                "UnitAmount": amount,
                "LineAmount": amount,
                "TaxAmount": Decimal(0),
                "TaxType": "NONE",
                "AccountCode": SALES_ACCOUNT["Code"],
                "AccountID": SALES_ACCOUNT["AccountID"],
                "Tracking": [],
            }
            for index, (description, amount) in enumerate(lines)
        ]

    def invoice(self, xi: XInvoice) -> JsonObject:
        state = self.state
        paid = state.paid(xi)
        credited = state.credited(xi)
        body: JsonObject = {
            "Type": xi.type,
            "InvoiceID": xi.id,
            "InvoiceNumber": xi.number,
            "Reference": xi.reference or "",
            "Contact": self.contact_ref(xi.contact_id),
            "Date": ms_date(xi.date),
            "DueDate": ms_date(xi.due_date),
            "Status": xi.status,
            "LineAmountTypes": "NoTax",
            "LineItems": self.line_items(xi.lines, "invoice", xi.id),
            "SubTotal": xi.total,
            "TotalTax": Decimal(0),
            "Total": xi.total,
            "AmountDue": state.due(xi),
            "AmountPaid": paid,
            "AmountCredited": credited,
            "CurrencyCode": xi.currency,
            "CurrencyRate": Decimal(1),
            "SentToContact": xi.sent,
            "IsDiscounted": False,
            "HasAttachments": False,
            "HasErrors": False,
            "UpdatedDateUTC": ms_datetime(xi.updated),
            "Payments": [
                {
                    "PaymentID": p.id,
                    "Date": ms_date(p.date),
                    "Amount": p.amount,
                    "Reference": p.reference or "",
                    "CurrencyRate": Decimal(1),
                    "HasAccount": False,
                    "HasValidationErrors": False,
                }
                for p in (state.payments[pid] for pid in xi.payment_ids)
                if p.status != "DELETED"
            ],
            "CreditNotes": [
                {
                    "CreditNoteID": note_id,
                    "CreditNoteNumber": state.credit_notes[note_id].number,
                    "AppliedAmount": amount,
                    "Date": ms_date(day),
                    "Total": state.credit_notes[note_id].total,
                    "HasErrors": False,
                }
                for note_id, amount, day in xi.credited
            ],
            "Prepayments": [],
            "Overpayments": [],
        }
        if xi.fully_paid_on is not None and xi.status == "PAID":
            body["FullyPaidOnDate"] = ms_date(xi.fully_paid_on)
        return body

    def payment(self, xp: XPayment) -> JsonObject:
        xi = self.state.invoices[xp.invoice_id]
        return {
            "PaymentID": xp.id,
            "Date": ms_date(xp.date),
            "BankAmount": xp.amount,
            "Amount": xp.amount,
            "Reference": xp.reference or "",
            "CurrencyRate": Decimal(1),
            "PaymentType": "ACCRECPAYMENT",
            "Status": xp.status,
            "UpdatedDateUTC": ms_datetime(xp.updated),
            "HasAccount": True,
            "IsReconciled": False,  # a boolean: the spec's example string would break the SDK
            "Account": dict(SALES_ACCOUNT | BANK_ACCOUNT),
            "Invoice": {
                "Type": xi.type,
                **_invoice_stub(
                    xi.id,
                    xi.number,
                    {"Contact": self.contact_ref(xi.contact_id), "CurrencyCode": xi.currency},
                ),
            },
            "HasValidationErrors": False,
        }

    def credit_note(self, xc: XCreditNote) -> JsonObject:
        allocated = sum((a[2] for a in xc.allocations), Decimal(0))
        return {
            "CreditNoteID": xc.id,
            "CreditNoteNumber": xc.number,
            "Type": "ACCRECCREDIT",
            "Contact": self.contact_ref(xc.contact_id),
            "Date": ms_date(xc.date),
            "Status": xc.status,
            "LineAmountTypes": "NoTax",
            "LineItems": self.line_items(xc.lines, "credit", xc.id),
            "SubTotal": xc.total,
            "TotalTax": Decimal(0),
            "Total": xc.total,
            "UpdatedDateUTC": ms_datetime(xc.updated),
            "CurrencyCode": xc.currency,
            "CurrencyRate": Decimal(1),
            "Reference": xc.reference or "",
            "SentToContact": False,
            "RemainingCredit": xc.total - allocated if xc.status != "VOIDED" else Decimal(0),
            "Allocations": [
                {
                    "AllocationID": alloc_id,
                    "Amount": amount,
                    "Date": ms_date(day),
                    "Invoice": _invoice_stub(invoice_id, self.state.invoices[invoice_id].number),
                    "IsDeleted": False,
                }
                for alloc_id, invoice_id, amount, day in xc.allocations
            ],
            "HasAttachments": False,
            "HasErrors": False,
        } | (
            {"FullyPaidOnDate": ms_date(xc.allocations[-1][3])}
            if xc.status == "PAID" and xc.allocations
            else {}
        )

    @staticmethod
    def new_allocation(
        alloc_id: str, xc: XCreditNote, xi: XInvoice, amount: Decimal, day: date
    ) -> JsonObject:
        """The answer to a PUT of one allocation."""
        return {
            "AllocationID": alloc_id,
            "Amount": amount,
            "Date": ms_date(day),
            "Invoice": _invoice_stub(xi.id, xi.number),
            "CreditNote": {"CreditNoteID": xc.id, "CreditNoteNumber": xc.number},
            "IsDeleted": False,
            "StatusAttributeString": "OK",
        }

    @staticmethod
    def history(record: XHistory) -> JsonObject:
        return {
            "Changes": record.changes,
            "DateUTCString": record.at.strftime("%Y-%m-%dT%H:%M:%S"),
            "DateUTC": ms_datetime(record.at),
            "User": record.user,
            "Details": record.details,
        }


def _invoice_stub(invoice_id: str, number: str, details: JsonObject | None = None) -> JsonObject:
    """An invoice as allocations and payments name it: id, number, any `details` (a payment's:
    contact and currency) and the empty collections the SDK wants."""
    return {
        "InvoiceID": invoice_id,
        "InvoiceNumber": number,
        **(details or {}),
        "Payments": [],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "HasErrors": False,
        "IsDiscounted": False,
        "LineItems": [],
    }
