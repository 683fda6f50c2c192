"""OAuth 2.0 as Intuit and Xero run it, for the sandboxes: an authority that issues codes and
tokens (access tokens expire by the sandbox clock, refresh tokens rotate), the authorize and
token routes, and Intuit's OpenID discovery document.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlencode

from connectors.sandbox.clock import SandboxClock
from connectors.sandbox.messages import (
    Route,
    SandboxRequest,
    SandboxResponse,
    json_response,
    redirect_response,
    request_root,
)


class OAuthError(Exception):
    """An OAuth protocol error; `error` is the RFC 6749 code (invalid_grant, invalid_client...)."""

    def __init__(self, error: str, status: int = 400, description: str = "") -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.status = status
        self.description = description


class OAuthAuthority:
    """Issues codes and tokens like Intuit and Xero: access tokens expire (by the sandbox clock),
    refresh tokens ROTATE (a used refresh token is dead: reusing it gives invalid_grant)."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        access_ttl: int = 3600,
        *,
        refresh_ttl: int = 100 * 86400,
        enforce_refresh_expiry: bool = False,
        clock: SandboxClock | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_ttl = access_ttl
        # Reported as x_refresh_token_expires_in; enforced only on request, because time-travel
        # tests jump the clock by months and would otherwise lock themselves out.
        self.refresh_ttl = refresh_ttl
        self.enforce_refresh_expiry = enforce_refresh_expiry
        self.clock = clock or SandboxClock()
        self._lock = threading.Lock()
        self._codes: dict[str, tuple[str, str, datetime]] = {}  # code -> (redirect_uri, scope, expiry)
        self._access: dict[str, datetime] = {}  # token -> expires at (sandbox clock)
        self._refresh: dict[str, tuple[datetime, str]] = {}  # token -> (expires at, scope)
        self.refresh_count = 0  # successful refreshes (tests check one burn per rotation)

    # -- client auth
    def _check_client(self, client_id: str | None, client_secret: str | None) -> None:
        if client_id != self.client_id or client_secret != self.client_secret:
            raise OAuthError("invalid_client", 401, "unknown client or wrong secret")

    def issue_code(self, redirect_uri: str, state: str, scope: str) -> str:
        del state  # echoed by the authorize route, not bound to the code
        code = "code-" + secrets.token_urlsafe(18)
        with self._lock:
            self._codes[code] = (redirect_uri, scope, self.clock.now() + timedelta(minutes=10))
        return code

    def _issue_tokens(self, scope: str) -> dict[str, Any]:
        now = self.clock.now()
        access = "at-" + secrets.token_urlsafe(32)
        refresh = "rt-" + secrets.token_urlsafe(32)
        self._access[access] = now + timedelta(seconds=self.access_ttl)
        self._refresh[refresh] = (now + timedelta(seconds=self.refresh_ttl), scope)
        if len(self._access) > 10_000:  # keep memory bounded on long benchmark runs
            self._access = {t: exp for t, exp in self._access.items() if exp > now}
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.access_ttl,
            "x_refresh_token_expires_in": self.refresh_ttl,
            "token_type": "Bearer",
            "scope": scope,
        }

    def exchange_code(
        self, code: str, client_id: str | None, client_secret: str | None, redirect_uri: str | None
    ) -> dict[str, Any]:
        self._check_client(client_id, client_secret)
        with self._lock:
            entry = self._codes.pop(code, None)
            if entry is None:
                raise OAuthError("invalid_grant", 400, "unknown or used authorization code")
            expected_uri, scope, expiry = entry
            if expiry < self.clock.now():
                raise OAuthError("invalid_grant", 400, "authorization code expired")
            if redirect_uri != expected_uri:
                raise OAuthError("invalid_grant", 400, "redirect_uri does not match")
            return self._issue_tokens(scope)

    def refresh(self, refresh_token: str, client_id: str | None, client_secret: str | None) -> dict[str, Any]:
        self._check_client(client_id, client_secret)
        with self._lock:
            entry = self._refresh.pop(refresh_token, None)
            if entry is None:
                raise OAuthError("invalid_grant", 400, "refresh token invalid or already used")
            expiry, scope = entry
            if self.enforce_refresh_expiry and expiry < self.clock.now():
                raise OAuthError("invalid_grant", 400, "refresh token expired")
            self.refresh_count += 1
            return self._issue_tokens(scope)

    def check_bearer(self, authorization_header: str | None) -> bool:
        if not authorization_header:
            return False
        scheme, _, token = authorization_header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        with self._lock:
            expiry = self._access.get(token.strip())
        return expiry is not None and expiry > self.clock.now()

    def grant(self, scope: str = "") -> dict[str, Any]:
        """Issue a token pair directly (for tests and benchmarks that skip the consent step)."""
        with self._lock:
            return self._issue_tokens(scope)

    def expire_all(self) -> None:
        with self._lock:
            self._access.clear()

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "access_ttl": self.access_ttl,
                "refresh_ttl": self.refresh_ttl,
                "access": {t: e.isoformat() for t, e in self._access.items()},
                "refresh": {t: [e.isoformat(), s] for t, (e, s) in self._refresh.items()},
                "refresh_count": self.refresh_count,
            }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, clock: SandboxClock | None = None) -> OAuthAuthority:
        authority = cls(
            data["client_id"],
            data["client_secret"],
            int(data.get("access_ttl", 3600)),
            refresh_ttl=int(data.get("refresh_ttl", 100 * 86400)),
            clock=clock,
        )
        authority._access = {t: datetime.fromisoformat(e) for t, e in data.get("access", {}).items()}
        authority._refresh = {
            t: (datetime.fromisoformat(e), s) for t, (e, s) in data.get("refresh", {}).items()
        }
        authority.refresh_count = int(data.get("refresh_count", 0))
        return authority

    def restore(self, data: dict[str, Any]) -> None:
        """Take over the tokens and refresh count of a saved authority (`to_dict`), keeping this
        authority's client credentials and lifetimes: a sandbox reloading its state file."""
        saved = OAuthAuthority.from_dict(data, clock=self.clock)
        with self._lock:
            self._access = saved._access
            self._refresh = saved._refresh
            self.refresh_count = saved.refresh_count


