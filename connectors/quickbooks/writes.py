"""QuickBooks writes: fee lines (sparse invoice updates), fee invoices, notes (Attachable), credit
memos (batches of 30 under a requestid), and the invoice send.

Each request's action key travels with its effect (keys.py) and is looked up before creating, so
a request repeated in a differently composed batch is answered DONE without a second effect. A
stale SyncToken (5010) re-reads the invoice and tries again, up to STALE_ROUNDS rounds.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from connectors.base import (
    AuthError,
    ConnectorError,
    CreditNoteRequest,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    RateLimited,
    RejectedByLedger,
    StaleObject,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from connectors.quickbooks import mapping
from connectors.quickbooks.client import BATCH_SIZE, PAGE_SIZE, QuickBooksClient, Row, quote
from connectors.quickbooks.errors import error_for_fault, fault_from_json
from connectors.quickbooks.items import FeeItem
from connectors.quickbooks.keys import batch_request_id, doc_number, fee_description, key_marker
from connectors.quickbooks.verify import find_created

STALE_ROUNDS = 3

Indexed = list[tuple[int, WriteRequest]]  # requests with their position in the caller's list


def failure(key: str, error: ConnectorError) -> WriteResult:
    """Refused outright (validation, auth, throttle) -> nothing happened; otherwise unknown."""
    refused = isinstance(error, RejectedByLedger | AuthError | RateLimited | StaleObject)
    return WriteResult(key, WriteStatus.FAILED if refused else WriteStatus.UNCERTAIN, error=str(error))


def _sales_line(description: str, amount: Decimal, item_ref: dict[str, str] | None = None) -> Row:
    line = mapping.sales_line("", description, amount, 0, item_ref)
    del line["Id"], line["LineNum"]  # a new line: QBO numbers it
    return line


class QuickBooksWriter:
    def __init__(self, client: QuickBooksClient, fee_item: FeeItem, *, fee_mode: str) -> None:
        self.client = client
        self.fee_item = fee_item
        self.fee_mode = fee_mode

    def write(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        results: dict[int, WriteResult] = {}
        fee_lines: list[tuple[int, FeeLine]] = []
        creates: Indexed = []
        for index, request in enumerate(requests):
            if isinstance(request, FeeLine):
                if self.fee_mode == "invoice":
                    results[index] = WriteResult(
                        request.key,
                        WriteStatus.FAILED,
                        error="fee_mode is 'invoice': send a FeeInvoice instead",
                    )
                else:
                    fee_lines.append((index, request))
            elif isinstance(request, LedgerEmail):
                results[index] = self._send(request)
            elif isinstance(request, FeeInvoice | Note | CreditNoteRequest):
                creates.append((index, request))
            else:
                results[index] = WriteResult(
                    getattr(request, "key", ""),
                    WriteStatus.FAILED,
                    error=f"unsupported request {type(request).__name__}",
                )
        if fee_lines:
            results.update(self._write_fee_lines(fee_lines))
        for start in range(0, len(creates), BATCH_SIZE):
            results.update(self._write_creates(creates[start : start + BATCH_SIZE]))
        return [results[index] for index in range(len(requests))]

    # ------------------------------------------------------------ fee lines

    def _read_invoices(self, ids: Sequence[str]) -> dict[str, Row]:
        found: dict[str, Row] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), PAGE_SIZE):
            chunk = unique[start : start + PAGE_SIZE]
            select = (
                f"SELECT * FROM Invoice WHERE Id IN ({', '.join(quote(i) for i in chunk)}) "
                f"MAXRESULTS {PAGE_SIZE}"
            )
            for row in self.client.rows("Invoice", select, f"read {len(chunk)} invoices"):
                found[str(row.get("Id"))] = row
        return found

    def _fee_line_update(self, request: FeeLine, invoice: Row | None) -> Row | WriteResult:
        """The batch item adding this fee line to `invoice`, or the request's result without one."""
        name = self.client.name
        if invoice is None:
            return WriteResult(
                request.key, WriteStatus.FAILED, error=f"[{name}] invoice {request.invoice_id} not found"
            )
        lines = [line for line in invoice.get("Line") or [] if line.get("DetailType") != "SubTotalLineDetail"]
        marker = key_marker(request.key)
        if any(marker in str(line.get("Description") or "") for line in lines):
            return WriteResult(
                request.key, WriteStatus.DONE, ledger_id=request.invoice_id, detail={"already": True}
            )
        currency = ((invoice.get("CurrencyRef") or {}).get("value") or "").upper()
        if currency and currency != request.currency.upper():
            return WriteResult(
                request.key,
                WriteStatus.FAILED,
                error=f"[{name}] invoice {request.invoice_id} is in {currency}, the fee in "
                f"{request.currency}",
            )
        try:
            item_ref = self.fee_item.ref()
        except ConnectorError as error:
            return failure(request.key, error)
        new_line = _sales_line(fee_description(request.description, request.key), request.amount, item_ref)
        return {
            "bId": request.key,
            "operation": "update",
            "Invoice": {
                "Id": request.invoice_id,
                "SyncToken": invoice.get("SyncToken"),
                "sparse": True,
                "Line": [*lines, new_line],
            },
        }

    def _write_fee_lines(self, pending: list[tuple[int, FeeLine]]) -> dict[int, WriteResult]:
        results: dict[int, WriteResult] = {}
        attempts: dict[int, int] = {}
        while pending:
            round_items: list[tuple[int, FeeLine]] = []
            deferred: list[tuple[int, FeeLine]] = []
            busy: set[str] = set()
            for index, request in pending:
                # one update per invoice per round: its SyncToken changes with each update
                if request.invoice_id in busy or len(round_items) >= BATCH_SIZE:
                    deferred.append((index, request))
                else:
                    busy.add(request.invoice_id)
                    round_items.append((index, request))
            pending = deferred
            try:
                invoices = self._read_invoices([r.invoice_id for _, r in round_items])
            except ConnectorError as error:
                for index, request in round_items:
                    results[index] = WriteResult(request.key, WriteStatus.FAILED, error=str(error))
                continue
            items: list[Row] = []
            sent: dict[str, tuple[int, FeeLine]] = {}
            for index, request in round_items:
                update = self._fee_line_update(request, invoices.get(request.invoice_id))
                if isinstance(update, WriteResult):
                    results[index] = update
                    continue
                items.append(update)
                sent[request.key] = (index, request)
            if not items:
                continue
            request_id = batch_request_id([f"{i['bId']}@{i['Invoice']['SyncToken']}" for i in items])
            try:
                answers = self.client.batch(items, request_id, f"add {len(items)} fee lines")
            except ConnectorError as error:
                for index, request in sent.values():
                    results[index] = failure(request.key, error)
                continue
            for key, (index, request) in sent.items():
                answer = answers.get(key)
                if answer is None:
                    results[index] = WriteResult(key, WriteStatus.UNCERTAIN, error="no answer for this item")
                    continue
                fault = fault_from_json(answer)
                if fault is None:
                    results[index] = WriteResult(key, WriteStatus.DONE, ledger_id=request.invoice_id)
                    continue
                refused = error_for_fault(
                    fault, status=400, connection=self.client.name, call=f"fee line on {request.invoice_id}"
                )
                attempts[index] = attempts.get(index, 0) + 1
                if isinstance(refused, StaleObject) and attempts[index] < STALE_ROUNDS:
                    pending.append((index, request))  # re-read and retry
                else:
                    results[index] = failure(key, refused)
        return results

    # ------------------------------------------------------------ creates

    def _create_body(self, request: WriteRequest) -> tuple[str, Row]:
        if isinstance(request, FeeInvoice):
            item_ref = self.fee_item.ref()
            lines = [
                _sales_line(fee_description(text, request.key), amount, item_ref)
                for text, amount in request.lines
            ]
            return "Invoice", {
                "CustomerRef": {"value": request.customer_id},
                "CurrencyRef": {"value": request.currency},
                "TxnDate": request.issue_date.isoformat(),
                "DueDate": request.due_date.isoformat(),
                "DocNumber": doc_number("RF", request.key),
                "PrivateNote": f"{request.reference} {key_marker(request.key)}",
                "Line": lines,
            }
        if isinstance(request, Note):
            return "Attachable", {
                "Note": f"{request.text} {key_marker(request.key)}",
                "AttachableRef": [
                    {"EntityRef": {"type": "Invoice", "value": request.invoice_id}, "IncludeOnSend": False}
                ],
            }
        if isinstance(request, CreditNoteRequest):
            return "CreditMemo", {
                "CustomerRef": {"value": request.customer_id},
                "CurrencyRef": {"value": request.currency},
                "TxnDate": request.issue_date.isoformat(),
                "DocNumber": doc_number("RC", request.key),
                "PrivateNote": (
                    f"{request.description} (invoice {request.invoice_id}) {key_marker(request.key)}"
                ),
                "LinkedTxn": [{"TxnId": request.invoice_id, "TxnType": "Invoice"}],
                "Line": [_sales_line(request.description, request.amount)],
            }
        raise TypeError(type(request).__name__)

    def _write_creates(self, chunk: Indexed) -> dict[int, WriteResult]:
        results: dict[int, WriteResult] = {}
        try:
            existing = find_created(self.client, [request for _, request in chunk])
        except ConnectorError as error:
            return {
                index: WriteResult(request.key, WriteStatus.FAILED, error=str(error))
                for index, request in chunk
            }
        pending: Indexed = []
        for index, request in chunk:
            if request.key in existing:
                results[index] = WriteResult(
                    request.key, WriteStatus.DONE, ledger_id=existing[request.key], detail={"already": True}
                )
            else:
                pending.append((index, request))
        if not pending:
            return results
        items: list[Row] = []
        by_key: dict[str, str] = {}  # key -> QBO entity created
        refused: dict[str, WriteResult] = {}
        for _, request in pending:
            if request.key in by_key or request.key in refused:
                continue  # the same action twice in one call: one effect, same answer
            try:
                entity, body = self._create_body(request)
            except ConnectorError as error:  # the fee Item could not be found or created
                refused[request.key] = failure(request.key, error)
                continue
            items.append({"bId": request.key, "operation": "create", entity: body})
            by_key[request.key] = entity
        answers: dict[str, Row] = {}
        if items:
            try:
                answers = self.client.batch(
                    items, batch_request_id(sorted(by_key)), f"create {len(items)} records"
                )
            except ConnectorError as error:
                for index, request in pending:
                    results[index] = refused.get(request.key) or failure(request.key, error)
                return results
        for index, request in pending:
            if request.key in refused:
                results[index] = refused[request.key]
                continue
            entity = by_key[request.key]
            answer = answers.get(request.key)
            if answer is None:
                results[index] = WriteResult(
                    request.key, WriteStatus.UNCERTAIN, error="no answer for this item"
                )
                continue
            fault = fault_from_json(answer)
            if fault is not None:
                rejected = error_for_fault(
                    fault, status=400, connection=self.client.name, call=f"create {entity}"
                )
                results[index] = failure(request.key, rejected)
                continue
            record = answer.get(entity) or {}
            results[index] = WriteResult(request.key, WriteStatus.DONE, ledger_id=str(record.get("Id") or ""))
        return results

    # ------------------------------------------------------------ invoice send

    def _send(self, request: LedgerEmail) -> WriteResult:
        try:
            answer = self.client.post(
                f"send invoice {request.invoice_id}",
                f"invoice/{request.invoice_id}/send",
                None,
                content_type="application/octet-stream",
                params={"sendTo": request.to} if request.to else None,
                # QBO does not deduplicate sends on requestid; it is sent for the audit trail only
                request_id=request.key,
                idempotent=False,  # no requestid protection: a retry could email the customer twice
            )
        except ConnectorError as error:
            return failure(request.key, error)
        invoice = answer.get("Invoice") or {}
        delivery = (invoice.get("DeliveryInfo") or {}).get("DeliveryTime")
        return WriteResult(
            request.key, WriteStatus.DONE, ledger_id=request.invoice_id, detail={"delivery_time": delivery}
        )
