"""What travels over a sandbox's HTTP connection: requests, responses, JSON encoding, routes.

Both ledgers and the framework speak these types; nothing here knows a ledger.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

from requests.structures import CaseInsensitiveDict

JsonObject = dict[str, Any]  # a decoded JSON object (request or response payload)


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

    def payload(self) -> Any:
        """The JSON body with numbers as Decimal, `{}` when the body is empty. Raises ValueError
        (json.JSONDecodeError, UnicodeDecodeError) when the body is not JSON."""
        if not self.body:
            return {}
        return json.loads(self.body, parse_float=Decimal)

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


def _json_default(value: object) -> object:
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


def request_root(request: SandboxRequest) -> str:
    """http://host:port of the server as the client addressed it."""
    return f"http://{request.headers.get('Host', '127.0.0.1')}"


# ---------------------------------------------------------------- routes


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
