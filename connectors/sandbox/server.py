"""The HTTP framework both ledger sandboxes are built on: a real threaded HTTP server on
127.0.0.1 with a virtual clock, an OAuth authority that rotates refresh tokens, fault injection
and a request log.

Ledger sandboxes (connectors/sandbox/quickbooks.py, connectors/sandbox/xero.py) supply routes and
ledger-specific fault bodies; everything generic lives here so both behave the same way.

Faults (429, 5xx, day limit, latency, expired tokens) apply only to routes with `auth=True` (the
API itself): OAuth and discovery routes are never faulted, so a refresh is never the flaky part.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import random
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, Self, runtime_checkable
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from requests.structures import CaseInsensitiveDict

if TYPE_CHECKING:
    from connectors.sandbox.generator import GeneratedCompany
    from policies.model.ledger import LedgerSnapshot

log = logging.getLogger("relance.sandbox")

FaultKind = Literal["429", "5xx", "401", "day_limit"]


# ---------------------------------------------------------------- clock


class SandboxClock:
    """The sandbox's idea of now: real time shifted by a whole number of days (time travel)."""

    def __init__(self, today: date | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        if today is not None:
            self.set_today(today)

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return datetime.now(UTC) + offset

    def today(self) -> date:
        return self.now().date()

    def set_today(self, day: date) -> None:
        with self._lock:
            self._offset = timedelta(days=(day - datetime.now(UTC).date()).days)

    def advance(self, days: int) -> None:
        with self._lock:
            self._offset += timedelta(days=days)


# ---------------------------------------------------------------- faults


@dataclass
class Faults:
    """Fault injection, mutable at runtime (tests flip fields while the server runs)."""

    rate_429: float = 0.0  # fraction of API requests answered 429
    retry_after: float = 1.0  # seconds, sent as Retry-After
    rate_5xx: float = 0.0  # fraction answered 503
    burst_5xx: int = 0  # the next N API requests get 503
    latency: float = 0.0  # seconds added per request
    expire_tokens: bool = False  # True: every issued access token becomes invalid (flag resets)
    day_limit_remaining: int | None = None  # Xero day budget; at 0 -> 429 X-Rate-Limit-Problem: day
    qbo_xml_throttle: bool = False  # QBO: 429 bodies are the XML Fault code 3001
    seed: int = 0
    rng: random.Random = field(init=False, repr=False)
    lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def reset(self) -> None:
        """Back to no faults (keeps the random stream)."""
        with self.lock:
            self.rate_429 = self.rate_5xx = self.latency = 0.0
            self.burst_5xx = 0
            self.expire_tokens = self.qbo_xml_throttle = False
            self.day_limit_remaining = None

    def draw(self) -> FaultKind | None:
        """Decide the fault for one API request (consumes budgets). Thread-safe."""
        with self.lock:
            if self.day_limit_remaining is not None:
                if self.day_limit_remaining <= 0:
                    return "day_limit"
                self.day_limit_remaining -= 1
            if self.burst_5xx > 0:
                self.burst_5xx -= 1
                return "5xx"
            if self.rate_429 and self.rng.random() < self.rate_429:
                return "429"
            if self.rate_5xx and self.rng.random() < self.rate_5xx:
                return "5xx"
            return None

    def take_expire_tokens(self) -> bool:
        with self.lock:
            flagged, self.expire_tokens = self.expire_tokens, False
            return flagged


# ---------------------------------------------------------------- request log


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    method: str
    path: str
    status: int
    at: datetime
    query: str = ""


_ID_SEGMENT = re.compile(
    r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-f]{16,})$"
)


def path_pattern(path: str) -> str:
    """/v3/company/123/invoice/45 -> /v3/company/{id}/invoice/{id} (for call counts)."""
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


class RequestLog:
    """Every request the sandbox answered, with its final status. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []

    def add(self, method: str, path: str, status: int, query: str | dict[str, list[str]] = "") -> None:
        if isinstance(query, dict):
            query = urlencode(query, doseq=True)
        entry = LoggedRequest(method.upper(), path, status, datetime.now(UTC), query)
        with self._lock:
            self._entries.append(entry)

    @property
    def entries(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._entries)

    def count(
        self, method: str | None = None, path_contains: str | None = None, status: int | None = None
    ) -> int:
        return sum(
            1
            for e in self.entries
            if (method is None or e.method == method.upper())
            and (path_contains is None or path_contains in e.path)
            and (status is None or e.status == status)
        )

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def snapshot(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self.entries:
            key = f"{e.method} {path_pattern(e.path)}"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))


# ---------------------------------------------------------------- OAuth


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


# ---------------------------------------------------------------- request / response


@dataclass
class SandboxRequest:
    method: str
    path: str  # percent-decoded, without the query string
    query: dict[str, list[str]]
    headers: CaseInsensitiveDict[str]
    body: bytes = b""

    def json(self) -> Any:
        if not self.body:
            return None
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """application/x-www-form-urlencoded body, one value per key."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}

    def param(self, name: str, default: str | None = None) -> str | None:
        """Query parameter (case-sensitive name), last value wins."""
        values = self.query.get(name)
        return values[-1] if values else default


