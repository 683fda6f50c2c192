"""Xero writes: fee invoices and credit notes in batches (several per PUT, one Idempotency-Key
derived from the members' keys), invoice emails and history notes one by one under the request's
own key. Fee lines are refused: the lines of an approved invoice cannot be changed safely."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from connectors.base import (
    CreditNoteRequest,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    RejectedByLedger,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from connectors.xero import mapping
from connectors.xero.batch import counted, put_batch
from connectors.xero.client import XeroClient
from connectors.xero.credit_notes import XeroCreditNotes
from connectors.xero.errors import guarded, item_messages
from connectors.xero.keys import batch_key, with_key_marker

HISTORY_DETAILS_MAX = 2500


class XeroWriter:
    def __init__(
        self, client: XeroClient, credit_notes: XeroCreditNotes, *, account_code: str, batch_size: int
    ) -> None:
        self.client = client
        self.credit_notes = credit_notes
        self.account_code = account_code
        self.batch_size = batch_size

    def write(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        results: dict[int, WriteResult] = {}
        size = self.batch_size
        fees = [(index, r) for index, r in enumerate(requests) if isinstance(r, FeeInvoice)]
        for start in range(0, len(fees), size):
            chunk = fees[start : start + size]
            for (index, _), result in zip(
                chunk, self._write_fee_invoices([r for _, r in chunk]), strict=True
            ):
                results[index] = result
        notes = [(index, r) for index, r in enumerate(requests) if isinstance(r, CreditNoteRequest)]
        for start in range(0, len(notes), size):
            note_chunk = notes[start : start + size]
            for (index, _), result in zip(
                note_chunk, self.credit_notes.write([r for _, r in note_chunk]), strict=True
            ):
                results[index] = result
        for index, request in enumerate(requests):
            if index in results:
                continue
            results[index] = guarded(request.key, partial(self._write_one, request))
        return [results[index] for index in range(len(requests))]

    def _write_one(self, request: WriteRequest) -> WriteResult:
        if isinstance(request, FeeLine):
            return WriteResult(
                request.key,
                WriteStatus.FAILED,
                error=f"[{self.client.name}] fee line: not supported by Xero: use fee invoices "
                "(lines of an approved invoice cannot be changed safely)",
            )
        if isinstance(request, LedgerEmail):
            return self._email(request)
        if isinstance(request, Note):
            return self._note(request)
        if isinstance(request, CreditNoteRequest):
            return self.credit_notes.write([request])[0]
        raise RejectedByLedger(f"unknown write request {type(request).__name__}", connection=self.client.name)

    def _write_fee_invoices(self, requests: list[FeeInvoice]) -> list[WriteResult]:
        # Lazy: xero-python is heavy, and the plugin registry must not import it.
        from xero_python.accounting import Invoices

        client = self.client
        models = [
            mapping.fee_invoice_model(
                contact_id=r.customer_id,
                currency=r.currency,
                lines=with_key_marker(r.lines, r.key),
                reference=r.reference,
                issue_date=r.issue_date,
                due_date=r.due_date,
                account_code=self.account_code,
            )
            for r in requests
        ]
        key = batch_key([r.key for r in requests])
        call = f"PUT Invoices ({counted(len(requests), 'fee invoice')})"
        batch = put_batch(client, call, key, client.api.create_invoices, Invoices(invoices=models))
        if batch.status is not WriteStatus.DONE:
            return [WriteResult(r.key, batch.status, error=batch.error) for r in requests]
        created = batch.detail["body"].get("Invoices") or []
        results: list[WriteResult] = []
        for position, request in enumerate(requests):
            item = (
                created[position] if position < len(created) and isinstance(created[position], dict) else None
            )
            if item is None:
                results.append(
                    WriteResult(request.key, WriteStatus.UNCERTAIN, error="Xero returned no result")
                )
            elif item.get("HasErrors"):
                results.append(
                    WriteResult(
                        request.key,
                        WriteStatus.FAILED,
                        error=f"[{client.name}] {call}: Xero rejected the fee invoice: {item_messages(item)}",
                    )
                )
            else:
                results.append(
                    WriteResult(
                        request.key,
                        WriteStatus.DONE,
                        ledger_id=item.get("InvoiceID"),
                        detail={"number": item.get("InvoiceNumber"), "idempotency_key": key},
                    )
                )
        return results

    def _email(self, request: LedgerEmail) -> WriteResult:
        # Lazy: xero-python is heavy, and the plugin registry must not import it.
        from xero_python.accounting import RequestEmpty

        client = self.client
        # Xero emails the invoice to the contact's own address; `to` cannot be overridden.
        client.call(
            f"POST Invoices/{request.invoice_id}/Email",
            lambda: client.api.email_invoice(
                client.tenant_id,
                request.invoice_id,
                RequestEmpty(),
                idempotency_key=request.key,
                **client.options(),
            ),
            idempotent=True,
        )
        return WriteResult(request.key, WriteStatus.DONE, ledger_id=request.invoice_id)

    def _note(self, request: Note) -> WriteResult:
        client = self.client
        text = request.text
        if len(text) > HISTORY_DETAILS_MAX:
            text = text[: HISTORY_DETAILS_MAX - 1] + "…"
        client.call(
            f"PUT Invoices/{request.invoice_id}/History",
            lambda: client.api.create_invoice_history(
                client.tenant_id,
                request.invoice_id,
                mapping.history_model(text),
                idempotency_key=request.key,
                **client.options(),
            ),
            idempotent=True,
        )
        return WriteResult(request.key, WriteStatus.DONE, ledger_id=request.invoice_id)
