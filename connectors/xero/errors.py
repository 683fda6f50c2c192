"""xero-python exceptions -> relance connector errors with a message naming the connection, the
call and what the user can do (never a token or the raw Authorization header); and what such an
error means for a write's outcome."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from connectors.base import (
    AuthError,
    ConnectorError,
    DayLimitReached,
    LedgerUnavailable,
    RateLimited,
    RejectedByLedger,
    WriteResult,
    WriteStatus,
)


def response_headers(error: Any) -> dict[str, str]:
    """Headers of an SDK HTTP error (empty when there was no response)."""
    try:
        headers = error.headers
    except Exception:
        return {}
    if not headers:
        return {}
    return {str(k): str(v) for k, v in dict(headers).items()}


def validation_messages(body: bytes | str | None) -> list[str]:
    """Elements[].ValidationErrors[].Message of a Xero 400 body (or its Message / Detail)."""
    if not body:
        return []
    try:
        data = json.loads(body)
    except (TypeError, ValueError):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return [text.strip()[:200]] if text.strip() else []
    messages: list[str] = []
    if isinstance(data, Mapping):
        for element in data.get("Elements") or ():
            if isinstance(element, Mapping):
                for item in element.get("ValidationErrors") or ():
                    if isinstance(item, Mapping) and item.get("Message"):
                        messages.append(str(item["Message"]))
        if not messages:
            for key in ("Message", "Detail", "Title", "error"):
                if data.get(key):
                    messages.append(str(data[key]))
                    break
    return messages


def _retry_after(headers: Mapping[str, str]) -> float | None:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def translate_status(
    status: int, body: bytes | str | None, headers: Mapping[str, str], *, connection: str, call: str
) -> ConnectorError:
    """An HTTP error answer from Xero as a relance error."""
    details = "; ".join(validation_messages(body))
    if status == 401:
        return AuthError(
            "Xero refused the access token (401)",
            connection=connection,
            call=call,
            hint=f"run `relance connect xero --name {connection}` if this persists",
        )
    if status == 403:
        return AuthError(
            "Xero refused access to this organisation (403): the tenant id is wrong or the app was "
            "disconnected from it",
            connection=connection,
            call=call,
            hint=f"check tenant_id in relance.yaml or run `relance connect xero --name {connection}`",
        )
    if status == 429:
        problem = {k.lower(): v for k, v in headers.items()}.get("x-rate-limit-problem", "minute")
        return RateLimited(
            f"Xero rate limit reached ({problem})",
            retry_after=_retry_after(headers),
            connection=connection,
            call=call,
            hint="relance waits and retries; lower the number of parallel workers if this repeats",
        )
    if status == 404:
        return RejectedByLedger(
            "not found in Xero (404)",
            connection=connection,
            call=call,
            hint="the record was deleted in Xero; the next pull will catch up",
        )
    if status in (400, 409, 412, 422):
        return RejectedByLedger(
            f"Xero rejected the request ({status}){': ' + details if details else ''}",
            connection=connection,
            call=call,
            hint="fix the data in Xero or the policy; retrying the same request cannot help",
        )
    if status >= 500:
        return LedgerUnavailable(
            f"Xero answered HTTP {status}",
            connection=connection,
            call=call,
            retryable=True,
            hint="Xero is having trouble; relance retries, run again later if it persists",
        )
    return ConnectorError(
        f"Xero answered HTTP {status}{': ' + details if details else ''}",
        connection=connection,
        call=call,
    )


def translate_exception(error: BaseException, *, connection: str, call: str) -> BaseException:
    """Any exception out of the SDK -> a ConnectorError (connection errors pass through so the
    retry layer can tell them apart; it wraps them into LedgerUnavailable itself)."""
    from xero_python.exceptions import ApiException, OpenApiException

    if isinstance(error, ConnectorError):
        return error
    if isinstance(error, ApiException) and getattr(error, "http_resp", None) is not None:
        status = int(getattr(error.http_resp, "status", 0) or 0)
        return translate_status(
            status,
            getattr(error.http_resp, "data", None),
            response_headers(error),
            connection=connection,
            call=call,
        )
    if isinstance(error, ApiException):
        return LedgerUnavailable(
            f"the Xero call failed before an answer ({error.reason or type(error).__name__})",
            connection=connection,
            call=call,
            hint="check the network and the base_url of this connection",
        )
    if isinstance(error, OpenApiException):
        return ConnectorError(
            f"xero-python refused the call ({type(error).__name__})", connection=connection, call=call
        )
    try:
        import urllib3.exceptions as urllib3_errors

        if isinstance(error, urllib3_errors.HTTPError):
            return error
    except ImportError:  # pragma: no cover
        pass
    if isinstance(error, ConnectionError | TimeoutError):
        return error
    if isinstance(error, ValueError | TypeError):
        return ConnectorError(
            f"xero-python could not prepare or read the call ({type(error).__name__}: {error})",
            connection=connection,
            call=call,
            hint="this is a relance bug or an unexpected Xero answer; please report it",
        )
    return error


# ---------------------------------------------------------------- write outcomes


def guarded(key: str, action: Callable[[], WriteResult]) -> WriteResult:
    """The result of one write: its own, or the one the error it raised means."""
    try:
        return action()
    except (DayLimitReached, AuthError):
        raise  # the whole tenant stops: the caller records the rest as not done
    except RejectedByLedger as error:
        return WriteResult(key, WriteStatus.FAILED, error=str(error))
    except RateLimited as error:
        # A 429 is answered before any processing: nothing happened.
        return WriteResult(key, WriteStatus.FAILED, error=str(error))
    except ConnectorError as error:
        return WriteResult(key, WriteStatus.UNCERTAIN, error=str(error))


def item_messages(item: Mapping[str, Any]) -> str:
    """The validation messages of one item of a batched PUT's answer."""
    messages = "; ".join(
        str(e.get("Message")) for e in item.get("ValidationErrors") or () if isinstance(e, dict)
    )
    return messages or "no reason given"
