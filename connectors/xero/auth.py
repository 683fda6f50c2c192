"""Xero OAuth2 with requests: xero-python has no standalone identity client, so the token endpoint
is called directly (HTTP Basic client auth, as Xero documents). The tenant id comes from
GET <api host>/connections. Nothing here prints or logs a token; error messages carry status codes
and OAuth error codes only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests

from connectors.base import AuthError, LedgerUnavailable
from connectors.oauth import oauth_error_code, raise_token_failure
from connectors.registry import OAuthEndpoints
from connectors.tokens import Refresher, RefreshRejected, Tokens
from connectors.xero.identity import NAME

SCOPE = "offline_access accounting.transactions accounting.contacts accounting.settings.read"
HTTP_TIMEOUT = 30


def token_call(
    endpoints: OAuthEndpoints, client_id: str, client_secret: str, form: dict[str, str]
) -> dict[str, Any]:
    try:
        response = requests.post(
            endpoints.token_url or "",
            data=form,
            auth=(client_id, client_secret),
            headers={"Accept": "application/json"},
            timeout=HTTP_TIMEOUT,
        )
    except requests.RequestException as error:
        raise LedgerUnavailable(f"cannot reach the Xero token endpoint ({type(error).__name__})") from None
    if response.status_code != 200:
        raise_token_failure(response.status_code, oauth_error_code(response), NAME)
    try:
        body = response.json()
    except ValueError:
        raise AuthError("the Xero token endpoint answered with a non-JSON body") from None
    return body if isinstance(body, dict) else {}


def refresher(client_id: str, client_secret: str, endpoints: OAuthEndpoints) -> Refresher:
    def refresh(tokens: Tokens) -> Tokens:
        now = datetime.now(UTC)
        body = token_call(
            endpoints,
            client_id,
            client_secret,
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
        )
        return Tokens.from_response(body, now=now, previous=tokens)

    return refresh


def tenants(endpoints: OAuthEndpoints, access_token: str) -> list[dict[str, Any]]:
    """GET /connections: the organisations this token may access."""
    try:
        response = requests.get(
            endpoints.connections_url or "",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            timeout=HTTP_TIMEOUT,
        )
    except requests.RequestException as error:
        raise LedgerUnavailable(f"cannot reach Xero /connections ({type(error).__name__})") from None
    if response.status_code != 200:
        raise AuthError(f"Xero /connections answered HTTP {response.status_code}")
    body = response.json()
    return [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []


class XeroAuthorization:
    def __init__(
        self, client_id: str, client_secret: str, *, redirect_uri: str, endpoints: OAuthEndpoints
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._endpoints = endpoints

    def consent_url(self, state: str) -> str:
        params = {
            "response_type": "code",
            "client_id": self._client_id,
            "redirect_uri": self._redirect_uri,
            "scope": SCOPE,
            "state": state,
        }
        return f"{self._endpoints.authorize_url}?{urlencode(params)}"

    def exchange(self, query: Mapping[str, str], *, echo: Callable[[str], None]) -> Tokens:
        now = datetime.now(UTC)
        form = {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": self._redirect_uri}
        try:
            body = token_call(self._endpoints, self._client_id, self._client_secret, form)
        except RefreshRejected:
            raise AuthError("Xero refused the authorization code (invalid_grant); try again") from None
        tokens = Tokens.from_response(body, now=now)
        found = tenants(self._endpoints, tokens.access_token)
        if not found:
            raise AuthError(
                "the Xero token gives access to no organisation", hint="pick one on the consent screen"
            )
        if len(found) > 1:
            names = ", ".join(f"{t.get('tenantName')} ({t.get('tenantId')})" for t in found)
            echo(f"Several organisations authorised; using the first. Others: {names}")
        return Tokens.from_response(body, now=now, account_id=str(found[0].get("tenantId")))