# ---------------------------------------------------------------- OAuth routes


def _client_credentials(request: SandboxRequest, form: dict[str, str]) -> tuple[str | None, str | None]:
    header = request.headers.get("Authorization") or ""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            decoded = base64.b64decode(encoded.strip()).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None, None
        client_id, _, client_secret = decoded.partition(":")
        return unquote(client_id), unquote(client_secret)
    return form.get("client_id"), form.get("client_secret")


def oauth_routes(
    authority: OAuthAuthority,
    *,
    authorize_path: str,
    token_path: str,
    redirect_extra: Callable[[SandboxRequest], dict[str, str]] | None = None,
) -> list[Route]:
    """Authorize (auto-approves, 302 to redirect_uri?code&state[+extra, e.g. realmId]) and token
    (authorization_code | refresh_token; HTTP Basic or form client credentials)."""

    def authorize(request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        redirect_uri = request.param("redirect_uri")
        if request.param("client_id") != authority.client_id or not redirect_uri:
            return json_response({"error": "invalid_request", "error_description": "bad client_id"}, 400)
        state = request.param("state", "") or ""
        code = authority.issue_code(redirect_uri, state, request.param("scope", "") or "")
        params = {"code": code, "state": state}
        if redirect_extra is not None:
            params.update(redirect_extra(request))
        separator = "&" if "?" in redirect_uri else "?"
        return redirect_response(f"{redirect_uri}{separator}{urlencode(params)}")

    def token(request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        form = request.form()
        client_id, client_secret = _client_credentials(request, form)
        grant_type = form.get("grant_type")
        try:
            if grant_type == "authorization_code":
                body = authority.exchange_code(
                    form.get("code", ""), client_id, client_secret, form.get("redirect_uri")
                )
            elif grant_type == "refresh_token":
                body = authority.refresh(form.get("refresh_token", ""), client_id, client_secret)
            else:
                raise OAuthError("unsupported_grant_type", 400)
        except OAuthError as error:
            payload = {"error": error.error}
            if error.description:
                payload["error_description"] = error.description
            return json_response(payload, error.status, {"Cache-Control": "no-store"})
        return json_response(body, 200, {"Cache-Control": "no-store"})

    return [
        Route("GET", authorize_path, authorize, auth=False),
        Route("POST", token_path, token, auth=False),
    ]


def openid_discovery_route(path: str, *, authorize_path: str, token_path: str) -> Route:
    """An OpenID discovery document (Intuit style) pointing at this server's OAuth routes."""

    def discovery(request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        root = request_root(request)
        return json_response(
            {
                "issuer": root,
                "authorization_endpoint": root + authorize_path,
                "token_endpoint": root + token_path,
                "revocation_endpoint": root + "/oauth2/v1/tokens/revoke",
                "userinfo_endpoint": root + "/v1/openid_connect/userinfo",
                "jwks_uri": root + "/oauth2/v1/keys",
                "response_types_supported": ["code"],
                "scopes_supported": ["openid", "email", "profile", "com.intuit.quickbooks.accounting"],
            }
        )

    return Route("GET", path, discovery, auth=False)
