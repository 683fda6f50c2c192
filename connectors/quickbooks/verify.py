"""Did a QuickBooks write take effect? Read back after an unknown outcome (and before creating).

Invoice send is not idempotent (no requestid protection): an interrupted send is verified from the
invoice's EmailStatus / DeliveryInfo, compared with the delivery time seen before the send (both
on the ledger's clock). Creates and fee lines are found by the action key they carry (keys.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from connectors.base import (
    ConnectorError,
    CreditNoteRequest,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    Verification,
    WriteRequest,
)
from connectors.quickbooks import mapping
from connectors.quickbooks.client import PAGE_SIZE, QuickBooksClient, Row, quote
from connectors.quickbooks.keys import doc_number, key_marker

log = logging.getLogger("relance.connectors.quickbooks")

# The creates found by DocNumber: (QBO entity, DocNumber prefix, request type).
NUMBERED: tuple[tuple[str, str, type[FeeInvoice] | type[CreditNoteRequest]], ...] = (
    ("Invoice", "RF", FeeInvoice),
    ("CreditMemo", "RC", CreditNoteRequest),
)


def find_created(client: QuickBooksClient, requests: Sequence[WriteRequest]) -> dict[str, str]:
    """key -> ledger id of creates that already happened (their key is in DocNumber / Note),
    so a request repeated in a differently composed batch (new requestid) has no second effect."""
    found: dict[str, str] = {}
    for entity, prefix, kind in NUMBERED:
        numbers = {doc_number(prefix, r.key): r.key for r in requests if isinstance(r, kind)}
        if numbers:
            listed = ", ".join(quote(n) for n in sorted(numbers))
            select = f"SELECT * FROM {entity} WHERE DocNumber IN ({listed}) MAXRESULTS {PAGE_SIZE}"
            for row in client.rows(entity, select, f"look up {len(numbers)} {entity} numbers"):
                key = numbers.get(str(row.get("DocNumber")))
                if key:
                    found[key] = str(row.get("Id"))
    notes = [r for r in requests if isinstance(r, Note)]
    if notes:
        listed = ", ".join(quote(i) for i in sorted({n.invoice_id for n in notes}))
        select = (
            f"SELECT * FROM Attachable WHERE AttachableRef.EntityRef.Value IN ({listed}) "
            f"MAXRESULTS {PAGE_SIZE}"
        )
        rows = client.rows("Attachable", select, "look up notes")
        for note in notes:
            marker = key_marker(note.key)
            hit = next((row for row in rows if marker in str(row.get("Note") or "")), None)
            if hit is not None:
                found[note.key] = str(hit.get("Id"))
    return found


class QuickBooksVerifier:
    def __init__(self, client: QuickBooksClient) -> None:
        self.client = client

    def _get_invoice(self, invoice_id: str) -> Row | None:
        rows = self.client.rows(
            "Invoice", f"SELECT * FROM Invoice WHERE Id = {quote(invoice_id)}", f"read invoice {invoice_id}"
        )
        return rows[0] if rows else None

    def verify(self, request: WriteRequest, *, since: datetime) -> Verification:
        try:
            if isinstance(request, LedgerEmail):
                return self._verify_send(request)
            if isinstance(request, FeeLine):
                invoice = self._get_invoice(request.invoice_id)
                if invoice is None:
                    return Verification.UNKNOWN
                marker = key_marker(request.key)
                lines: list[dict[str, Any]] = invoice.get("Line") or []
                found = any(marker in str(line.get("Description") or "") for line in lines)
                return Verification.HAPPENED if found else Verification.NOT_HAPPENED
            if isinstance(request, FeeInvoice | CreditNoteRequest):
                entity, prefix = (
                    ("Invoice", "RF") if isinstance(request, FeeInvoice) else ("CreditMemo", "RC")
                )
                number = doc_number(prefix, request.key)
                rows = self.client.rows(
                    entity,
                    f"SELECT * FROM {entity} WHERE DocNumber = {quote(number)}",
                    f"find {entity} {number}",
                )
                return Verification.HAPPENED if rows else Verification.NOT_HAPPENED
            if isinstance(request, Note):
                created = find_created(self.client, [request])
                return Verification.HAPPENED if request.key in created else Verification.NOT_HAPPENED
        except ConnectorError as error:
            log.warning("[%s] verify failed: %s", self.client.name, error)
            return Verification.UNKNOWN
        return Verification.UNKNOWN

    def _verify_send(self, request: LedgerEmail) -> Verification:
        invoice = self._get_invoice(request.invoice_id)
        if invoice is None:
            return Verification.UNKNOWN
        delivered = mapping.parse_datetime((invoice.get("DeliveryInfo") or {}).get("DeliveryTime"))
        if invoice.get("EmailStatus") != "EmailSent" or delivered is None:
            return Verification.NOT_HAPPENED
        # Compare ledger time with ledger time: the delivery time seen before the send.
        baseline = request.previous_delivery
        if baseline is None:
            return Verification.HAPPENED  # never delivered before, delivered now
        return Verification.HAPPENED if delivered > baseline else Verification.NOT_HAPPENED
