"""The Xero connector, through xero-python (AccountingApi over urllib3).

- The SDK's base_url is our override (a sandbox or any local server): AccountingApi(base_url=...).
- The SDK's OAuth2 token comes from our TokenProvider through the oauth2_token_getter hook; the
  SDK never refreshes by itself (no expiry given to it): a 401 makes us force a refresh (rotated
  refresh token persisted encrypted by the provider) and retry once.
- Calls are made with _preload_content=False so we read the status, the rate headers and the raw
  JSON: records are mapped one by one (a malformed record is quarantined, the page goes on).
- Every call goes through the tenant limiter and call_with_retries; writes carry Idempotency-Key
  so they are retried safely.

Pull: full = Contacts (active), Invoices (ACCREC, open or dated >= history_from), Payments and
CreditNotes dated >= history_from, pageSize 1000. Incremental = If-Modified-Since on Contacts
(incl. archived), Invoices and Payments: 3 calls when nothing changed; CreditNotes are read only
when a changed invoice carries credit-note allocations (an unallocated credit note changes no
invoice; the next full pull brings it).

Call counts (benchmarks, contract tests): a full pull makes `max(1, ceil(rows / 1000))` GETs per
entity (Xero's pagination.pageCount ends the paging, so no trailing empty page):
`full_pull_list_calls`. A no-change incremental pull makes 3 (Contacts, Invoices, Payments).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from connectors.base import (
    AuthError,
    Capabilities,
    ConnectorError,
    CreditNoteRequest,
    Cursor,
    DayLimitReached,
    Entity,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    Page,
    PullMode,
    RateLimited,
    RejectedByLedger,
    Verification,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from connectors.limits import TenantLimiter, limiter_for
from connectors.retry import call_with_retries
from connectors.xero import mapping
from connectors.xero.errors import response_headers, translate_exception

LEDGER = "xero"
PAGE_SIZE = 1000
CURSOR_OVERLAP = timedelta(minutes=5)  # clock skew and in-flight writes at the cursor's edge
HISTORY_DETAILS_MAX = 2500
SALES_ACCOUNT_CODE = "200"

ENVELOPES: dict[Entity, str] = {
    "customer": "Contacts",
    "invoice": "Invoices",
    "payment": "Payments",
    "credit_note": "CreditNotes",
}


def _datetime_literal(day: date) -> str:
    return f"DateTime({day.year},{day.month:02d},{day.day:02d})"


def full_pull_list_calls(rows_per_entity: Sequence[int], page_size: int = PAGE_SIZE) -> int:
    """List calls of a full pull, given the rows pulled per entity (see module doc)."""
    return sum(max(1, -(-rows // page_size)) for rows in rows_per_entity)


def key_marker(key: str) -> str:
    """Tag on a fee invoice line naming the request that created it (shown as a short reference)."""
    return f"(ref {key})"


def with_key_marker(lines: Sequence[tuple[str, Decimal]], key: str) -> list[tuple[str, Decimal]]:
    tagged = [(description, amount) for description, amount in lines]
    if tagged:
        description, amount = tagged[0]
        tagged[0] = (f"{description} {key_marker(key)}", amount)
    return tagged


def batch_key(keys: Sequence[str]) -> str:
    """Idempotency-Key of a batched PUT: derived from its members' keys (order-free)."""
    if len(keys) == 1:
        return keys[0]
    digest = hashlib.sha256("|".join(sorted(keys)).encode()).hexdigest()[:48]
    return f"relance-batch-{digest}"


class _Response:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self, *, call: str, connection: str) -> Any:
        if not self.body:
            return {}
        try:
            return json.loads(self.body, parse_float=Decimal)
        except ValueError:
            raise ConnectorError(
                "Xero answered with a body that is not JSON",
                connection=connection,
                call=call,
                retryable=True,
                hint="check that base_url points at the Xero API (…/api.xro/2.0)",
            ) from None