@dataclass
class SandboxResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        # JSON has no decimal type; the shortest float repr of a money amount keeps every digit.
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, separators=(",", ":"))


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> SandboxResponse:
    merged = {"Content-Type": "application/json; charset=utf-8"}
    merged.update(headers or {})
    return SandboxResponse(status, json_dumps(obj).encode("utf-8"), merged)


def text_response(
    text: str, status: int = 200, headers: dict[str, str] | None = None, content_type: str = "text/plain"
) -> SandboxResponse:
    merged = {"Content-Type": f"{content_type}; charset=utf-8"}
    merged.update(headers or {})
    return SandboxResponse(status, text.encode("utf-8"), merged)


def redirect_response(location: str) -> SandboxResponse:
    return SandboxResponse(302, b"", {"Location": location})


QBO_THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{time}">'
    '<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; '
    "statusCode=429</Message><Detail>The request limit was reached.</Detail></Error></Fault>"
    "</IntuitResponse>"
)


def default_fault_response(kind: FaultKind, request: SandboxRequest, faults: Faults) -> SandboxResponse:
    """Generic bodies; ledger sandboxes pass their own `fault_response` for faithful shapes."""
    del request
    if kind == "429":
        if faults.qbo_xml_throttle:
            body = QBO_THROTTLE_XML.replace("{time}", datetime.now(UTC).isoformat())
            return text_response(body, 429, content_type="application/xml")
        return json_response({"error": "rate_limited", "message": "Too many requests"}, 429)
    if kind == "day_limit":
        return json_response({"error": "rate_limited", "message": "Daily limit reached"}, 429)
    if kind == "401":
        return json_response({"error": "unauthorized", "message": "Invalid or expired token"}, 401)
    return json_response({"error": "unavailable", "message": "Service unavailable (injected)"}, 503)


# ---------------------------------------------------------------- routes and server


Handler = Callable[[SandboxRequest, "re.Match[str]"], SandboxResponse]


@dataclass
class Route:
    method: str
    pattern: str  # regex, full match on the decoded path
    handler: Handler
    auth: bool = True
    compiled: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.method = self.method.upper()
        self.compiled = re.compile(self.pattern)


