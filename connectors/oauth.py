"""OAuth2 authorization-code flow and token refreshers for QuickBooks Online and Xero.

QuickBooks: intuitlib's AuthClient does the work. Its `environment` argument accepts a discovery
document URL, so RELANCE_QUICKBOOKS_DISCOVERY_URL (or the connection's `discovery_url`) is passed
straight to it and it reads authorization_endpoint / token_endpoint from that document.

Xero: xero-python has no standalone identity client, so the token endpoint is called with requests
(HTTP Basic client auth, as Xero documents). The identity root is overridable
(RELANCE_XERO_IDENTITY_URL); when it is, authorize = <root>/connect/authorize and
token = <root>/connect/token. The tenant id comes from GET <api host>/connections.

Nothing here prints or logs a token; error messages carry status codes and OAuth error codes only.
"""

from __future__ import annotations

import os
import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, TextIO
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from connectors.base import AuthError, ConnectionSetupError, ConnectorError, LedgerUnavailable
from connectors.tokens import RefreshRejected, Tokens

QUICKBOOKS_DISCOVERY_PRODUCTION = "https://developer.api.intuit.com/.well-known/openid_configuration"
QUICKBOOKS_DISCOVERY_SANDBOX = "https://developer.api.intuit.com/.well-known/openid_sandbox_configuration"
QUICKBOOKS_SCOPE = "com.intuit.quickbooks.accounting"
QUICKBOOKS_API_PRODUCTION = "https://quickbooks.api.intuit.com/v3"

XERO_AUTHORIZE_DEFAULT = "https://login.xero.com/identity/connect/authorize"
XERO_IDENTITY_DEFAULT = "https://identity.xero.com"
XERO_API_DEFAULT = "https://api.xero.com/api.xro/2.0"
XERO_SCOPE = "offline_access accounting.transactions accounting.contacts accounting.settings.read"

ENV_QUICKBOOKS_DISCOVERY = "RELANCE_QUICKBOOKS_DISCOVERY_URL"
ENV_XERO_IDENTITY = "RELANCE_XERO_IDENTITY_URL"
ENV_QUICKBOOKS_BASE = "RELANCE_QUICKBOOKS_BASE_URL"
ENV_XERO_BASE = "RELANCE_XERO_BASE_URL"

LEDGERS = ("quickbooks", "xero")
HTTP_TIMEOUT = 30


@dataclass(frozen=True, slots=True)
class OAuthEndpoints:
    """Where to send the user and the token requests. QBO resolves authorize/token from the
    discovery document at use time (intuitlib); Xero has them directly."""

    ledger: str
    discovery_url: str | None = None  # quickbooks
    authorize_url: str | None = None  # xero
    token_url: str | None = None  # xero
    connections_url: str | None = None  # xero


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def resolve_endpoints(
    ledger: str,
    *,
    discovery_url: str | None = None,
    identity_url: str | None = None,
    base_url: str | None = None,
) -> OAuthEndpoints:
    """Environment overrides win for the whole process, then the connection's values, then the
    vendors' production endpoints."""
    if ledger == "quickbooks":
        return OAuthEndpoints(
            ledger,
            discovery_url=_env(ENV_QUICKBOOKS_DISCOVERY) or discovery_url or QUICKBOOKS_DISCOVERY_PRODUCTION,
        )
    if ledger == "xero":
        identity = _env(ENV_XERO_IDENTITY) or identity_url
        api = (_env(ENV_XERO_BASE) or base_url or XERO_API_DEFAULT).rstrip("/")
        split = urlsplit(api)
        connections = f"{split.scheme}://{split.netloc}/connections"
        if identity:
            identity = identity.rstrip("/")
            return OAuthEndpoints(
                ledger,
                authorize_url=f"{identity}/connect/authorize",
                token_url=f"{identity}/connect/token",
                connections_url=connections,
            )
        return OAuthEndpoints(
            ledger,
            authorize_url=XERO_AUTHORIZE_DEFAULT,
            token_url=f"{XERO_IDENTITY_DEFAULT}/connect/token",
            connections_url=connections,
        )
    raise ConnectionSetupError(f"unknown ledger {ledger!r}", hint="use quickbooks or xero")


# ---------------------------------------------------------------- QuickBooks (intuitlib)


def _intuit_client(client_id: str, client_secret: str, redirect_uri: str, discovery_url: str) -> Any:
    from intuitlib.client import AuthClient
    from intuitlib.exceptions import AuthClientError

    try:
        return AuthClient(client_id, client_secret, redirect_uri, discovery_url)
    except AuthClientError as error:
        raise LedgerUnavailable(
            f"the Intuit discovery document answered HTTP {error.status_code}", call=discovery_url
        ) from None
    except requests.RequestException as error:
        raise LedgerUnavailable(
            f"cannot reach the Intuit discovery document ({type(error).__name__})",
            call=discovery_url,
            hint=f"check the network, or {ENV_QUICKBOOKS_DISCOVERY}",
        ) from None


