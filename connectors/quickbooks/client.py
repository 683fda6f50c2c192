"""The plumbing every QuickBooks call goes through: python-quickbooks over our requests session.

The SDK's QuickBooks client builds URLs from `api_url_v3` and sends through `process_request`; a
small subclass points it at the connection's base URL (a sandbox or any local server) and routes
every request through our TokenProvider (bearer token; 401 -> one forced refresh), so intuitlib
never refreshes on its own and rotated refresh tokens are persisted by the provider. HTTP errors are
mapped to relance errors before the SDK parses them (it reads XML throttle bodies poorly).

Every call goes through the per-realm limiter (500/min, 10 concurrent) and call_with_retries:
queries, CDC and requestid-protected writes are idempotent; invoice send is not (never retried
blindly: an ambiguous failure is UNCERTAIN and the verifier reads EmailStatus/DeliveryInfo).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar, Unpack

import requests
from quickbooks import QuickBooks  # python-quickbooks: this module loads only when a connector opens

from connectors.base import AccessTokens, AuthError, ConnectorError
from connectors.client import RETRY_BASE_WAIT as RETRY_BASE_WAIT  # the plugin's default
from connectors.client import CallSettings, LedgerClient
from connectors.quickbooks import mapping
from connectors.quickbooks.errors import error_from_exception, error_from_response
from connectors.quickbooks.identity import NAME
from connectors.retry import CONNECTION_ERRORS

LEDGER = NAME
PAGE_SIZE = 1000  # QBO's MAXRESULTS ceiling
BATCH_SIZE = 30  # QBO's BatchItemRequest ceiling
MINOR_VERSION = 75

T = TypeVar("T")
Row = dict[str, Any]  # one QBO object as JSON


class _Unauthorized(Exception):
    """A 401 for the access token `token` (refresh once, then retry)."""

    def __init__(self, token: str, response: requests.Response) -> None:
        super().__init__("401")
        self.token = token
        self.response = response


class _RelanceQuickBooks(QuickBooks):
    """python-quickbooks' client, pointed at our base URL, bearer from our TokenProvider."""

    relance: QuickBooksClient

    def process_request(
        self, request_type: str, url: str, headers: Any = "", params: Any = "", data: Any = ""
    ) -> requests.Response:
        owner = self.relance
        token = owner.tokens.access_token()
        headers = dict(headers or {})
        headers["Authorization"] = "Bearer " + token
        response = owner.http.request(
            request_type, url, headers=headers, params=params, data=data, timeout=owner.timeout
        )
        owner.calls += 1
        owner.note_time(response)
        if response.status_code == 401:
            raise _Unauthorized(token, response)
        error = error_from_response(
            response.status_code,
            response.content if response.status_code >= 300 else None,
            response.headers,
            connection=owner.name,
            call=owner.describe(),
        )
        if error is not None:
            raise error
        return response


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)  # 2-decimal money amounts survive float repr exactly
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(body: object) -> str:
    return json.dumps(body, default=_json_default, separators=(",", ":"))


def quote(value: str) -> str:
    """A QBO query string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class QuickBooksClient(LedgerClient):
    """One realm's SDK client, HTTP session, limiter, retries and token handling."""

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        realm_id: str,
        tokens: AccessTokens,
        minor_version: int = MINOR_VERSION,
        **calls: Unpack[CallSettings],
    ) -> None:
        self.realm_id = str(realm_id)
        super().__init__(
            ledger=LEDGER, name=name, base_url=base_url, account_id=self.realm_id, tokens=tokens, **calls
        )
        self.minor_version = minor_version
        self.http = requests.Session()
        sdk = _RelanceQuickBooks(company_id=self.realm_id, minorversion=minor_version, use_decimal=True)
        sdk.api_url_v3 = self.base_url
        sdk.sandbox = False
        sdk.relance = self
        self._sdk = sdk

    def describe(self) -> str:
        return getattr(self._local, "call", "") or "QuickBooks call"

    def note_time(self, response: requests.Response) -> None:
        """QBO stamps answers with a `time` field: the server's clock, used for cursors."""
        if response.status_code != 200 or "json" not in response.headers.get("Content-Type", ""):
            return
        content = response.content
        position = content.rfind(b'"time":"')
        if position >= 0:
            end = content.find(b'"', position + 8)
            moment = mapping.parse_datetime(content[position + 8 : end].decode("utf-8", "replace"))
            if moment is not None and self.pull_started_at is None:
                self.pull_started_at = moment

    def call(self, describe: str, operation: Callable[[QuickBooks], T], *, idempotent: bool) -> T:
        """One SDK call: limiter, retries, one forced refresh on 401, errors mapped."""

        def once() -> T:
            self._local.call = describe
            stale: str | None = None
            with self.limiter.acquire():
                try:
                    return operation(self._sdk)
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
                    return operation(self._sdk)
                except _Unauthorized as unauthorized:
                    refused = error_from_response(
                        401, unauthorized.response.content, connection=self.name, call=describe
                    )
                    raise refused or AuthError("unauthorized", connection=self.name, call=describe) from None
                except ConnectorError:
                    raise
                except CONNECTION_ERRORS:
                    raise
                except Exception as error:
                    raise error_from_exception(error, connection=self.name, call=describe) from None

        return self.with_retries(once, idempotent=idempotent, describe=describe)

    def url(self, path: str) -> str:
        return f"{self.base_url}/company/{self.realm_id}/{path}"

    def query(self, select: str, describe: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            describe or select[:80], lambda qb: qb.query(select), idempotent=True
        )
        return result.get("QueryResponse") or {}

    def rows(self, entity: str, select: str, describe: str) -> list[Row]:
        """The `entity` objects a query answers."""
        return self.query(select, describe=describe).get(entity) or []

    def post(
        self,
        describe: str,
        path: str,
        body: str | None,
        *,
        request_id: str,
        idempotent: bool,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST <company>/<path>. With a requestid QBO answers a replay with the first answer."""
        url = self.url(path)
        answer: dict[str, Any] = self.call(
            describe,
            lambda qb: qb.make_request(
                "POST",
                url,
                body,
                content_type=content_type,
                params=dict(params or {}),  # a fresh dict per attempt: the SDK adds to it
                request_id=request_id,
            ),
            idempotent=idempotent,
        )
        return answer

    def batch(self, items: Sequence[Row], request_id: str, describe: str) -> dict[str, Row]:
        """POST /batch; answers by bId."""
        body = dumps({"BatchItemRequest": list(items)})
        # requestid: a replay returns the first answer without a second effect
        answer = self.post(describe, "batch", body, request_id=request_id, idempotent=True)
        return {str(item.get("bId")): item for item in answer.get("BatchItemResponse") or []}

    def close(self) -> None:
        self.http.close()