def _seconds_to_next_day(clock: SandboxClock) -> int:
    now = clock.now()
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
    return max(1, int((tomorrow - now).total_seconds()))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # idle keep-alive clients must not block stop()
    allow_reuse_address = True
    sandbox: SandboxServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request (killed by a crash test, timed out) is routine for
        # a ledger; anything else is logged, not printed over the user's terminal.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        log.warning("sandbox: error while serving %s", client_address, exc_info=True)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer
    timeout = 60  # idle keep-alive connections are closed after a minute

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the RequestLog is the record

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle + delayed ACK
        # add tens of milliseconds to every keep-alive response.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.sandbox._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sandbox._track(self.connection, add=False)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        request = SandboxRequest(
            method=self.command.upper(),
            path=unquote(split.path),
            query=parse_qs(split.query, keep_blank_values=True),
            headers=CaseInsensitiveDict(dict(self.headers.items())),
            body=body,
        )
        response = self.server.sandbox.handle(request)
        self.send_response(response.status)
        headers = dict(response.headers)
        headers["Content-Length"] = str(len(response.body))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class SandboxServer:
    """A real HTTP server dispatching to `routes`, with faults, OAuth bearer checks and a log."""

    def __init__(
        self,
        routes: Sequence[Route],
        *,
        authority: OAuthAuthority,
        clock: SandboxClock | None = None,
        faults: Faults | None = None,
        log: RequestLog | None = None,
        fault_response: Callable[[FaultKind, SandboxRequest], SandboxResponse] | None = None,
        state_lock: threading.RLock | None = None,
    ) -> None:
        self.routes = list(routes)
        self.authority = authority
        self.clock = clock or authority.clock
        self.faults = faults if faults is not None else Faults()
        self.log = log if log is not None else RequestLog()
        self.fault_response = fault_response
        self.state_lock = state_lock or threading.RLock()
        self.errors: list[str] = []  # handler exceptions, for tests to assert on
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    # -- lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        if self._httpd is not None:
            return self.url
        httpd = _HTTPServer((host, port), _RequestHandler)
        httpd.sandbox = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        with self._connections_lock:
            connections = list(self._connections)
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("sandbox server not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("sandbox server not started")
        host = self._httpd.server_address[0]
        return f"http://{host}:{self.port}"

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # -- dispatch
    def _fault(self, kind: FaultKind, request: SandboxRequest) -> SandboxResponse:
        if self.fault_response is not None:
            response = self.fault_response(kind, request)
        else:
            response = default_fault_response(kind, request, self.faults)
        if kind == "429":
            response.headers.setdefault("Retry-After", _format_seconds(self.faults.retry_after))
        elif kind == "day_limit":
            response.headers.setdefault("X-Rate-Limit-Problem", "day")
            response.headers.setdefault("Retry-After", str(_seconds_to_next_day(self.clock)))
        return response

    def match(self, method: str, path: str) -> tuple[Route, re.Match[str]] | None:
        for route in self.routes:
            if route.method == method:
                found = route.compiled.fullmatch(path)
                if found:
                    return route, found
        return None

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        """Answer one request (also callable without HTTP, e.g. from unit tests)."""
        response = self._answer(request)
        query = urlencode(request.query, doseq=True)
        self.log.add(request.method, request.path, response.status, query)
        return response

    def _answer(self, request: SandboxRequest) -> SandboxResponse:
        found = self.match(request.method, request.path)
        if found is None:
            return json_response(
                {"error": "not_found", "message": f"no route for {request.method} {request.path}"}, 404
            )
        route, matched = found
        if route.auth:
            if self.faults.latency:
                time.sleep(self.faults.latency)
            kind = self.faults.draw()
            if kind is not None:
                return self._fault(kind, request)
            if self.faults.take_expire_tokens():
                self.authority.expire_all()
            if not self.authority.check_bearer(request.headers.get("Authorization")):
                return self._fault("401", request)
        try:
            with self.state_lock:
                response = route.handler(request, matched)
        except Exception as error:  # a sandbox bug: answer 500 and keep serving
            message = f"{type(error).__name__}: {error}"
            self.errors.append(f"{request.method} {request.path}: {message}")
            log.error("sandbox handler failed on %s %s", request.method, request.path, exc_info=True)
            return json_response({"error": "internal", "message": message}, 500)
        remaining = self.faults.day_limit_remaining
        if route.auth and remaining is not None:
            response.headers.setdefault("X-DayLimit-Remaining", str(max(0, remaining)))
        return response


def _format_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


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


def request_root(request: SandboxRequest) -> str:
    """http://host:port of the server as the client addressed it."""
    return f"http://{request.headers.get('Host', '127.0.0.1')}"


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


# ---------------------------------------------------------------- control protocol


EffectKind = Literal["email", "note", "fee_line", "fee_invoice", "credit_note"]


@dataclass(frozen=True, slots=True)
class Effect:
    """Something a write did to the sandbox ledger (what exactly-once tests count)."""

    kind: EffectKind
    invoice_id: str
    idempotency_key: str | None
    amount: Decimal | None
    at: datetime
    detail: str = ""


class SandboxLifecycle:
    """Start/stop and URLs shared by the ledger sandboxes (they set `self.server`)."""

    server: SandboxServer

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.server.start(host, port)
        return self.base_url

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        return self.server.url

    @property
    def base_url(self) -> str:  # the API root the SDK appends resource paths to
        raise NotImplementedError


@runtime_checkable
class SandboxControl(Protocol):
    """What both ledger sandboxes expose to e2e tests and benchmarks."""

    clock: SandboxClock
    faults: Faults
    log: RequestLog

    def seed(self, company: GeneratedCompany) -> None: ...

    def add_payment(self, invoice_id: str, amount: Decimal, on: date) -> str: ...

    def modify_invoices(self, ids: Sequence[str]) -> None: ...

    def effects(self) -> list[Effect]: ...

    def truth(self) -> LedgerSnapshot: ...

    def save(self, path: Path | None = None) -> None: ...

    def load(self, path: Path) -> None: ...


def write_json_atomic(path: Path, data: Any) -> None:
    """Persist sandbox state: temp file in the same directory, fsync, rename."""
    import os
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json_dumps(data))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
