"""Did a Xero write take effect? Read back after an unknown outcome: a note in the invoice's
history, a fee invoice by its key marker, a credit note by its reference and allocation."""

from __future__ import annotations

from datetime import datetime

from connectors.base import (
    AuthError,
    ConnectorError,
    CreditNoteRequest,
    DayLimitReached,
    FeeInvoice,
    LedgerEmail,
    Note,
    Verification,
    WriteRequest,
)
from connectors.xero.client import XeroClient
from connectors.xero.credit_notes import allocated_to, is_live
from connectors.xero.keys import credit_note_reference, key_marker


class XeroVerifier:
    def __init__(self, client: XeroClient) -> None:
        self.client = client

    def verify(self, request: WriteRequest, *, since: datetime) -> Verification:
        try:
            if isinstance(request, LedgerEmail | Note):
                return self._verify_history(request)
            if isinstance(request, FeeInvoice):
                return self._verify_fee_invoice(request)
            if isinstance(request, CreditNoteRequest):
                return self._verify_credit_note(request)
            return Verification.NOT_HAPPENED  # FeeLine is never sent to Xero
        except (DayLimitReached, AuthError):
            raise
        except ConnectorError:
            return Verification.UNKNOWN

    def _verify_history(self, request: LedgerEmail | Note) -> Verification:
        client = self.client
        body = client.json(
            f"GET Invoices/{request.invoice_id}/History",
            lambda: client.api.get_invoice_history(client.tenant_id, request.invoice_id, **client.options()),
        )
        records = body.get("HistoryRecords") or []
        if isinstance(request, LedgerEmail):
            # History shows that an invoice was emailed, not by which request, and its dates are
            # on the ledger's clock; the email call is idempotent (Idempotency-Key): say so.
            return Verification.UNKNOWN
        for record in records:
            if isinstance(record, dict) and str(record.get("Details", "")).startswith(request.text[:200]):
                return Verification.HAPPENED  # relance's note texts name the step: one per invoice
        return Verification.NOT_HAPPENED

    def _verify_fee_invoice(self, request: FeeInvoice) -> Verification:
        """Found by the request's own key marker on a line (not by time: the ledger's clock and
        ours differ, and a batch's Idempotency-Key does not identify one member)."""
        client = self.client
        reference = request.reference.replace('"', "")
        body = client.json(
            "GET Invoices (verify fee invoice)",
            lambda: client.api.get_invoices(
                client.tenant_id,
                where=f'Type=="ACCREC" AND Reference=="{reference}"',
                contact_i_ds=[request.customer_id],
                **client.options(),
            ),
        )
        marker = key_marker(request.key)
        for raw in body.get("Invoices") or ():
            if not is_live(raw):
                continue
            if any(marker in str((item or {}).get("Description", "")) for item in raw.get("LineItems") or ()):
                return Verification.HAPPENED
        return Verification.NOT_HAPPENED

    def _verify_credit_note(self, request: CreditNoteRequest) -> Verification:
        client = self.client
        reference = credit_note_reference(request.key)
        body = client.json(
            "GET CreditNotes (verify)",
            lambda: client.api.get_credit_notes(
                client.tenant_id, where=f'Reference=="{reference}"', **client.options()
            ),
        )
        for raw in body.get("CreditNotes") or ():
            if not is_live(raw):
                continue
            return (
                Verification.HAPPENED if allocated_to(raw, request.invoice_id) else Verification.NOT_HAPPENED
            )
        return Verification.NOT_HAPPENED
