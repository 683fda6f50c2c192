"""The Xero write endpoints: invoices (create, update, void), email, history notes, payments,
credit notes and their allocations, and the Idempotency-Key rule around them: the same key on
the same endpoint replays the stored answer and has no second effect. Effects (emails, notes,
fee invoices, credit notes) are recorded for exactly-once tests.

Handlers read their own request bodies: Xero checks the target (404, status) before the body.
"""

from __future__ import annotations

import re
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

from connectors.sandbox.effects import EffectKind
from connectors.sandbox.messages import Handler, JsonObject, SandboxRequest, SandboxResponse, json_response
from connectors.sandbox.xero.errors import XeroValidation, not_found, validation_response
from connectors.sandbox.xero.records import Line, XContact, XCreditNote, XHistory, XInvoice, XPayment
from connectors.sandbox.xero.render import XeroRenderer
from connectors.sandbox.xero.state import XeroState
from connectors.xero.mapping import parse_date
from policies.model.money import round_half_up

_INVOICE_STATUS_CHANGES = {
    ("DRAFT", "AUTHORISED"),
    ("SUBMITTED", "AUTHORISED"),
    ("AUTHORISED", "VOIDED"),
    ("DRAFT", "DELETED"),
    ("SUBMITTED", "DELETED"),
    ("DRAFT", "SUBMITTED"),
}