def _oauth_error_code(response: requests.Response | Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def _raise_token_failure(status: int, error_code: str, ledger: str) -> None:
    if status == 400 and error_code == "invalid_grant":
        raise RefreshRejected(error_code)
    if status in (400, 401) and error_code == "invalid_client":
        raise AuthError(
            f"{ledger} refused the client id / secret (invalid_client)",
            hint=f"check the app keys and run `relance connect {ledger}` again",
        )
    if status >= 500 or status == 429:
        raise LedgerUnavailable(f"{ledger} token endpoint answered HTTP {status}", retryable=True)
    raise AuthError(f"{ledger} token endpoint answered HTTP {status} {error_code}".rstrip())


def _quickbooks_refresher(
    client_id: str, client_secret: str, endpoints: OAuthEndpoints
) -> Callable[[Tokens], Tokens]:
    def refresh(tokens: Tokens) -> Tokens:
        from intuitlib.exceptions import AuthClientError

        client = _intuit_client(client_id, client_secret, "", endpoints.discovery_url or "")
        now = datetime.now(UTC)
        try:
            client.refresh(refresh_token=tokens.refresh_token)
        except AuthClientError as error:
            _raise_token_failure(error.status_code, _oauth_error_code(error.response), "quickbooks")
        except requests.RequestException as error:
            raise LedgerUnavailable(
                f"cannot reach the Intuit token endpoint ({type(error).__name__})"
            ) from None
        finally:
            client.close()
        return Tokens.from_response(
            {
                "access_token": client.access_token,
                "refresh_token": client.refresh_token,
                "expires_in": client.expires_in or 3600,
                "x_refresh_token_expires_in": client.x_refresh_token_expires_in,
            },
            now=now,
            previous=tokens,
        )

    return refresh


# ---------------------------------------------------------------- Xero (requests)


def _xero_token_call(
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
        _raise_token_failure(response.status_code, _oauth_error_code(response), "xero")
    try:
        body = response.json()
    except ValueError:
        raise AuthError("the Xero token endpoint answered with a non-JSON body") from None
    return body if isinstance(body, dict) else {}


def _xero_refresher(
    client_id: str, client_secret: str, endpoints: OAuthEndpoints
) -> Callable[[Tokens], Tokens]:
    def refresh(tokens: Tokens) -> Tokens:
        now = datetime.now(UTC)
        body = _xero_token_call(
            endpoints,
            client_id,
            client_secret,
            {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
        )
        return Tokens.from_response(body, now=now, previous=tokens)

    return refresh


def xero_tenants(endpoints: OAuthEndpoints, access_token: str) -> list[dict[str, Any]]:
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


def refresher_for(
    ledger: str, client_id: str, client_secret: str, endpoints: OAuthEndpoints
) -> Callable[[Tokens], Tokens]:
    """A function turning stored tokens into fresh ones (raises RefreshRejected on invalid_grant)."""
    if ledger == "quickbooks":
        return _quickbooks_refresher(client_id, client_secret, endpoints)
    if ledger == "xero":
        return _xero_refresher(client_id, client_secret, endpoints)
    raise ConnectionSetupError(f"unknown ledger {ledger!r}", hint="use quickbooks or xero")


# ---------------------------------------------------------------- authorization-code flow


@dataclass
class _Redirect:
    url: str | None = None


def _listen_for_redirect(server: HTTPServer, timeout: float) -> str:
    """Serve until one request carrying code= or error= arrives; return its full path."""
    received = _Redirect()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            if "code" in query or "error" in query:
                received.url = self.path
                body = b"relance is connected. You can close this window."
                self.send_response(200)
            else:
                body = b"Waiting for the authorization redirect."
                self.send_response(404)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server.RequestHandlerClass = Handler
    server.timeout = 1.0
    deadline = datetime.now(UTC).timestamp() + timeout
    while received.url is None:
        if datetime.now(UTC).timestamp() > deadline:
            raise AuthError(
                f"no authorization redirect within {int(timeout)} s",
                hint="run the command again, or use --paste on a machine without a browser",
            )
        server.handle_request()
    return received.url


def _parse_redirect(url: str, expected_state: str, ledger: str) -> dict[str, str]:
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url.strip()).query).items()}
    if "error" in query:
        raise AuthError(f"{ledger} authorization was refused ({query['error']})")
    if "code" not in query:
        raise AuthError(
            "the pasted URL has no authorization code", hint="paste the whole address the browser ended on"
        )
    if query.get("state") != expected_state:
        raise AuthError("the authorization redirect has the wrong state (possible CSRF); try again")
    return query


