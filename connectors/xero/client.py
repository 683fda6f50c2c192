"""The plumbing every Xero call goes through: xero-python's AccountingApi over urllib3.

- The SDK's base_url is our override (a sandbox or any local server): AccountingApi(base_url=...).
- The SDK's OAuth2 token comes from our TokenProvider through the oauth2_token_getter hook; the
  SDK never refreshes by itself (no expiry given to it): a 401 makes us force a refresh (rotated
  refresh token persisted encrypted by the provider) and retry once.
- Calls are made with _preload_content=False so we read the status, the rate headers and the raw
  JSON: records are mapped one by one (a malformed record is quarantined, the page goes on).
- Every call goes through the tenant limiter and call_with_retries; writes carry Idempotency-Key
  so they are retried safely.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Unpack

from connectors.base import AccessTokens, AuthError, ConnectorError, DayLimitReached
from connectors.client import RETRY_BASE_WAIT as RETRY_BASE_WAIT  # the plugin's default
from connectors.client import CallSettings, LedgerClient
from connectors.xero.errors import response_headers, translate_exception
from connectors.xero.identity import NAME

LEDGER = NAME
PAGE_SIZE = 1000

# An SDK call made with the client's options: (raw urllib3 response or None, status, headers).
Invoke = Callable[[], Any]


class Response:
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


class XeroClient(LedgerClient):
    """One tenant's AccountingApi, limiter, retries and token handling."""

    def __init__(
        self, *, name: str, base_url: str, tenant_id: str, tokens: AccessTokens, **calls: Unpack[CallSettings]
    ) -> None:
        # Lazy: xero-python is heavy, and the plugin registry must not import it.
        from xero_python.accounting import AccountingApi
        from xero_python.api_client import ApiClient
        from xero_python.api_client.configuration import Configuration
        from xero_python.api_client.oauth2 import OAuth2Token

        super().__init__(
            ledger=LEDGER, name=name, base_url=base_url, account_id=tenant_id, tokens=tokens, **calls
        )
        self.tenant_id = tenant_id
        # pull_started_at: the DateTimeUTC of the first page since start_pull() (XeroPull sets it).
        configuration = Configuration()
        # Configuration() copies a process-wide default: set the token holder on our copy only.
        configuration.oauth2_token = OAuth2Token()
        self._client = ApiClient(
            configuration,
            oauth2_token_getter=self._sdk_token,
            oauth2_token_saver=lambda _token: None,  # refreshes go through our TokenProvider
        )
        self.api = AccountingApi(self._client, base_url=self.base_url)

    def options(self) -> dict[str, Any]:
        """Keyword arguments of every SDK call: the raw answer, our timeout."""
        return {"_preload_content": False, "_return_http_data_only": False, "_request_timeout": self.timeout}

    def _sdk_token(self) -> dict[str, Any]:
        return {
            "access_token": getattr(self._local, "token", ""),
            "token_type": "Bearer",
            "scope": [],
            "expires_in": None,
            "expires_at": None,  # never expired for the SDK: we refresh, it must not
        }

    def _send(self, call: str, invoke: Invoke) -> Response:
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
            return Response(int(status), flat, body or b"")

    def call(self, call: str, invoke: Invoke, *, idempotent: bool) -> Response:
        def attempt() -> Response:
            with self.limiter.acquire():
                return self._send(call, invoke)

        try:
            return self.with_retries(attempt, idempotent=idempotent, describe=call)
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

    def json(self, call: str, invoke: Invoke, *, idempotent: bool = True) -> Any:
        """call(), then the answer's JSON body."""
        return self.call(call, invoke, idempotent=idempotent).json(call=call, connection=self.name)

    def close(self) -> None:
        self._client.rest_client.pool_manager.clear()