class XeroPullStream:
    """Pages of one pull; `cursor` is valid once the pages are exhausted."""

    def __init__(
        self, mode: PullMode, pages: Callable[[], Iterator[Page]], cursor: Callable[[], Cursor]
    ) -> None:
        self.mode = mode
        self._pages = pages
        self._make_cursor = cursor
        self._cursor: Cursor | None = None

    def __iter__(self) -> Iterator[Page]:
        yield from self._pages()
        self._cursor = self._make_cursor()

    @property
    def cursor(self) -> Cursor:
        if self._cursor is None:
            raise RuntimeError("read the cursor only after every page was consumed")
        return self._cursor


class XeroConnector:
    ledger = LEDGER
    capabilities = Capabilities(
        fee_line_on_invoice=False,  # lines of an approved invoice cannot be changed safely
        fee_invoice=True,
        ledger_email=True,
        ledger_email_idempotent=True,
        notes=True,
        credit_notes=True,
        write_batch_size=50,
        pay_link=True,  # OnlineInvoice URL, per invoice: online_invoice_url()
    )

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        tenant_id: str,
        tokens: Any,
        history_months: int = 24,
        clock: Any = None,
        page_size: int = PAGE_SIZE,
        account_code: str = SALES_ACCOUNT_CODE,
        limiter: TenantLimiter | None = None,
        retry_sleep: Callable[[float], None] = time.sleep,
        retry_base_wait: float = 0.5,
        max_attempts: int = 6,
        timeout: tuple[float, float] = (10.0, 120.0),
    ) -> None:
        from xero_python.accounting import AccountingApi
        from xero_python.api_client import ApiClient
        from xero_python.api_client.configuration import Configuration
        from xero_python.api_client.oauth2 import OAuth2Token

        self.name = name
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self.tokens = tokens
        self.history_months = history_months
        self._clock = clock
        self.page_size = max(1, min(PAGE_SIZE, page_size))
        self.account_code = account_code
        self.limiter = limiter or limiter_for(LEDGER, tenant_id)
        self._retry_sleep = retry_sleep
        self._retry_base_wait = retry_base_wait
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._local = threading.local()
        self._server_time: datetime | None = None
        self.calls = 0  # HTTP requests answered (any status), for benchmarks and tests
        configuration = Configuration()
        # Configuration() copies a process-wide default: set the token holder on our copy only.
        configuration.oauth2_token = OAuth2Token()
        self._client = ApiClient(
            configuration,
            oauth2_token_getter=self._sdk_token,
            oauth2_token_saver=lambda _token: None,  # refreshes go through our TokenProvider
        )
        self.api = AccountingApi(self._client, base_url=self.base_url)

    # ------------------------------------------------------------ plumbing

    def _now(self) -> datetime:
        clock = self._clock
        if clock is None:
            return datetime.now(UTC)
        moment = clock.now() if hasattr(clock, "now") else clock()
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _sdk_token(self) -> dict[str, Any]:
        return {
            "access_token": getattr(self._local, "token", ""),
            "token_type": "Bearer",
            "scope": [],
            "expires_in": None,
            "expires_at": None,  # never expired for the SDK: we refresh, it must not
        }

    def _send(self, call: str, invoke: Callable[[], Any]) -> _Response:
        refreshed = False
        while True:
            token = self.tokens.access_token()
            self._local.token = token
            try:
                raw, status, headers = invoke()
                body = raw.data if raw is not None else b""
            except Exception as error:
                headers = response_headers(error)
                if headers:
                    self.calls += 1
                    self.limiter.update_from_headers(headers)  # raises DayLimitReached on a day 429
                translated = translate_exception(error, connection=self.name, call=call)
                status = getattr(getattr(error, "http_resp", None), "status", None)
                if isinstance(translated, AuthError) and status == 401 and not refreshed:
                    self.tokens.force_refresh(token)
                    refreshed = True
                    continue
                if translated is error:
                    raise
                raise translated from None
            finally:
                self._local.token = ""
            self.calls += 1
            flat = {str(k): str(v) for k, v in dict(headers or {}).items()}
            self.limiter.update_from_headers(flat)
            return _Response(int(status), flat, body or b"")

    def _call(self, call: str, invoke: Callable[[], Any], *, idempotent: bool) -> _Response:
        def attempt() -> _Response:
            with self.limiter.acquire():
                return self._send(call, invoke)

        try:
            return call_with_retries(
                attempt,
                idempotent=idempotent,
                describe=call,
                connection=self.name,
                max_attempts=self._max_attempts,
                base_wait=self._retry_base_wait,
                sleep=self._retry_sleep,
            )
        except DayLimitReached as error:
            if error.connection == self.name:
                raise
            # The limiter knows the tenant, not the connection: name both for the user.
            reset = f"{error.reset_at:%Y-%m-%d %H:%M} UTC" if error.reset_at else "the daily reset"
            raise DayLimitReached(
                f"Xero's daily call limit for tenant {self.tenant_id} is reached; calls resume after {reset}",
                connection=self.name,
                call=call,
                reset_at=error.reset_at,
                hint=error.hint or "this connection is skipped until then; other connections go on",
            ) from None

    def _opts(self) -> dict[str, Any]:
        return {"_preload_content": False, "_return_http_data_only": False, "_request_timeout": self._timeout}

    # ------------------------------------------------------------ pull

    def pull(self, cursor: Cursor | None, *, history_from: date) -> XeroPullStream:
        local_start = self._now()
        since = self._cursor_since(cursor)
        mode = PullMode.FULL if since is None else PullMode.INCREMENTAL
        self._server_time = None

        def next_cursor() -> Cursor:
            # Xero's own clock (DateTimeUTC of the first answer) when it sent one: the cursor is
            # compared with UpdatedDateUTC, which Xero stamps; the overlap covers in-flight writes.
            started = self._server_time or local_start
            return Cursor(
                ledger=LEDGER,
                data={
                    "modified_since": (started - CURSOR_OVERLAP).isoformat(),
                    "tenant_id": self.tenant_id,
                    "history_from": history_from.isoformat(),
                },
                taken_at=started,
            )

        if since is None:
            return XeroPullStream(mode, lambda: self._full_pages(history_from), next_cursor)
        return XeroPullStream(mode, lambda: self._incremental_pages(since), next_cursor)

    def _cursor_since(self, cursor: Cursor | None) -> datetime | None:
        if cursor is None or cursor.ledger != LEDGER:
            return None
        data = cursor.data or {}
        if data.get("tenant_id") not in (None, self.tenant_id):
            return None
        value = data.get("modified_since")
        if not isinstance(value, str):
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _full_pages(self, history_from: date) -> Iterator[Page]:
        since_day = _datetime_literal(history_from)
        yield from self._entity_pages("customer", {})
        yield from self._entity_pages(
            "invoice", {"where": f'Type=="ACCREC" AND (Status=="AUTHORISED" OR Date>={since_day})'}
        )
        yield from self._entity_pages(
            "payment", {"where": f'PaymentType=="ACCRECPAYMENT" AND Date>={since_day}'}
        )
        yield from self._entity_pages("credit_note", {"where": f'Type=="ACCRECCREDIT" AND Date>={since_day}'})

    def _incremental_pages(self, since: datetime) -> Iterator[Page]:
        # Xero reads a zone-less If-Modified-Since as UTC.
        header_since = since.astimezone(UTC).replace(tzinfo=None, microsecond=0)
        yield from self._entity_pages(
            "customer", {"if_modified_since": header_since, "include_archived": True}
        )
        credit_notes: set[str] = set()
        yield from self._entity_pages(
            "invoice",
            {"if_modified_since": header_since, "where": 'Type=="ACCREC"'},
            collect_credit_notes=credit_notes,
        )
        yield from self._entity_pages(
            "payment", {"if_modified_since": header_since, "where": 'PaymentType=="ACCRECPAYMENT"'}
        )
        if credit_notes:
            yield from self._entity_pages(
                "credit_note", {"if_modified_since": header_since, "where": 'Type=="ACCRECCREDIT"'}
            )

    def _fetcher(self, entity: Entity) -> Callable[..., Any]:
        return {
            "customer": self.api.get_contacts,
            "invoice": self.api.get_invoices,
            "payment": self.api.get_payments,
            "credit_note": self.api.get_credit_notes,
        }[entity]

    def _entity_pages(
        self, entity: Entity, params: dict[str, Any], *, collect_credit_notes: set[str] | None = None
    ) -> Iterator[Page]:
        fetch = self._fetcher(entity)
        envelope = ENVELOPES[entity]
        page_number = 1
        while True:
            call = f"GET {envelope} page {page_number}"

            def invoke(page: int = page_number) -> Any:
                return fetch(self.tenant_id, page=page, page_size=self.page_size, **params, **self._opts())

            response = self._call(call, invoke, idempotent=True)
            data = response.json(call=call, connection=self.name)
            if self._server_time is None and isinstance(data, dict) and data.get("DateTimeUTC"):
                with contextlib.suppress(ValueError):
                    self._server_time = mapping.parse_datetime(data["DateTimeUTC"])
            rows = data.get(envelope) if isinstance(data, dict) else None
            if not isinstance(rows, list):
                raise ConnectorError(
                    f"Xero answered without a {envelope} list",
                    connection=self.name,
                    call=call,
                    hint="check that base_url points at the Xero Accounting API",
                )
            if collect_credit_notes is not None:
                collect_credit_notes.update(mapping.embedded_credit_note_ids(rows))
            records, deleted, quarantined = mapping.map_records(entity, rows)
            if records or deleted or quarantined:
                yield Page(entity, tuple(records), tuple(deleted), tuple(quarantined))
            pagination = data.get("pagination") if isinstance(data, dict) else None
            page_count = pagination.get("pageCount") if isinstance(pagination, dict) else None
            if isinstance(page_count, int):
                if page_number >= page_count:
                    return
            elif len(rows) < self.page_size:
                return
            page_number += 1

    # ------------------------------------------------------------ write

    def write(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        results: dict[int, WriteResult] = {}
        fees = [(index, r) for index, r in enumerate(requests) if isinstance(r, FeeInvoice)]
        size = self.capabilities.write_batch_size
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
                note_chunk, self._write_credit_notes([r for _, r in note_chunk]), strict=True
            ):
                results[index] = result
        for index, request in enumerate(requests):
            if index in results:
                continue
            results[index] = self._guarded(request.key, lambda r=request: self._write_one(r))
        return [results[index] for index in range(len(requests))]

    def _guarded(self, key: str, action: Callable[[], WriteResult]) -> WriteResult:
        try:
            return action()
        except (DayLimitReached, AuthError):
            raise  # the whole tenant stops: the caller records the rest as not done
        except RejectedByLedger as error:
            return WriteResult(key, WriteStatus.FAILED, error=str(error))
        except RateLimited as error:
            # A 429 is answered before any processing: nothing happened.
            return WriteResult(key, WriteStatus.FAILED, error=str(error))
        except ConnectorError as error:
            return WriteResult(key, WriteStatus.UNCERTAIN, error=str(error))

    def _write_one(self, request: WriteRequest) -> WriteResult:
        if isinstance(request, FeeLine):
            return WriteResult(
                request.key,
                WriteStatus.FAILED,
                error=f"[{self.name}] fee line: not supported by Xero: use fee invoices "
                "(lines of an approved invoice cannot be changed safely)",
            )
        if isinstance(request, LedgerEmail):
            return self._email(request)
        if isinstance(request, Note):
            return self._note(request)
        if isinstance(request, CreditNoteRequest):
            return self._write_credit_notes([request])[0]
        raise RejectedByLedger(f"unknown write request {type(request).__name__}", connection=self.name)

    def _write_fee_invoices(self, requests: list[FeeInvoice]) -> list[WriteResult]:
        from xero_python.accounting import Invoices

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
        call = f"PUT Invoices ({len(requests)} fee invoice{'s' if len(requests) > 1 else ''})"

        def send() -> WriteResult:
            response = self._call(
                call,
                lambda: self.api.create_invoices(
                    self.tenant_id,
                    Invoices(invoices=models),
                    summarize_errors=False,
                    idempotency_key=key,
                    **self._opts(),
                ),
                idempotent=True,
            )
            return WriteResult(
                key, WriteStatus.DONE, detail={"body": response.json(call=call, connection=self.name)}
            )

        batch = self._guarded(key, send)
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
                messages = "; ".join(
                    str(e.get("Message")) for e in item.get("ValidationErrors") or () if isinstance(e, dict)
                )
                results.append(
                    WriteResult(
                        request.key,
                        WriteStatus.FAILED,
                        error=f"[{self.name}] {call}: Xero rejected the fee invoice: "
                        f"{messages or 'no reason given'}",
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
        from xero_python.accounting import RequestEmpty

        # Xero emails the invoice to the contact's own address; `to` cannot be overridden.
        self._call(
            f"POST Invoices/{request.invoice_id}/Email",
            lambda: self.api.email_invoice(
                self.tenant_id,
                request.invoice_id,
                RequestEmpty(),
                idempotency_key=request.key,
                **self._opts(),
            ),
            idempotent=True,
        )
        return WriteResult(request.key, WriteStatus.DONE, ledger_id=request.invoice_id)

    def _note(self, request: Note) -> WriteResult:
        text = request.text
        if len(text) > HISTORY_DETAILS_MAX:
            text = text[: HISTORY_DETAILS_MAX - 1] + "…"
        call = f"PUT Invoices/{request.invoice_id}/History"
        self._call(
            call,
            lambda: self.api.create_invoice_history(
                self.tenant_id,
                request.invoice_id,
                mapping.history_model(text),
                idempotency_key=request.key,
                **self._opts(),
            ),
            idempotent=True,
        )
        return WriteResult(request.key, WriteStatus.DONE, ledger_id=request.invoice_id)

    def _write_credit_notes(self, requests: list[CreditNoteRequest]) -> list[WriteResult]:
        """Credit notes in batches: one lookup of the batch's references (a note created by an
        earlier attempt, perhaps in a batch of another composition, is reused, never created twice),
        one PUT CreditNotes for the missing ones (Idempotency-Key derived from the batch's keys),
        then one allocation per note (Xero allocates a credit note only through its own endpoint)."""
        from xero_python.accounting import CreditNotes

        lookup = self._guarded(requests[0].key, lambda: self._existing_credit_notes(requests))
        if lookup.status is not WriteStatus.DONE:
            # a refused or failed read changed nothing: the requests can simply be sent again
            return [WriteResult(r.key, WriteStatus.FAILED, error=lookup.error) for r in requests]
        existing: dict[str, dict[str, Any]] = lookup.detail["notes"]
        notes: dict[str, dict[str, Any]] = dict(existing)
        results: dict[str, WriteResult] = {}
        missing = [r for r in requests if r.key not in existing]
        if missing:
            models = [
                mapping.credit_note_model(
                    contact_id=r.customer_id,
                    currency=r.currency,
                    amount=r.amount,
                    description=r.description,
                    reference=self.credit_note_reference(r.key),
                    issue_date=r.issue_date,
                    account_code=self.account_code,
                )
                for r in missing
            ]
            key = batch_key([r.key for r in missing]) + "-create"
            call = f"PUT CreditNotes ({len(missing)} credit note{'s' if len(missing) > 1 else ''})"

            def send() -> WriteResult:
                response = self._call(
                    call,
                    lambda: self.api.create_credit_notes(
                        self.tenant_id,
                        CreditNotes(credit_notes=models),
                        summarize_errors=False,
                        idempotency_key=key,
                        **self._opts(),
                    ),
                    idempotent=True,
                )
                return WriteResult(
                    key, WriteStatus.DONE, detail={"body": response.json(call=call, connection=self.name)}
                )

            batch = self._guarded(key, send)
            created = (
                (batch.detail["body"].get("CreditNotes") or []) if batch.status is WriteStatus.DONE else []
            )
            for position, request in enumerate(missing):
                if batch.status is not WriteStatus.DONE:
                    results[request.key] = WriteResult(request.key, batch.status, error=batch.error)
                    continue
                item = created[position] if position < len(created) else None
                if not isinstance(item, dict) or (not item.get("HasErrors") and not item.get("CreditNoteID")):
                    results[request.key] = WriteResult(
                        request.key, WriteStatus.UNCERTAIN, error=f"[{self.name}] {call}: no CreditNoteID"
                    )
                elif item.get("HasErrors"):
                    messages = "; ".join(
                        str(e.get("Message"))
                        for e in item.get("ValidationErrors") or ()
                        if isinstance(e, dict)
                    )
                    results[request.key] = WriteResult(
                        request.key,
                        WriteStatus.FAILED,
                        error=f"[{self.name}] {call}: Xero rejected the credit note: "
                        f"{messages or 'no reason given'}",
                    )
                else:
                    notes[request.key] = item
        for request in requests:
            if request.key in results:
                continue
            note = notes[request.key]
            results[request.key] = self._guarded(request.key, lambda r=request, n=note: self._allocate(r, n))
        return [results[r.key] for r in requests]

    def _existing_credit_notes(self, requests: Sequence[CreditNoteRequest]) -> WriteResult:
        """The live credit notes carrying these requests' references (one GET), by request key."""
        call = f"GET CreditNotes (existing, {len(requests)} reference{'s' if len(requests) > 1 else ''})"
        by_reference = {self.credit_note_reference(r.key): r.key for r in requests}
        where = " OR ".join(f'Reference=="{reference}"' for reference in by_reference)
        response = self._call(
            call,
            lambda: self.api.get_credit_notes(self.tenant_id, where=where, **self._opts()),
            idempotent=True,
        )
        found: dict[str, dict[str, Any]] = {}
        for raw in response.json(call=call, connection=self.name).get("CreditNotes") or ():
            if not isinstance(raw, dict) or raw.get("Status") in ("VOIDED", "DELETED"):
                continue
            key = by_reference.get(str(raw.get("Reference") or ""))
            if key is not None and raw.get("CreditNoteID"):
                found.setdefault(key, raw)
        return WriteResult(requests[0].key, WriteStatus.DONE, detail={"notes": found})

    def _allocate(self, request: CreditNoteRequest, note: dict[str, Any]) -> WriteResult:
        note_id = str(note["CreditNoteID"])
        already = any(
            isinstance(a, dict) and (a.get("Invoice") or {}).get("InvoiceID") == request.invoice_id
            for a in note.get("Allocations") or ()
        )
        if already:
            return WriteResult(request.key, WriteStatus.DONE, ledger_id=note_id)
        try:
            self._call(
                f"PUT CreditNotes/{note_id}/Allocations",
                lambda: self.api.create_credit_note_allocation(
                    self.tenant_id,
                    note_id,
                    mapping.allocation_model(
                        invoice_id=request.invoice_id, amount=request.amount, on=request.issue_date
                    ),
                    idempotency_key=f"{request.key}-allocate",
                    **self._opts(),
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

    @staticmethod
    def credit_note_reference(key: str) -> str:
        return f"relance:{key}"

    # ------------------------------------------------------------ verify

    def verify(self, request: WriteRequest, *, since: datetime) -> Verification:
        try:
            if isinstance(request, LedgerEmail | Note):
                return self._verify_history(request, since)
            if isinstance(request, FeeInvoice):
                return self._verify_fee_invoice(request, since)
            if isinstance(request, CreditNoteRequest):
                return self._verify_credit_note(request)
            return Verification.NOT_HAPPENED  # FeeLine is never sent to Xero
        except (DayLimitReached, AuthError):
            raise
        except ConnectorError:
            return Verification.UNKNOWN

    def _verify_history(self, request: LedgerEmail | Note, since: datetime) -> Verification:
        call = f"GET Invoices/{request.invoice_id}/History"
        response = self._call(
            call,
            lambda: self.api.get_invoice_history(self.tenant_id, request.invoice_id, **self._opts()),
            idempotent=True,
        )
        records = response.json(call=call, connection=self.name).get("HistoryRecords") or []
        if isinstance(request, LedgerEmail):
            # History shows that an invoice was emailed, not by which request, and its dates are
            # on the ledger's clock; the email call is idempotent (Idempotency-Key): say so.
            return Verification.UNKNOWN
        for record in records:
            if isinstance(record, dict) and str(record.get("Details", "")).startswith(request.text[:200]):
                return Verification.HAPPENED  # relance's note texts name the step: one per invoice
        return Verification.NOT_HAPPENED

    def _verify_fee_invoice(self, request: FeeInvoice, since: datetime) -> Verification:
        """Found by the request's own key marker on a line (not by time: the ledger's clock and
        ours differ, and a batch's Idempotency-Key does not identify one member)."""
        call = "GET Invoices (verify fee invoice)"
        reference = request.reference.replace('"', "")
        response = self._call(
            call,
            lambda: self.api.get_invoices(
                self.tenant_id,
                where=f'Type=="ACCREC" AND Reference=="{reference}"',
                contact_i_ds=[request.customer_id],
                **self._opts(),
            ),
            idempotent=True,
        )
        marker = key_marker(request.key)
        for raw in response.json(call=call, connection=self.name).get("Invoices") or ():
            if not isinstance(raw, dict) or raw.get("Status") in ("VOIDED", "DELETED"):
                continue
            if any(marker in str((item or {}).get("Description", "")) for item in raw.get("LineItems") or ()):
                return Verification.HAPPENED
        return Verification.NOT_HAPPENED

    def _verify_credit_note(self, request: CreditNoteRequest) -> Verification:
        call = "GET CreditNotes (verify)"
        reference = self.credit_note_reference(request.key)
        response = self._call(
            call,
            lambda: self.api.get_credit_notes(
                self.tenant_id, where=f'Reference=="{reference}"', **self._opts()
            ),
            idempotent=True,
        )
        for raw in response.json(call=call, connection=self.name).get("CreditNotes") or ():
            if not isinstance(raw, dict) or raw.get("Status") in ("VOIDED", "DELETED"):
                continue
            allocated = any(
                isinstance(a, dict) and (a.get("Invoice") or {}).get("InvoiceID") == request.invoice_id
                for a in raw.get("Allocations") or ()
            )
            return Verification.HAPPENED if allocated else Verification.NOT_HAPPENED
        return Verification.NOT_HAPPENED

    # ------------------------------------------------------------ extras

    def online_invoice_url(self, invoice_id: str) -> str | None:
        """The customer-facing online invoice (pay) link; one call per invoice, so not in pulls."""
        call = f"GET Invoices/{invoice_id}/OnlineInvoice"
        try:
            response = self._call(
                call,
                lambda: self.api.get_online_invoice(self.tenant_id, invoice_id, **self._opts()),
                idempotent=True,
            )
        except RejectedByLedger:
            return None
        items = response.json(call=call, connection=self.name).get("OnlineInvoices") or []
        url = items[0].get("OnlineInvoiceUrl") if items and isinstance(items[0], dict) else None
        return url if isinstance(url, str) else None

    def close(self) -> None:
        self._client.rest_client.pool_manager.clear()

    def __repr__(self) -> str:
        return f"XeroConnector(name={self.name!r}, tenant_id={self.tenant_id!r}, base_url={self.base_url!r})"