def run_authorization_flow(
    ledger: str,
    client_id: str,
    client_secret: str,
    *,
    open_browser: bool,
    paste: bool,
    port: int,
    endpoints: OAuthEndpoints | None = None,
    timeout: float = 300,
    stdin: TextIO | None = None,
    echo: Callable[[str], None] | None = None,
    browser: Callable[[str], None] | None = None,
    discovery_url: str | None = None,
    identity_url: str | None = None,
    api_root: str | None = None,
) -> Tokens:
    """Consent URL -> redirect (listener on 127.0.0.1:port, or pasted) -> tokens (+ account id).

    `browser(url)` replaces the web browser (tests and the demo follow the consent URL themselves;
    the sandboxes auto-approve). Without `endpoints`, they are resolved from the environment and
    discovery_url / identity_url / api_root."""
    endpoints = endpoints or resolve_endpoints(
        ledger, discovery_url=discovery_url, identity_url=identity_url, base_url=api_root
    )
    echo = echo or (lambda text: print(text, file=sys.stderr))
    stdin = stdin or sys.stdin
    state = secrets.token_urlsafe(16)

    server: HTTPServer | None = None
    if not paste:
        try:
            server = HTTPServer(("127.0.0.1", port), BaseHTTPRequestHandler)
        except OSError as error:
            raise ConnectionSetupError(
                f"cannot listen on 127.0.0.1:{port} for the OAuth redirect ({error.strerror})",
                hint="choose another --port, or use --paste",
            ) from None
        port = int(server.server_address[1])
    redirect_uri = f"http://127.0.0.1:{port}/callback"

    try:
        intuit = None
        if ledger == "quickbooks":
            intuit = _intuit_client(client_id, client_secret, redirect_uri, endpoints.discovery_url or "")
            from intuitlib.enums import Scopes

            consent_url = intuit.get_authorization_url([Scopes.ACCOUNTING], state_token=state)
        elif ledger == "xero":
            params = {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "scope": XERO_SCOPE,
                "state": state,
            }
            consent_url = f"{endpoints.authorize_url}?{urlencode(params)}"
        else:
            raise ConnectionSetupError(f"unknown ledger {ledger!r}", hint="use quickbooks or xero")

        echo(f"Open this URL to authorise relance:\n  {consent_url}")
        if browser is not None:
            # in a thread: a browser that follows the redirect would wait for our listener
            threading.Thread(target=browser, args=(consent_url,), daemon=True).start()
        elif open_browser:
            webbrowser.open(consent_url)
        if server is not None:
            echo(f"Waiting for the redirect on {redirect_uri} ...")
            redirected = _listen_for_redirect(server, timeout)
        else:
            echo("After approving, paste the full address the browser was sent to:")
            redirected = stdin.readline()
        query = _parse_redirect(redirected, state, ledger)
    finally:
        if server is not None:
            server.server_close()

    now = datetime.now(UTC)
    if ledger == "quickbooks":
        from intuitlib.exceptions import AuthClientError

        assert intuit is not None
        try:
            intuit.get_bearer_token(query["code"], realm_id=query.get("realmId"))
        except AuthClientError as error:
            try:
                _raise_token_failure(error.status_code, _oauth_error_code(error.response), ledger)
            except RefreshRejected:
                raise AuthError("Intuit refused the authorization code (invalid_grant); try again") from None
        except requests.RequestException as error:
            raise LedgerUnavailable(
                f"cannot reach the Intuit token endpoint ({type(error).__name__})"
            ) from None
        finally:
            intuit.close()
        realm = query.get("realmId") or intuit.realm_id
        if not realm:
            raise AuthError("Intuit did not say which company was authorised (no realmId)")
        return Tokens.from_response(
            {
                "access_token": intuit.access_token,
                "refresh_token": intuit.refresh_token,
                "expires_in": intuit.expires_in or 3600,
                "x_refresh_token_expires_in": intuit.x_refresh_token_expires_in,
                "scope": QUICKBOOKS_SCOPE,
            },
            now=now,
            account_id=str(realm),
        )

    try:
        body = _xero_token_call(
            endpoints,
            client_id,
            client_secret,
            {"grant_type": "authorization_code", "code": query["code"], "redirect_uri": redirect_uri},
        )
    except RefreshRejected:
        raise AuthError("Xero refused the authorization code (invalid_grant); try again") from None
    tokens = Tokens.from_response(body, now=now)
    tenants = xero_tenants(endpoints, tokens.access_token)
    if not tenants:
        raise AuthError(
            "the Xero token gives access to no organisation", hint="pick one on the consent screen"
        )
    if len(tenants) > 1:
        names = ", ".join(f"{t.get('tenantName')} ({t.get('tenantId')})" for t in tenants)
        echo(f"Several organisations authorised; using the first. Others: {names}")
    return Tokens.from_response(body, now=now, account_id=str(tenants[0].get("tenantId")))


def describe_error(error: Exception) -> str:
    """One line for an OAuth failure, never containing a token."""
    if isinstance(error, ConnectorError):
        return str(error)
    return type(error).__name__
