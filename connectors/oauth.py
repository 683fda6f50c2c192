"""The OAuth2 authorization-code flow every ledger shares, and the ledgers' OAuth hooks reached
through their plugins (connectors.registry): endpoints, token refreshers, consent and code exchange.

The flow: the ledger's consent URL -> the redirect (a listener on 127.0.0.1:port, or an address the
user pastes) -> the ledger exchanges the code for tokens carrying the account id. The ledgers' own
parts live with them: connectors/quickbooks/auth.py (intuitlib, discovery document) and
connectors/xero/auth.py (identity endpoints with requests, tenant from /connections).

Nothing here prints or logs a token; error messages carry status codes and OAuth error codes only.
"""

from __future__ import annotations

import secrets
import sys
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, NoReturn, Protocol, TextIO
from urllib.parse import parse_qs, urlsplit

from connectors.base import AuthError, ConnectionSetupError, LedgerUnavailable
from connectors.registry import OAuthEndpoints, ledger_plugin
from connectors.tokens import Refresher, RefreshRejected, Tokens


def resolve_endpoints(
    ledger: str,
    *,
    discovery_url: str | None = None,
    identity_url: str | None = None,
    base_url: str | None = None,
) -> OAuthEndpoints:
    """Environment overrides win for the whole process, then the connection's values, then the
    vendors' production endpoints."""
    return ledger_plugin(ledger).endpoints(
        discovery_url=discovery_url, identity_url=identity_url, base_url=base_url
    )


def refresher_for(ledger: str, client_id: str, client_secret: str, endpoints: OAuthEndpoints) -> Refresher:
    """A function turning stored tokens into fresh ones (raises RefreshRejected on invalid_grant)."""
    return ledger_plugin(ledger).refresher(client_id, client_secret, endpoints)


# ---------------------------------------------------------------- token endpoint answers


class _JsonAnswer(Protocol):
    def json(self) -> Any: ...


def oauth_error_code(response: _JsonAnswer) -> str:
    """The OAuth `error` of a token endpoint's answer ("" when it has none)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("error", "")) if isinstance(body, dict) else ""


def raise_token_failure(status: int, error_code: str, ledger: str) -> NoReturn:
    """The error a refused token request means (RefreshRejected for invalid_grant)."""
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
    plugin = ledger_plugin(ledger)
    endpoints = endpoints or plugin.endpoints(
        discovery_url=discovery_url, identity_url=identity_url, base_url=api_root
    )
    say: Callable[[str], None] = echo or (lambda text: print(text, file=sys.stderr))
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
        session = plugin.authorize(client_id, client_secret, redirect_uri=redirect_uri, endpoints=endpoints)
        consent_url = session.consent_url(state)
        say(f"Open this URL to authorise relance:\n  {consent_url}")
        if browser is not None:
            # in a thread: a browser that follows the redirect would wait for our listener
            threading.Thread(target=browser, args=(consent_url,), daemon=True).start()
        elif open_browser:
            webbrowser.open(consent_url)
        if server is not None:
            say(f"Waiting for the redirect on {redirect_uri} ...")
            redirected = _listen_for_redirect(server, timeout)
        else:
            say("After approving, paste the full address the browser was sent to:")
            redirected = stdin.readline()
        query = _parse_redirect(redirected, state, ledger)
    finally:
        if server is not None:
            server.server_close()
    return session.exchange(query, echo=say)
