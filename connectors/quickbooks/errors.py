"""QuickBooks Online failures -> relance errors (connectors.base), each naming the connection, the
call and what the user can do.

QBO reports errors as a Fault: JSON {"Fault": {"Error": [{Message, Detail, code}], type}}, the
lower-case variant of the authentication layer ({"fault": {"error": [{message, detail, code}]}}), or
an XML <IntuitResponse><Fault><Error code=...> body (the throttle, 3001, often comes as XML).
python-quickbooks reads JSON Faults but turns XML bodies into "Error reading json response", so
the HTTP layer parses bodies itself and maps SDK exceptions only as a fallback.

Codes (Intuit's error-code reference): 3001 throttle -> RateLimited; 3100/3200 and HTTP 401/403 ->
AuthError; 5010 stale SyncToken -> StaleObject; 610 object not found, 500-599 unsupported
operation, 600-4999 validation, 6000+ business rules -> RejectedByLedger; 10000+ and HTTP 5xx ->
LedgerUnavailable (retryable).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from connectors.base import (
    AuthError,
    ConnectorError,
    LedgerUnavailable,
    RateLimited,
    RejectedByLedger,
    StaleObject,
)

THROTTLE_CODES = {"3001", "003001"}
AUTH_CODES = {"3100", "3200", "003100", "003200", "100"}
STALE_CODE = "5010"


@dataclass(frozen=True, slots=True)
class FaultError:
    code: str
    message: str
    detail: str = ""
    element: str = ""


@dataclass(frozen=True, slots=True)
class Fault:
    errors: tuple[FaultError, ...]
    type: str = ""

    @property
    def codes(self) -> set[str]:
        return {e.code.lstrip("0") or "0" for e in self.errors}

    def summary(self) -> str:
        parts = []
        for error in self.errors:
            text = error.message
            if error.detail and error.detail not in text:
                text = f"{text}: {error.detail}"
            parts.append(f"{text} (code {error.code})" if error.code else text)
        return "; ".join(parts) or "unspecified fault"


def _fault_from_mapping(fault: Mapping[str, Any]) -> Fault:
    items = fault.get("Error", fault.get("error")) or []
    errors = []
    for item in items if isinstance(items, list) else [items]:
        if not isinstance(item, Mapping):
            continue
        errors.append(
            FaultError(
                code=str(item.get("code") or item.get("Code") or ""),
                message=_redact(str(item.get("Message") or item.get("message") or "")),
                detail=_redact(str(item.get("Detail") or item.get("detail") or "")),
                element=str(item.get("element") or ""),
            )
        )
    return Fault(tuple(errors), str(fault.get("type") or fault.get("Type") or ""))


def _redact(text: str) -> str:
    """QBO echoes the expired token in 401 details ("Token expired: AB01..."): never keep it."""
    return re.sub(r"(Token (?:expired|invalid)?:?\s*)\S+", r"\1<redacted>", text, flags=re.IGNORECASE)


def fault_from_json(body: Any) -> Fault | None:
    if not isinstance(body, Mapping):
        return None
    fault = body.get("Fault") or body.get("fault")
    if isinstance(fault, Mapping):
        return _fault_from_mapping(fault)
    return None


def fault_from_xml(text: str) -> Fault | None:
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError:
        return None
    fault = next((el for el in root.iter() if el.tag.split("}")[-1] == "Fault"), None)
    if fault is None:
        return None
    errors = []
    for error in fault:
        if error.tag.split("}")[-1] != "Error":
            continue
        fields = {child.tag.split("}")[-1]: (child.text or "") for child in error}
        errors.append(
            FaultError(
                code=error.get("code", ""),
                message=_redact(fields.get("Message", "")),
                detail=_redact(fields.get("Detail", "")),
                element=error.get("element", ""),
            )
        )
    return Fault(tuple(errors), fault.get("type", ""))


def parse_fault(text: str | bytes | None) -> Fault | None:
    """A Fault from any QBO error body (JSON, lower-case JSON or XML); None if there is none."""
    if text is None:
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    stripped = text.strip()
    if stripped.startswith("<"):
        return fault_from_xml(stripped)
    try:
        return fault_from_json(json.loads(stripped))
    except ValueError:
        return None


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def error_for_fault(
    fault: Fault | None,
    *,
    status: int | None,
    connection: str,
    call: str,
    headers: Mapping[str, str] | None = None,
) -> ConnectorError:
    """The relance error for one QBO Fault (and/or HTTP status)."""
    codes = fault.codes if fault else set()
    text = fault.summary() if fault else f"HTTP {status}"
    throttled = bool(codes & {c.lstrip("0") for c in THROTTLE_CODES}) or "ThrottleExceeded" in text
    if status == 429 or throttled:
        return RateLimited(
            f"QuickBooks throttled the request: {text}",
            retry_after=_retry_after(headers),
            hint="QuickBooks allows 500 requests per minute per company; relance slows down and retries",
            connection=connection,
            call=call,
        )
    if (
        status in (401, 403)
        or codes & {c.lstrip("0") for c in AUTH_CODES}
        or (fault is not None and fault.type.upper() == "AUTHENTICATION")
    ):
        return AuthError(
            f"QuickBooks refused the credentials: {text}",
            hint=f"run `relance connect quickbooks --name {connection or 'NAME'}` again",
            connection=connection,
            call=call,
        )
    if STALE_CODE in codes:
        return StaleObject(
            f"the record changed in QuickBooks meanwhile: {text}",
            hint="someone edited it at the same time; relance re-reads it and tries again",
            connection=connection,
            call=call,
        )
    numeric = sorted(int(c) for c in codes if c.isdigit())
    if (status is not None and status >= 500) or (numeric and numeric[0] >= 10000):
        return LedgerUnavailable(
            f"QuickBooks failed to answer: {text}",
            hint="QuickBooks is having trouble; relance retries, or run again later",
            retryable=True,
            connection=connection,
            call=call,
        )
    if fault is not None or (status is not None and 400 <= status < 500):
        return RejectedByLedger(
            f"QuickBooks rejected the request: {text}",
            hint="check the record in QuickBooks (the message says which field); retrying cannot help",
            connection=connection,
            call=call,
        )
    return ConnectorError(f"unexpected QuickBooks answer: {text}", connection=connection, call=call)


def error_from_response(
    status: int,
    text: str | bytes | None,
    headers: Mapping[str, str] | None = None,
    *,
    connection: str = "",
    call: str = "",
) -> ConnectorError | None:
    """The error an HTTP answer carries, or None for a 2xx without a Fault."""
    fault = parse_fault(text)
    if fault is None and 200 <= status < 300:
        return None
    return error_for_fault(fault, status=status, connection=connection, call=call, headers=headers)


_STATUS_IN_MESSAGE = re.compile(r"status code '(?P<status>\d{3})': ?(?P<body>.*)", re.DOTALL)
_JSON_READ_PREFIX = "Error reading json response: "


def error_from_exception(error: BaseException, *, connection: str = "", call: str = "") -> ConnectorError:
    """Map a python-quickbooks or requests exception to a relance error."""
    if isinstance(error, ConnectorError):
        return error
    from quickbooks import exceptions as qb

    if isinstance(error, requests.Timeout | requests.ConnectionError):
        return LedgerUnavailable(
            f"cannot reach QuickBooks ({type(error).__name__})",
            hint="check the network or the base_url of this connection",
            retryable=True,
            connection=connection,
            call=call,
        )
    if isinstance(error, qb.QuickbooksException):
        message = str(getattr(error, "message", "") or "")
        detail = str(getattr(error, "detail", "") or "")
        code = str(getattr(error, "error_code", "") or "")
        if isinstance(error, qb.AuthorizationException) and code == "401":
            fault = parse_fault(detail)
            return error_for_fault(fault, status=401, connection=connection, call=call)
        if message.startswith(_JSON_READ_PREFIX):  # XML or HTML body the SDK could not read
            body = message[len(_JSON_READ_PREFIX) :]
            fault = parse_fault(body)
            return error_for_fault(fault, status=None if fault else 502, connection=connection, call=call)
        found = _STATUS_IN_MESSAGE.search(message)
        if found:
            status = int(found["status"])
            return error_for_fault(
                parse_fault(found["body"]), status=status, connection=connection, call=call
            )
        fault = Fault((FaultError(code, _redact(message), _redact(detail)),))
        return error_for_fault(fault, status=None, connection=connection, call=call)
    if isinstance(error, requests.RequestException):
        return LedgerUnavailable(
            f"HTTP error talking to QuickBooks ({type(error).__name__})", connection=connection, call=call
        )
    return ConnectorError(
        f"unexpected failure ({type(error).__name__}: {error})", connection=connection, call=call
    )