class XeroWriter:
    """The write handlers over one organisation's state."""

    def __init__(self, state: XeroState, render: XeroRenderer) -> None:
        self.state = state
        self.render = render
        self.current_key: str | None = None  # the Idempotency-Key of the write being handled

    # ------------------------------------------------------------ idempotency and effects

    def idempotent(self, handler: Handler) -> Handler:
        """Replay the stored answer of a repeated Idempotency-Key (per method and path)."""

        def wrapped(request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
            key = request.headers.get("Idempotency-Key")
            if not key:
                return handler(request, match)
            if len(key) > 128:
                return validation_response(["Idempotency-Key must be 128 characters or fewer"])
            slot = f"{request.method} {request.path} {key}"
            stored = self.state.replays.replay(slot)
            if stored is not None:
                return stored
            self.current_key = key
            try:
                response = handler(request, match)
            finally:
                self.current_key = None
            if response.status < 500:
                self.state.replays.remember(slot, response)
            return response

        return wrapped

    def _effect(self, kind: EffectKind, invoice_id: str, amount: Decimal | None, detail: str = "") -> None:
        self.state.effects.record(kind, invoice_id, self.current_key, amount, detail)

    # ------------------------------------------------------------ invoices

    def put_invoices(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        """PUT creates; POST also updates the invoices that carry an InvoiceID."""
        items = _items(_body(request), "Invoices")
        summarize = (request.param("summarizeErrors") or "true").lower() != "false"
        results: list[tuple[XInvoice | None, JsonObject, list[str]]] = []
        for item in items:
            try:
                if request.method == "POST" and isinstance(item, dict) and item.get("InvoiceID"):
                    results.append((self._update_invoice(item), item, []))
                else:
                    results.append((self._new_invoice(item), item, []))
            except XeroValidation as error:
                results.append((None, item if isinstance(item, dict) else {}, error.messages))
        if summarize and any(errors for _, _, errors in results):
            elements = [
                {**_safe_echo(item), "ValidationErrors": [{"Message": m} for m in errors], "HasErrors": True}
                for _, item, errors in results
                if errors
            ]
            return validation_response([], elements)
        rendered: list[JsonObject] = []
        for xi, item, errors in results:
            if xi is None:
                rendered.append(
                    {
                        **_safe_echo(item),
                        "HasErrors": True,
                        "ValidationErrors": [{"Message": m} for m in errors],
                    }
                )
                continue
            if xi.id not in self.state.invoices:
                self.state.invoices[xi.id] = xi
                self._effect("fee_invoice", xi.id, xi.total, xi.reference or "")
            rendered.append(self.render.invoice(xi))
        return json_response({"Id": str(uuid.uuid4()), "Status": "OK", "Invoices": rendered})

    def _new_invoice(self, item: Any) -> XInvoice:
        if not isinstance(item, dict):
            raise XeroValidation(["an invoice is not an object"])
        kind = item.get("Type")
        if kind not in ("ACCREC", "ACCPAY"):
            raise XeroValidation(["Invoice Type must be ACCREC or ACCPAY"])
        state = self.state
        contact = self._contact_of(item)
        lines = _lines(item)
        currency = str(item.get("CurrencyCode") or contact.currency or state.base_currency).upper()
        lines = [(d, round_half_up(a, currency)) for d, a in lines]
        issue = _date_field(item, "Date", state.clock.today())
        due = _date_field(item, "DueDate", None)
        status = str(item.get("Status") or "DRAFT")
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            raise XeroValidation([f"Invoice Status {status} cannot be set when creating an invoice"])
        number = item.get("InvoiceNumber")
        if number and any(x.number == number for x in state.invoices.values()):
            raise XeroValidation(["Invoice # must be unique."])
        state.invoice_seq += 1
        return XInvoice(
            id=str(uuid.uuid4()),
            number=str(number or f"INV-{state.invoice_seq:06d}"),
            type=kind,
            contact_id=contact.id,
            date=issue,
            due_date=due,
            currency=currency,
            status=status,
            lines=lines,
            total=sum((a for _, a in lines), Decimal(0)),
            sent=False,
            reference=str(item["Reference"]) if item.get("Reference") else None,
            updated=state.now(),
        )

    def _update_invoice(self, item: JsonObject) -> XInvoice:
        xi = self.state.invoices.get(str(item["InvoiceID"]).lower())
        if xi is None:
            raise XeroValidation(["The invoice could not be found"])
        if "Reference" in item:
            xi.reference = str(item["Reference"] or "") or None
        if item.get("DueDate"):
            xi.due_date = _date_field(item, "DueDate", None)
        status = item.get("Status")
        if status and status != xi.status:
            if (xi.status, status) not in _INVOICE_STATUS_CHANGES:
                raise XeroValidation([f"Invoice status cannot change from {xi.status} to {status}"])
            if status == "VOIDED" and self.state.paid(xi) > 0:
                raise XeroValidation(["Invoice not of valid status for modification: it has payments"])
            xi.status = status
        xi.updated = self.state.now()
        return xi

    def email(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        del request
        xi = self.state.invoices.get(match["id"].lower())
        if xi is None:
            return not_found()
        if xi.type != "ACCREC" or xi.status not in ("AUTHORISED", "PAID", "SUBMITTED"):
            raise XeroValidation(["Invoice must be of status AUTHORISED, SUBMITTED or PAID to be emailed"])
        contact = self.state.contacts.get(xi.contact_id)
        if contact is None or not contact.email:
            raise XeroValidation(["The contact has no email address"])
        xi.sent = True
        xi.updated = self.state.now()
        self.state.history.setdefault(xi.id, []).append(
            XHistory(
                "Emailed", f"Invoice {xi.number} emailed to {contact.email}.", "relance", self.state.now()
            )
        )
        self._effect("email", xi.id, None, contact.email)
        return SandboxResponse(204, b"", {})

    def put_history(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        xi = self.state.invoices.get(match["id"].lower())
        if xi is None:
            return not_found()
        items = _items(_body(request), "HistoryRecords")
        created: list[XHistory] = []
        for item in items:
            details = item.get("Details") if isinstance(item, dict) else None
            if not isinstance(details, str) or not details.strip():
                raise XeroValidation(["The Details of a history record are required"])
            if len(details) > 2500:
                raise XeroValidation(["The Details of a history record must be 2500 characters or fewer"])
            created.append(XHistory("Note", details, "relance", self.state.now()))
        for record in created:
            self.state.history.setdefault(xi.id, []).append(record)
            self._effect("note", xi.id, None, record.details)
        return json_response({"HistoryRecords": [self.render.history(h) for h in created]})

    # ------------------------------------------------------------ payments

    def put_payments(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        items = _items(_body(request), "Payments")
        created: list[XPayment] = []
        for item in items:
            xi = self._invoice_of(item)
            if xi.status != "AUTHORISED":
                raise XeroValidation(["Payment cannot be applied: the invoice is not AUTHORISED"])
            amount = Decimal(str(item.get("Amount")))
            if amount <= 0 or amount > self.state.due(xi):
                raise XeroValidation(["Payment amount exceeds the amount outstanding on this document"])
            on = _date_field(item, "Date", self.state.clock.today())
            created.append(self.state.apply_payment(xi, amount, on, item.get("Reference")))
        return json_response({"Payments": [self.render.payment(p) for p in created]})

    # ------------------------------------------------------------ credit notes

    def put_credit_notes(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        """Several credit notes per PUT; with summarizeErrors=false each is created or refused on its
        own (HasErrors + ValidationErrors in its place), as Xero does; otherwise one refusal refuses all."""
        items = _items(_body(request), "CreditNotes")
        summarize = (request.param("summarizeErrors") or "true").lower() != "false"
        results: list[tuple[XCreditNote | None, Any, list[str]]] = []
        for item in items:
            try:
                results.append((self._new_credit_note(item), item, []))
            except XeroValidation as error:
                if summarize:
                    raise
                results.append((None, item, error.messages))
        rendered: list[JsonObject] = []
        for xc, item, errors in results:
            if xc is None:
                echo = {
                    k: item[k]
                    for k in ("Type", "Reference", "Contact", "CurrencyCode", "Status")
                    if isinstance(item, dict) and item.get(k) is not None
                }
                rendered.append(
                    {**echo, "HasErrors": True, "ValidationErrors": [{"Message": m} for m in errors]}
                )
                continue
            self.state.credit_notes[xc.id] = xc
            rendered.append(self.render.credit_note(xc))
        return json_response({"Id": str(uuid.uuid4()), "Status": "OK", "CreditNotes": rendered})

    def _new_credit_note(self, item: Any) -> XCreditNote:
        if not isinstance(item, dict) or item.get("Type") not in ("ACCRECCREDIT", "ACCPAYCREDIT"):
            raise XeroValidation(["CreditNote Type must be ACCRECCREDIT or ACCPAYCREDIT"])
        state = self.state
        contact = self._contact_of(item)
        currency = str(item.get("CurrencyCode") or contact.currency or state.base_currency).upper()
        lines = [(d, round_half_up(a, currency)) for d, a in _lines(item)]
        status = str(item.get("Status") or "DRAFT")
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED"):
            raise XeroValidation([f"CreditNote Status {status} cannot be set when creating"])
        issued = _date_field(item, "Date", state.clock.today())
        state.credit_seq += 1
        return XCreditNote(
            id=str(uuid.uuid4()),
            number=str(item.get("CreditNoteNumber") or f"CN-{state.credit_seq:05d}"),
            contact_id=contact.id,
            date=issued,
            currency=currency,
            total=sum((a for _, a in lines), Decimal(0)),
            lines=lines,
            status=status,
            reference=str(item["Reference"]) if item.get("Reference") else None,
            updated=state.now(),
        )

    def put_allocations(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        state = self.state
        xc = state.credit_notes.get(match["id"].lower())
        if xc is None:
            return not_found()
        if xc.status != "AUTHORISED":
            raise XeroValidation(["Only AUTHORISED credit notes can be allocated"])
        items = _items(_body(request), "Allocations")
        planned: list[tuple[XInvoice, Decimal, date]] = []
        remaining = xc.total - sum((a[2] for a in xc.allocations), Decimal(0))
        for item in items:
            xi = self._invoice_of(item)
            if xi.contact_id != xc.contact_id or xi.currency != xc.currency:
                raise XeroValidation(
                    ["The credit note and the invoice must have the same contact and currency"]
                )
            amount = Decimal(str(item.get("Amount")))
            if amount <= 0 or amount > remaining or amount > state.due(xi):
                raise XeroValidation(["The amount allocated exceeds the remaining credit or the amount due"])
            remaining -= amount
            planned.append((xi, amount, _date_field(item, "Date", state.clock.today())))
        rendered: list[JsonObject] = []
        for xi, amount, day in planned:
            alloc_id = str(uuid.uuid4())
            xc.allocations.append((alloc_id, xi.id, amount, day))
            xi.credited.append((xc.id, amount, day))
            state.settle_status(xi, day)
            xi.updated = state.now()
            self._effect("credit_note", xi.id, amount, xc.id)
            rendered.append(self.render.new_allocation(alloc_id, xc, xi, amount, day))
        if remaining <= 0:
            xc.status = "PAID"
        xc.updated = state.now()
        return json_response({"Allocations": rendered})

    # ------------------------------------------------------------ references in a body

    def _contact_of(self, item: JsonObject) -> XContact:
        contact = item.get("Contact")
        contact_id = contact.get("ContactID") if isinstance(contact, dict) else None
        if not isinstance(contact_id, str) or contact_id.lower() not in self.state.contacts:
            raise XeroValidation(["The contact could not be found"])
        return self.state.contacts[contact_id.lower()]

    def _invoice_of(self, item: Any) -> XInvoice:
        """The invoice an item's Invoice.InvoiceID names (payments, allocations)."""
        invoice = item.get("Invoice") if isinstance(item, dict) else None
        invoice_id = invoice.get("InvoiceID") if isinstance(invoice, dict) else None
        xi = self.state.invoices.get(str(invoice_id).lower()) if invoice_id else None
        if xi is None:
            raise XeroValidation(["The invoice could not be found"])
        return xi


# ---------------------------------------------------------------- reading a write's body


def _body(request: SandboxRequest) -> JsonObject:
    data = request.payload()
    if not isinstance(data, dict):
        raise XeroValidation(["the request body must be a JSON object"])
    return data


def _items(data: JsonObject, envelope: str) -> list[Any]:
    items = data.get(envelope)
    if items is None and data and envelope not in data:
        items = [data]  # Xero also accepts a single object without the envelope
    if not isinstance(items, list) or not items:
        raise XeroValidation([f"no {envelope} in the request body"])
    return items


def _date_field(item: JsonObject, name: str, default: date | None) -> date:
    value = item.get(name)
    if value in (None, ""):
        if default is None:
            raise XeroValidation([f"{name} is required"])
        return default
    try:
        return parse_date(value)
    except ValueError:
        raise XeroValidation([f"{name} is not a valid date"]) from None


def _lines(item: JsonObject) -> list[Line]:
    raw_lines = item.get("LineItems")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise XeroValidation(["At least one line item is required"])
    lines: list[Line] = []
    for raw in raw_lines:
        if not isinstance(raw, dict):
            raise XeroValidation(["a line item is not an object"])
        description = str(raw.get("Description") or "")
        if not description:
            raise XeroValidation(["Description is required for each line item"])
        if raw.get("LineAmount") is not None:
            amount = Decimal(str(raw["LineAmount"]))
        else:
            amount = Decimal(str(raw.get("UnitAmount") or 0)) * Decimal(str(raw.get("Quantity") or 1))
        lines.append((description, amount))
    return lines


def _safe_echo(item: JsonObject) -> JsonObject:
    """The fields of a refused invoice Xero echoes back in its validation element."""
    keep = ("Type", "InvoiceNumber", "Reference", "Contact", "CurrencyCode", "Status")
    return {k: item[k] for k in keep if k in item and item[k] is not None}
