"""The HTTP framework both ledger sandboxes are built on: a real threaded HTTP server on
127.0.0.1 that dispatches to routes, checks OAuth bearers, injects faults and logs every request.

The framework is split by purpose; this module is the server and re-exports the rest, so
`connectors.sandbox.server` stays the one import for ledger sandboxes and tests:
- clock: SandboxClock (virtual time); faults: Faults and the generic fault answers;
- messages: SandboxRequest / SandboxResponse / Route and the JSON helpers;
- oauth: OAuthAuthority (rotating refresh tokens) and its routes;
- effects: Effect, EffectLog and ReplayStore (exactly-once bookkeeping);
- paging: RowCache (list rows computed once per state version).
The half of a ledger sandbox both ledgers share (its parts, start/stop, state file) is
`connectors.sandbox.lifecycle.SandboxLifecycle`, built on this server.
Ledger sandboxes (connectors/sandbox/quickbooks/, connectors/sandbox/xero/) supply routes and
ledger-specific fault bodies; everything generic lives here so both behave the same way.

Faults (429, 5xx, day limit, latency, expired tokens) apply only to routes with `auth=True` (the
API itself): OAuth and discovery routes are never faulted, so a refresh is never the flaky part.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from requests.structures import CaseInsensitiveDict

from connectors.files import write_atomic
from connectors.sandbox.clock import SandboxClock
from connectors.sandbox.effects import Effect, EffectKind, EffectLog, ReplayStore
from connectors.sandbox.faults import (
    QBO_THROTTLE_XML,
    FaultKind,
    Faults,
    default_fault_response,
    format_seconds,
    qbo_throttle_xml_response,
)
from connectors.sandbox.messages import (
    Handler,
    JsonObject,
    Route,
    SandboxRequest,
    SandboxResponse,
    json_dumps,
    json_response,
    redirect_response,
    request_root,
    text_response,
)
from connectors.sandbox.oauth import OAuthAuthority, OAuthError, oauth_routes, openid_discovery_route
from connectors.sandbox.paging import RowCache

if TYPE_CHECKING:
    from connectors.sandbox.generator import GeneratedCompany
    from policies.model.ledger import LedgerSnapshot

__all__ = [
    "QBO_THROTTLE_XML",
    "Effect",
    "EffectKind",
    "EffectLog",
    "FaultKind",
    "Faults",
    "Handler",
    "JsonObject",
    "LoggedRequest",
    "OAuthAuthority",
    "OAuthError",
    "ReplayStore",
    "RequestLog",
    "Route",
    "RowCache",
    "SandboxClock",
    "SandboxControl",
    "SandboxRequest",
    "SandboxResponse",
    "SandboxServer",
    "default_fault_response",
    "iter_chunks",
    "json_dumps",
    "json_response",
    "oauth_routes",
    "openid_discovery_route",
    "path_pattern",
    "qbo_throttle_xml_response",
    "redirect_response",
    "request_root",
    "text_response",
    "write_json_atomic",
]

log = logging.getLogger("relance.sandbox")


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


# ---------------------------------------------------------------- HTTP server


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
        if isinstance(host, bytes):  # AF_UNIX only; the sandbox binds AF_INET
            host = host.decode()
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
            response.headers.setdefault("Retry-After", format_seconds(self.faults.retry_after))
        elif kind == "day_limit":
            response.headers.setdefault("X-Rate-Limit-Problem", "day")
            response.headers.setdefault("Retry-After", str(self.clock.seconds_to_next_day()))
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


# ---------------------------------------------------------------- control protocol


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
    """Persist sandbox state as JSON, atomically (connectors.files.write_atomic)."""
    write_atomic(Path(path), json_dumps(data))


def iter_chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
