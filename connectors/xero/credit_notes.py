"""Xero credit notes, in batches: one lookup of the batch's references (a note created by an earlier
attempt, perhaps in a batch of another composition, is reused, never created twice), one PUT
CreditNotes for the missing ones (Idempotency-Key derived from the batch's keys), then one
allocation per note (Xero allocates a credit note only through its own endpoint)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from connectors.base import CreditNoteRequest, RejectedByLedger, WriteResult, WriteStatus
from connectors.xero import mapping
from connectors.xero.batch import counted, put_batch
from connectors.xero.client import XeroClient
from connectors.xero.errors import guarded, item_messages
from connectors.xero.keys import batch_key, credit_note_reference

Raw = dict[str, Any]  # one Xero object as JSON


def is_live(raw: object) -> bool:
    return isinstance(raw, dict) and raw.get("Status") not in ("VOIDED", "DELETED")


def allocated_to(note: Raw, invoice_id: str) -> bool:
    return any(
        isinstance(a, dict) and (a.get("Invoice") or {}).get("InvoiceID") == invoice_id
        for a in note.get("Allocations") or ()
    )


class XeroCreditNotes:
    def __init__(self, client: XeroClient, *, account_code: str) -> None:
        self.client = client
        self.account_code = account_code

    def write(self, requests: list[CreditNoteRequest]) -> list[WriteResult]:
        lookup = guarded(requests[0].key, lambda: self._existing(requests))
        if lookup.status is not WriteStatus.DONE:
            # a refused or failed read changed nothing: the requests can simply be sent again
            return [WriteResult(r.key, WriteStatus.FAILED, error=lookup.error) for r in requests]
        existing: dict[str, Raw] = lookup.detail["notes"]
        notes: dict[str, Raw] = dict(existing)
        results: dict[str, WriteResult] = {}
        missing = [r for r in requests if r.key not in existing]
        if missing:
            created, failed = self._create(missing)
            notes.update(created)
            results.update(failed)
        for request in requests:
            if request.key in results:
                continue
            note = notes[request.key]
            results[request.key] = guarded(request.key, partial(self._allocate, request, note))
        return [results[r.key] for r in requests]

    def _create(self, missing: list[CreditNoteRequest]) -> tuple[dict[str, Raw], dict[str, WriteResult]]:
        """One PUT CreditNotes: (the notes created, by key; the results of those not created)."""
        # Lazy: xero-python is heavy, and the plugin registry must not import it.
        from xero_python.accounting import CreditNotes

        client = self.client
        models = [
            mapping.credit_note_model(
                contact_id=r.customer_id,
                currency=r.currency,
                amount=r.amount,
                description=r.description,
                reference=credit_note_reference(r.key),
                issue_date=r.issue_date,
                account_code=self.account_code,
            )
            for r in missing
        ]
        key = batch_key([r.key for r in missing]) + "-create"
        call = f"PUT CreditNotes ({counted(len(missing), 'credit note')})"
        batch = put_batch(client, call, key, client.api.create_credit_notes, CreditNotes(credit_notes=models))
        if batch.status is not WriteStatus.DONE:
            return {}, {r.key: WriteResult(r.key, batch.status, error=batch.error) for r in missing}
        answered = batch.detail["body"].get("CreditNotes") or []
        created: dict[str, Raw] = {}
        failed: dict[str, WriteResult] = {}
        for position, request in enumerate(missing):
            item = answered[position] if position < len(answered) else None
            if not isinstance(item, dict) or (not item.get("HasErrors") and not item.get("CreditNoteID")):
                failed[request.key] = WriteResult(
                    request.key, WriteStatus.UNCERTAIN, error=f"[{client.name}] {call}: no CreditNoteID"
                )
            elif item.get("HasErrors"):
                failed[request.key] = WriteResult(
                    request.key,
                    WriteStatus.FAILED,
                    error=f"[{client.name}] {call}: Xero rejected the credit note: {item_messages(item)}",
                )
            else:
                created[request.key] = item
        return created, failed

    def _existing(self, requests: Sequence[CreditNoteRequest]) -> WriteResult:
        """The live credit notes carrying these requests' references (one GET), by request key."""
        client = self.client
        call = f"GET CreditNotes (existing, {counted(len(requests), 'reference')})"
        by_reference = {credit_note_reference(r.key): r.key for r in requests}
        where = " OR ".join(f'Reference=="{reference}"' for reference in by_reference)
        body = client.json(
            call, lambda: client.api.get_credit_notes(client.tenant_id, where=where, **client.options())
        )
        found: dict[str, Raw] = {}
        for raw in body.get("CreditNotes") or ():
            if not is_live(raw):
                continue
            key = by_reference.get(str(raw.get("Reference") or ""))
            if key is not None and raw.get("CreditNoteID"):
                found.setdefault(key, raw)
        return WriteResult(requests[0].key, WriteStatus.DONE, detail={"notes": found})

    def _allocate(self, request: CreditNoteRequest, note: Raw) -> WriteResult:
        client = self.client
        note_id = str(note["CreditNoteID"])
        if allocated_to(note, request.invoice_id):
            return WriteResult(request.key, WriteStatus.DONE, ledger_id=note_id)
        try:
            client.call(
                f"PUT CreditNotes/{note_id}/Allocations",
                lambda: client.api.create_credit_note_allocation(
                    client.tenant_id,
                    note_id,
                    mapping.allocation_model(
                        invoice_id=request.invoice_id, amount=request.amount, on=request.issue_date
                    ),
                    idempotency_key=f"{request.key}-allocate",
                    **client.options(),
                ),
                idempotent=True,
            )
        except RejectedByLedger as error:
            return WriteResult(
                request.key,
                WriteStatus.FAILED,
                ledger_id=note_id,
                error=f"{error} (the credit note {note_id} exists unallocated; the same key resumes it)",
            )
        return WriteResult(request.key, WriteStatus.DONE, ledger_id=note_id)
