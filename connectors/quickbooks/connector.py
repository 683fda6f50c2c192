"""The QuickBooks Online connector: python-quickbooks over HTTP, within QBO's limits.

The SDK's QuickBooks client builds URLs from `api_url_v3` and sends through `process_request`; a
small subclass points it at the connection's base URL (a sandbox or any local server) and routes
every request through our TokenProvider (bearer token; 401 -> one forced refresh), so intuitlib
never refreshes on its own and rotated refresh tokens are persisted by the provider. HTTP errors are
mapped to relance errors before the SDK parses them (it reads XML throttle bodies poorly).

Every call goes through the per-realm limiter (500/min, 10 concurrent) and call_with_retries:
queries, CDC and requestid-protected writes are idempotent; invoice send is not (never retried
blindly: an ambiguous failure is UNCERTAIN and `verify` reads EmailStatus/DeliveryInfo).

Exactly-once beyond requestid: fee lines carry their action key in the line description, fee
invoices and credit memos carry it in DocNumber ("RF-"/"RC-" + key prefix), notes in their text, so
a repeated request (even in a differently composed batch) is recognised and not applied twice.

QBO refuses sales lines without an Item: fee lines and fee invoices reference the service Item
named `fee_item_name` ("Late fee"), found by query or created once (Type Service, posting to the
first Income account; its requestid is derived from realm and name, so a retried or concurrent
create never makes two), then cached for the connector's life.

Call counts (benchmarks, contract tests):
- full pull: five paged queries (active customers; open invoices dated before history_from;
  invoices, payments, credit memos dated from history_from), each `rows // 1000 + 1` calls (the last
  page is the first one shorter than 1000 rows, possibly empty): `full_pull_list_calls`;
- incremental pull: one CDC call (a full pull instead when the cursor is older than CDC's 30-day
  window). An entity that reaches CDC's 1000-object limit is read again by a paged query on
  MetaData.LastUpdatedTime (`rows // 1000 + 1` calls); its deletions still come from the CDC answer.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import requests
from quickbooks import QuickBooks

from connectors.base import (
    AuthError,
    Capabilities,
    ConnectorError,
    CreditNoteRequest,
    Cursor,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    LedgerUnavailable,
    Note,
    Page,
    PullMode,
    RateLimited,
    RejectedByLedger,
    StaleObject,
    Verification,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from connectors.limits import TenantLimiter, limiter_for
from connectors.quickbooks import mapping
from connectors.quickbooks.errors import (
    error_for_fault,
    error_from_exception,
    error_from_response,
    fault_from_json,
)
from connectors.retry import CONNECTION_ERRORS, call_with_retries

LEDGER = "quickbooks"
PAGE_SIZE = 1000  # QBO's MAXRESULTS ceiling
BATCH_SIZE = 30  # QBO's BatchItemRequest ceiling
CDC_WINDOW = timedelta(days=30)
CDC_SAFETY = timedelta(hours=1)  # fall back to a full pull a little before CDC's window closes
CDC_LIMIT = 1000  # objects per entity in one CDC answer; at the limit, changes may be missing
CURSOR_OVERLAP = timedelta(seconds=60)
STALE_ROUNDS = 3

log = logging.getLogger("relance.connectors.quickbooks")
T = TypeVar("T")


class _Unauthorized(Exception):
    """A 401 for the access token `token` (refresh once, then retry)."""

    def __init__(self, token: str, response: requests.Response) -> None:
        super().__init__("401")
        self.token = token
        self.response = response


class _RelanceQuickBooks(QuickBooks):
    """python-quickbooks' client, pointed at our base URL, bearer from our TokenProvider."""

    relance: QuickBooksConnector

    def process_request(
        self, request_type: str, url: str, headers: Any = "", params: Any = "", data: Any = ""
    ) -> requests.Response:
        owner = self.relance
        token = owner.tokens.access_token()
        headers = dict(headers or {})
        headers["Authorization"] = "Bearer " + token
        response = owner._http.request(
            request_type, url, headers=headers, params=params, data=data, timeout=owner._timeout
        )
        owner.calls += 1
        owner._note_time(response)
        if response.status_code == 401:
            raise _Unauthorized(token, response)
        error = error_from_response(
            response.status_code,
            response.content if response.status_code >= 300 else None,
            response.headers,
            connection=owner.name,
            call=owner._describe(),
        )
        if error is not None:
            raise error
        return response


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # 2-decimal money amounts survive float repr exactly
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _dumps(body: Any) -> str:
    return json.dumps(body, default=_json_default, separators=(",", ":"))


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _batch_request_id(parts: Sequence[str]) -> str:
    if len(parts) == 1 and len(parts[0]) <= 50:
        return parts[0]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def full_pull_list_calls(rows_per_query: Sequence[int]) -> int:
    """Query calls of a full pull, given the rows each of its five queries returns (see module doc)."""
    return sum(rows // PAGE_SIZE + 1 for rows in rows_per_query)


def item_request_id(realm_id: str, name: str) -> str:
    """requestid of the fee Item's create: the same for every retry and every worker of a realm."""
    return "relance-item-" + hashlib.sha256(f"{realm_id}|{name}".encode()).hexdigest()[:24]


def months_before(day: date, months: int) -> date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def fee_description(description: str, key: str) -> str:
    return f"{mapping.FEE_MARKER} {description} (ref {key})"


def key_marker(key: str) -> str:
    return f"(ref {key})"


def doc_number(prefix: str, key: str) -> str:
    return f"{prefix}-{key[:17]}"  # DocNumber holds at most 21 characters


# ---------------------------------------------------------------- pull stream


@dataclass
class QuickBooksPullStream:
    """Pages in order customers, invoices, payments, credit notes; cursor after exhaustion."""

    connector: QuickBooksConnector
    mode: PullMode
    history_from: date
    changed_since: datetime | None = None
    _cursor: Cursor | None = field(default=None, init=False)
    _started: bool = field(default=False, init=False)

    def __iter__(self) -> Iterator[Page]:
        if self._started:
            raise RuntimeError("a pull stream can be iterated once")
        self._started = True
        self.connector._pull_started_at = None
        if self.mode is PullMode.INCREMENTAL and self.changed_since is not None:
            pages = self.connector._incremental_pages(self.changed_since, self.history_from)
            if pages is not None:
                yield from pages
                self._finish()
                return
            self.mode = PullMode.FULL  # CDC refused the window: full pull instead
        yield from self.connector._full_pages(self.history_from)
        self._finish()

    def _finish(self) -> None:
        taken = self.connector._pull_started_at or self.connector._now()
        self._cursor = Cursor(
            LEDGER,
            {
                "changed_since": mapping.format_datetime(taken - CURSOR_OVERLAP),
                "history_from": self.history_from.isoformat(),
            },
            taken,
        )

    @property
    def cursor(self) -> Cursor:
        if self._cursor is None:
            raise RuntimeError("read the cursor after iterating over every page")
        return self._cursor


# ---------------------------------------------------------------- connector


class QuickBooksConnector:
    ledger = LEDGER
    capabilities = Capabilities(
        fee_line_on_invoice=True,
        fee_invoice=True,
        ledger_email=True,
        ledger_email_idempotent=False,  # invoice send has no requestid protection: verify first
        notes=True,
        credit_notes=True,
        write_batch_size=BATCH_SIZE,
        pay_link=False,
    )

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        realm_id: str,
        tokens: Any,
        minor_version: int = 75,
        history_months: int = 24,
        fee_mode: str = "line",
        fee_item_name: str = "Late fee",
        clock: Any = None,
        limiter: TenantLimiter | None = None,
        retry_sleep: Callable[[float], None] = time.sleep,
        retry_base_wait: float = 0.5,
        max_attempts: int = 6,
        timeout: tuple[float, float] = (10.0, 120.0),
    ) -> None:
        if fee_mode not in ("line", "invoice"):
            raise ConnectorError(
                f"fee_mode must be 'line' or 'invoice', not {fee_mode!r}", connection=name, call="config"
            )
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.realm_id = str(realm_id)
        self.tokens = tokens
        self.minor_version = minor_version
        self.history_months = history_months
        self.fee_mode = fee_mode
        self.fee_item_name = fee_item_name
        self._clock = clock
        self.limiter = limiter or limiter_for(LEDGER, self.realm_id)
        self._retry_sleep = retry_sleep
        self._retry_base_wait = retry_base_wait
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._http = requests.Session()
        self._local = threading.local()
        self._server_time: datetime | None = None
        self._pull_started_at: datetime | None = None
        self._fee_item_ref: dict[str, str] | None = None
        self._fee_item_lock = threading.Lock()
        self.calls = 0  # HTTP requests answered (any status), for benchmarks and tests
        if fee_mode == "invoice":
            self.capabilities = replace(QuickBooksConnector.capabilities, fee_line_on_invoice=False)
        client = _RelanceQuickBooks(company_id=self.realm_id, minorversion=minor_version, use_decimal=True)
        client.api_url_v3 = self.base_url
        client.sandbox = False
        client.relance = self
        self._client = client

    # ------------------------------------------------------------ plumbing

    def _now(self) -> datetime:
        clock = self._clock
        if clock is None:
            return datetime.now(UTC)
        moment = clock.now() if hasattr(clock, "now") else clock()
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    def _describe(self) -> str:
        return getattr(self._local, "call", "") or "QuickBooks call"

    def _note_time(self, response: requests.Response) -> None:
        """QBO stamps answers with a `time` field: the server's clock, used for cursors."""
        if response.status_code != 200 or "json" not in response.headers.get("Content-Type", ""):
            return
        content = response.content
        position = content.rfind(b'"time":"')
        if position >= 0:
            end = content.find(b'"', position + 8)
            moment = mapping.parse_datetime(content[position + 8 : end].decode("utf-8", "replace"))
            if moment is not None:
                self._server_time = moment
                if self._pull_started_at is None:
                    self._pull_started_at = moment

    def _call(self, describe: str, operation: Callable[[QuickBooks], T], *, idempotent: bool) -> T:
        """One SDK call: limiter, retries, one forced refresh on 401, errors mapped."""

        def once() -> T:
            self._local.call = describe
            stale: str | None = None
            with self.limiter.acquire():
                try:
                    return operation(self._client)
                except _Unauthorized as unauthorized:
                    stale = unauthorized.token
                except ConnectorError:
                    raise
                except CONNECTION_ERRORS:
                    raise
                except Exception as error:  # SDK exceptions, JSON errors
                    raise error_from_exception(error, connection=self.name, call=describe) from None
            self.tokens.force_refresh(stale)
            with self.limiter.acquire():
                try:
                    return operation(self._client)
                except _Unauthorized as unauthorized:
                    error = error_from_response(
                        401, unauthorized.response.content, connection=self.name, call=describe
                    )
                    raise error or AuthError("unauthorized", connection=self.name, call=describe) from None
                except (ConnectorError, *CONNECTION_ERRORS):
                    raise
                except Exception as error:
                    raise error_from_exception(error, connection=self.name, call=describe) from None

        return call_with_retries(
            once,
            idempotent=idempotent,
            describe=describe,
            connection=self.name,
            max_attempts=self._max_attempts,
            base_wait=self._retry_base_wait,
            sleep=self._retry_sleep,
        )

    def _url(self, path: str) -> str:
        return f"{self.base_url}/company/{self.realm_id}/{path}"

    def query(self, select: str, describe: str | None = None) -> dict[str, Any]:
        result = self._call(describe or select[:80], lambda qb: qb.query(select), idempotent=True)
        return result.get("QueryResponse") or {}

    def _paged(self, entity: str, where: str) -> Iterator[list[dict[str, Any]]]:
        start = 1
        page_number = 1
        while True:
            select = (
                f"SELECT * FROM {entity}{' WHERE ' + where if where else ''} ORDERBY Id "
                f"STARTPOSITION {start} MAXRESULTS {PAGE_SIZE}"
            )
            rows = self.query(select, describe=f"query {entity} page {page_number}").get(entity) or []
            if rows:
                yield rows
            if len(rows) < PAGE_SIZE:
                return
            start += PAGE_SIZE
            page_number += 1

    # ------------------------------------------------------------ pull

    def pull(self, cursor: Cursor | None, *, history_from: date | None = None) -> QuickBooksPullStream:
        if history_from is None:
            history_from = months_before(self._now().date(), self.history_months)
        if cursor is not None and cursor.ledger == LEDGER:
            changed_since = mapping.parse_datetime(cursor.data.get("changed_since"))
            fresh_enough = changed_since is not None and changed_since > self._now() - CDC_WINDOW + CDC_SAFETY
            if changed_since is not None and fresh_enough:
                return QuickBooksPullStream(self, PullMode.INCREMENTAL, history_from, changed_since)
            log.info("[%s] cursor older than CDC's 30-day window: full pull", self.name)
        return QuickBooksPullStream(self, PullMode.FULL, history_from)

    def _full_pages(self, history_from: date) -> Iterator[Page]:
        since = _quote(history_from.isoformat())
        plan: list[tuple[str, str, str]] = [
            ("customer", "Customer", "Active = true"),
            ("invoice", "Invoice", f"Balance > '0' AND TxnDate < {since}"),  # old but still open
            ("invoice", "Invoice", f"TxnDate >= {since}"),
            ("payment", "Payment", f"TxnDate >= {since}"),
            ("credit_note", "CreditMemo", f"TxnDate >= {since}"),
        ]
        for neutral, entity, where in plan:
            for rows in self._paged(entity, where):
                records, quarantined = mapping.map_records(neutral, rows)  # type: ignore[arg-type]
                yield Page(neutral, tuple(records), quarantined=tuple(quarantined))  # type: ignore[arg-type]

    def _incremental_pages(self, changed_since: datetime, history_from: date) -> Iterator[Page] | None:
        """One CDC call (made now); None when CDC refuses the window and a full pull is needed.

        An entity whose CDC answer reaches the 1000-object limit may be missing changes: its live
        records are read by a paged query on MetaData.LastUpdatedTime instead (ceil(changes / 1000)
        calls rather than a full pull). The query pages ORDERBY Id: a record changed while we page
        keeps its position (ordering by LastUpdatedTime would move it to the end and shift an
        unread record onto a page already read). Its deletions come from the CDC answer only: QBO
        offers no other way to list deleted objects (a full pull does not see them either)."""
        entities = ",".join(mapping.QBO_ENTITY.values())
        stamp = mapping.format_datetime(changed_since)
        try:
            answer = self._call(
                "change data capture",
                lambda qb: qb.change_data_capture(entities, stamp),
                idempotent=True,
            )
        except RejectedByLedger as error:
            if "changedsince" in str(error).lower():
                log.info("[%s] QuickBooks refused changedSince (%s): full pull", self.name, stamp)
                return None
            raise
        groups: dict[str, list[dict[str, Any]]] = {}
        for block in answer.get("CDCResponse") or []:
            for response in block.get("QueryResponse") or []:
                for entity, rows in response.items():
                    if isinstance(rows, list):
                        groups.setdefault(entity, []).extend(rows)
        overflowing = {entity for entity, rows in groups.items() if len(rows) >= CDC_LIMIT}
        if overflowing:
            log.info(
                "[%s] CDC answer at its 1000-object limit for %s: paged query on LastUpdatedTime",
                self.name,
                ", ".join(sorted(overflowing)),
            )
        return self._changed_pages(groups, overflowing, stamp)

    def _changed_pages(
        self, groups: dict[str, list[dict[str, Any]]], overflowing: set[str], stamp: str
    ) -> Iterator[Page]:
        for neutral, entity in mapping.QBO_ENTITY.items():
            rows = groups.get(entity, [])
            deleted = tuple(
                str(r.get("Id")) for r in rows if isinstance(r, dict) and r.get("status") == "Deleted"
            )
            if entity in overflowing:
                if deleted:
                    yield Page(neutral, (), deleted_ids=deleted)  # type: ignore[arg-type]
                where = f"MetaData.LastUpdatedTime >= {_quote(stamp)}"
                for page_rows in self._paged(entity, where):
                    records, quarantined = mapping.map_records(neutral, page_rows)  # type: ignore[arg-type]
                    yield Page(neutral, tuple(records), quarantined=tuple(quarantined))  # type: ignore[arg-type]
                continue
            live = [r for r in rows if not (isinstance(r, dict) and r.get("status") == "Deleted")]
            records, quarantined = mapping.map_records(neutral, live)  # type: ignore[arg-type]
            if records or deleted or quarantined:
                yield Page(neutral, tuple(records), deleted_ids=deleted, quarantined=tuple(quarantined))  # type: ignore[arg-type]

    # ------------------------------------------------------------ write

    def write(self, requests_: Sequence[WriteRequest]) -> list[WriteResult]:
        results: dict[int, WriteResult] = {}
        fee_lines: list[tuple[int, FeeLine]] = []
        creates: list[tuple[int, WriteRequest]] = []
        for index, request in enumerate(requests_):
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
        return [results[index] for index in range(len(requests_))]

    def _failure(self, key: str, error: ConnectorError) -> WriteResult:
        # Refused outright (validation, auth, throttle) -> nothing happened; otherwise unknown.
        refused = isinstance(error, RejectedByLedger | AuthError | RateLimited | StaleObject)
        status = WriteStatus.FAILED if refused else WriteStatus.UNCERTAIN
        return WriteResult(key, status, error=str(error))

    def _batch(
        self, items: list[dict[str, Any]], request_id: str, describe: str
    ) -> dict[str, dict[str, Any]]:
        """POST /batch; answers by bId."""
        body = _dumps({"BatchItemRequest": items})
        url = self._url("batch")
        answer = self._call(
            describe,
            lambda qb: qb.make_request("POST", url, body, request_id=request_id),
            idempotent=True,  # requestid: a replay returns the first answer without a second effect
        )
        return {str(item.get("bId")): item for item in answer.get("BatchItemResponse") or []}

    def _read_invoices(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), PAGE_SIZE):
            chunk = unique[start : start + PAGE_SIZE]
            select = (
                f"SELECT * FROM Invoice WHERE Id IN ({', '.join(_quote(i) for i in chunk)}) "
                f"MAXRESULTS {PAGE_SIZE}"
            )
            for row in self.query(select, describe=f"read {len(chunk)} invoices").get("Invoice") or []:
                found[str(row.get("Id"))] = row
        return found

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
            items: list[dict[str, Any]] = []
            sent: dict[str, tuple[int, FeeLine]] = {}
            for index, request in round_items:
                invoice = invoices.get(request.invoice_id)
                if invoice is None:
                    results[index] = WriteResult(
                        request.key,
                        WriteStatus.FAILED,
                        error=f"[{self.name}] invoice {request.invoice_id} not found",
                    )
                    continue
                lines = [
                    line
                    for line in invoice.get("Line") or []
                    if line.get("DetailType") != "SubTotalLineDetail"
                ]
                marker = key_marker(request.key)
                existing = next(
                    (line for line in lines if marker in str(line.get("Description") or "")), None
                )
                if existing is not None:
                    results[index] = WriteResult(
                        request.key, WriteStatus.DONE, ledger_id=request.invoice_id, detail={"already": True}
                    )
                    continue
                currency = ((invoice.get("CurrencyRef") or {}).get("value") or "").upper()
                if currency and currency != request.currency.upper():
                    results[index] = WriteResult(
                        request.key,
                        WriteStatus.FAILED,
                        error=f"[{self.name}] invoice {request.invoice_id} is in {currency}, the fee in "
                        f"{request.currency}",
                    )
                    continue
                try:
                    item_ref = self.fee_item_ref()
                except ConnectorError as error:
                    results[index] = self._failure(request.key, error)
                    continue
                new_line = mapping.sales_line(
                    "", fee_description(request.description, request.key), request.amount, 0, item_ref
                )
                del new_line["Id"], new_line["LineNum"]
                items.append(
                    {
                        "bId": request.key,
                        "operation": "update",
                        "Invoice": {
                            "Id": request.invoice_id,
                            "SyncToken": invoice.get("SyncToken"),
                            "sparse": True,
                            "Line": [*lines, new_line],
                        },
                    }
                )
                sent[request.key] = (index, request)
            if not items:
                continue
            request_id = _batch_request_id([f"{i['bId']}@{i['Invoice']['SyncToken']}" for i in items])
            try:
                answers = self._batch(items, request_id, f"add {len(items)} fee lines")
            except ConnectorError as error:
                for index, request in sent.values():
                    results[index] = self._failure(request.key, error)
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
                error = error_for_fault(
                    fault, status=400, connection=self.name, call=f"fee line on {request.invoice_id}"
                )
                attempts[index] = attempts.get(index, 0) + 1
                if isinstance(error, StaleObject) and attempts[index] < STALE_ROUNDS:
                    pending.append((index, request))  # re-read and retry
                else:
                    results[index] = self._failure(key, error)
        return results

    def _create_body(self, request: WriteRequest) -> tuple[str, dict[str, Any]]:
        if isinstance(request, FeeInvoice):
            item_ref = self.fee_item_ref()
            lines = [
                {
                    k: v
                    for k, v in mapping.sales_line(
                        "", fee_description(text, request.key), amount, 0, item_ref
                    ).items()
                    if k not in ("Id", "LineNum")
                }
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
            line = mapping.sales_line("", request.description, request.amount, 0)
            del line["Id"], line["LineNum"]
            return "CreditMemo", {
                "CustomerRef": {"value": request.customer_id},
                "CurrencyRef": {"value": request.currency},
                "TxnDate": request.issue_date.isoformat(),
                "DocNumber": doc_number("RC", request.key),
                "PrivateNote": (
                    f"{request.description} (invoice {request.invoice_id}) {key_marker(request.key)}"
                ),
                "LinkedTxn": [{"TxnId": request.invoice_id, "TxnType": "Invoice"}],
                "Line": [line],
            }
        raise TypeError(type(request).__name__)

    def _already_created(self, requests_: Sequence[WriteRequest]) -> dict[str, str]:
        """key -> ledger id of creates that already happened (their key is in DocNumber / Note),
        so a request repeated in a differently composed batch (new requestid) has no second effect."""
        found: dict[str, str] = {}
        for entity, prefix, kind in (("Invoice", "RF", FeeInvoice), ("CreditMemo", "RC", CreditNoteRequest)):
            numbers = {doc_number(prefix, r.key): r.key for r in requests_ if isinstance(r, kind)}
            if numbers:
                listed = ", ".join(_quote(n) for n in sorted(numbers))
                select = f"SELECT * FROM {entity} WHERE DocNumber IN ({listed}) MAXRESULTS {PAGE_SIZE}"
                for row in (
                    self.query(select, describe=f"look up {len(numbers)} {entity} numbers").get(entity) or []
                ):
                    key = numbers.get(str(row.get("DocNumber")))
                    if key:
                        found[key] = str(row.get("Id"))
        notes = [r for r in requests_ if isinstance(r, Note)]
        if notes:
            listed = ", ".join(_quote(i) for i in sorted({n.invoice_id for n in notes}))
            select = (
                f"SELECT * FROM Attachable WHERE AttachableRef.EntityRef.Value IN ({listed}) "
                f"MAXRESULTS {PAGE_SIZE}"
            )
            rows = self.query(select, describe="look up notes").get("Attachable") or []
            for note in notes:
                marker = key_marker(note.key)
                hit = next((row for row in rows if marker in str(row.get("Note") or "")), None)
                if hit is not None:
                    found[note.key] = str(hit.get("Id"))
        return found

    def _write_creates(self, chunk: list[tuple[int, WriteRequest]]) -> dict[int, WriteResult]:
        results: dict[int, WriteResult] = {}
        try:
            existing = self._already_created([request for _, request in chunk])
        except ConnectorError as error:
            return {
                index: WriteResult(request.key, WriteStatus.FAILED, error=str(error))
                for index, request in chunk
            }
        pending: list[tuple[int, WriteRequest]] = []
        for index, request in chunk:
            if request.key in existing:
                results[index] = WriteResult(
                    request.key, WriteStatus.DONE, ledger_id=existing[request.key], detail={"already": True}
                )
            else:
                pending.append((index, request))
        if not pending:
            return results
        chunk = pending
        items = []
        by_key: dict[str, tuple[int, WriteRequest, str]] = {}
        refused: dict[str, WriteResult] = {}
        for index, request in chunk:
            if request.key in by_key or request.key in refused:
                continue  # the same action twice in one call: one effect, same answer
            try:
                entity, body = self._create_body(request)
            except ConnectorError as error:  # the fee Item could not be found or created
                refused[request.key] = self._failure(request.key, error)
                continue
            items.append({"bId": request.key, "operation": "create", entity: body})
            by_key[request.key] = (index, request, entity)
        answers: dict[str, dict[str, Any]] = {}
        if items:
            try:
                answers = self._batch(
                    items, _batch_request_id(sorted(by_key)), f"create {len(items)} records"
                )
            except ConnectorError as error:
                for index, request in chunk:
                    results[index] = refused.get(request.key) or self._failure(request.key, error)
                return results
        for index, request in chunk:
            if request.key in refused:
                results[index] = refused[request.key]
                continue
            _, _, entity = by_key[request.key]
            answer = answers.get(request.key)
            if answer is None:
                results[index] = WriteResult(
                    request.key, WriteStatus.UNCERTAIN, error="no answer for this item"
                )
                continue
            fault = fault_from_json(answer)
            if fault is not None:
                error = error_for_fault(fault, status=400, connection=self.name, call=f"create {entity}")
                results[index] = self._failure(request.key, error)
                continue
            record = answer.get(entity) or {}
            results[index] = WriteResult(request.key, WriteStatus.DONE, ledger_id=str(record.get("Id") or ""))
        return results

    def fee_item_ref(self) -> dict[str, str]:
        """ItemRef of the fee Item (found, else created once); cached. Raises ConnectorError."""
        with self._fee_item_lock:
            if self._fee_item_ref is None:
                self._fee_item_ref = self._find_or_create_fee_item()
            return dict(self._fee_item_ref)

    def _find_or_create_fee_item(self) -> dict[str, str]:
        name = self.fee_item_name
        rows = (
            self.query(f"SELECT * FROM Item WHERE Name = {_quote(name)}", describe=f"find item {name!r}").get(
                "Item"
            )
            or []
        )
        found = next((row for row in rows if row.get("Active", True) is not False), None)
        if found is not None:
            return {"value": str(found.get("Id")), "name": str(found.get("Name") or name)}
        accounts = (
            self.query(
                "SELECT * FROM Account WHERE AccountType = 'Income' MAXRESULTS 1",
                describe="find an income account",
            ).get("Account")
            or []
        )
        if not accounts:
            raise RejectedByLedger(
                f"no Item named {name!r} and no Income account to create it with",
                connection=self.name,
                call=f"create item {name!r}",
                hint=f"create a service item named {name!r} in QuickBooks (or set fee_item_name)",
            )
        account = accounts[0]
        body = _dumps(
            {
                "Name": name,
                "Type": "Service",
                "Description": "Late-payment fees and interest charged by relance",
                "IncomeAccountRef": {"value": str(account.get("Id")), "name": str(account.get("Name") or "")},
            }
        )
        url = self._url("item")
        request_id = item_request_id(self.realm_id, name)
        try:
            answer = self._call(
                f"create item {name!r}",
                lambda qb: qb.make_request("POST", url, body, request_id=request_id),
                idempotent=True,  # deterministic requestid: a replay returns the first answer
            )
        except RejectedByLedger as error:
            if "6240" in str(error) or "duplicate name" in str(error).lower():
                # queries list active items only: the name belongs to an inactive item (or another list)
                error.hint = f"make the item {name!r} active in QuickBooks, or set another fee_item_name"
            raise
        item = answer.get("Item") or {}
        if not item.get("Id"):
            raise ConnectorError(
                "QuickBooks answered the item create without an Id", connection=self.name, call="create item"
            )
        log.info("[%s] created the service item %r (id %s) for fees", self.name, name, item.get("Id"))
        return {"value": str(item["Id"]), "name": str(item.get("Name") or name)}

    def _send(self, request: LedgerEmail) -> WriteResult:
        url = self._url(f"invoice/{request.invoice_id}/send")
        params = {"sendTo": request.to} if request.to else None
        try:
            answer = self._call(
                f"send invoice {request.invoice_id}",
                lambda qb: qb.make_request(
                    "POST",
                    url,
                    None,
                    content_type="application/octet-stream",
                    params=dict(params or {}),
                    # QBO does not deduplicate sends on requestid; it is sent for the audit trail only
                    request_id=request.key,
                ),
                idempotent=False,  # no requestid on send: a retry could email the customer twice
            )
        except ConnectorError as error:
            return self._failure(request.key, error)
        invoice = answer.get("Invoice") or {}
        delivery = (invoice.get("DeliveryInfo") or {}).get("DeliveryTime")
        return WriteResult(
            request.key, WriteStatus.DONE, ledger_id=request.invoice_id, detail={"delivery_time": delivery}
        )

    # ------------------------------------------------------------ verify

    def _get_invoice(self, invoice_id: str) -> dict[str, Any] | None:
        rows = self.query(
            f"SELECT * FROM Invoice WHERE Id = {_quote(invoice_id)}", describe=f"read invoice {invoice_id}"
        ).get("Invoice")
        return rows[0] if rows else None

    def verify(self, request: WriteRequest, *, since: datetime) -> Verification:
        try:
            if isinstance(request, LedgerEmail):
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
            if isinstance(request, FeeLine):
                invoice = self._get_invoice(request.invoice_id)
                if invoice is None:
                    return Verification.UNKNOWN
                marker = key_marker(request.key)
                lines = invoice.get("Line") or []
                found = any(marker in str(line.get("Description") or "") for line in lines)
                return Verification.HAPPENED if found else Verification.NOT_HAPPENED
            if isinstance(request, FeeInvoice | CreditNoteRequest):
                entity = "Invoice" if isinstance(request, FeeInvoice) else "CreditMemo"
                number = doc_number("RF" if entity == "Invoice" else "RC", request.key)
                rows = self.query(
                    f"SELECT * FROM {entity} WHERE DocNumber = {_quote(number)}",
                    describe=f"find {entity} {number}",
                ).get(entity)
                return Verification.HAPPENED if rows else Verification.NOT_HAPPENED
            if isinstance(request, Note):
                found = self._already_created([request])
                return Verification.HAPPENED if request.key in found else Verification.NOT_HAPPENED
        except ConnectorError as error:
            log.warning("[%s] verify failed: %s", self.name, error)
            return Verification.UNKNOWN
        return Verification.UNKNOWN

    def close(self) -> None:
        self._http.close()


__all__ = ["LedgerUnavailable", "QuickBooksConnector", "QuickBooksPullStream"]
