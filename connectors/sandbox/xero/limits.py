"""Xero's rate limits as the API enforces and reports them: 60 calls a minute per tenant (429
with Retry-After and X-Rate-Limit-Problem: minute), an app-wide minute limit and 5,000 calls a day,
the X-MinLimit-Remaining / X-DayLimit-Remaining / X-AppMinLimit-Remaining headers on every API
answer, and the bodies of injected faults."""

from __future__ import annotations

import time
from collections import deque
from datetime import date

from connectors.sandbox.clock import SandboxClock
from connectors.sandbox.faults import FaultKind, Faults
from connectors.sandbox.messages import SandboxRequest, SandboxResponse
from connectors.sandbox.xero.errors import problem


class XeroLimits:
    """Call windows of one tenant; the limits are mutable at runtime (tests lower them)."""

    def __init__(
        self,
        clock: SandboxClock,
        faults: Faults,
        *,
        minute_limit: int,
        app_minute_limit: int,
        day_limit: int,
    ) -> None:
        self.clock = clock
        self.faults = faults
        self.minute_limit = minute_limit
        self.app_minute_limit = app_minute_limit
        self.day_limit = day_limit
        self._minute_calls: deque[float] = deque()
        self._app_calls: deque[float] = deque()
        self._day_calls: dict[date, int] = {}

    def headers(self) -> dict[str, str]:
        """The remaining-calls headers (drops calls older than a minute from the windows)."""
        now = time.monotonic()
        for window in (self._minute_calls, self._app_calls):
            while window and window[0] <= now - 60:
                window.popleft()
        used_today = self._day_calls.get(self.clock.today(), 0)
        day_left = self.faults.day_limit_remaining
        if day_left is None:
            day_left = max(0, self.day_limit - used_today)
        return {
            "X-MinLimit-Remaining": str(max(0, self.minute_limit - len(self._minute_calls))),
            "X-DayLimit-Remaining": str(max(0, day_left)),
            "X-AppMinLimit-Remaining": str(max(0, self.app_minute_limit - len(self._app_calls))),
        }

    def admit(self) -> SandboxResponse | None:
        """Count one API call, or the 429 Xero answers when the minute limit is reached."""
        now = time.monotonic()
        headers = self.headers()
        if len(self._minute_calls) >= self.minute_limit:
            retry = max(1, int(self._minute_calls[0] + 60 - now) + 1)
            response = SandboxResponse(429, b"", {"Content-Type": "text/plain"})
            response.headers.update(headers)
            response.headers.update({"Retry-After": str(retry), "X-Rate-Limit-Problem": "minute"})
            return response
        self._minute_calls.append(now)
        self._app_calls.append(now)
        today = self.clock.today()
        self._day_calls[today] = self._day_calls.get(today, 0) + 1
        return None

    def fault_response(self, kind: FaultKind, request: SandboxRequest) -> SandboxResponse:
        """Xero's answer to an injected fault (the server adds Retry-After)."""
        headers = self.headers()
        if kind == "429":
            response = SandboxResponse(429, b"", {"Content-Type": "text/plain"})
            response.headers.update(headers)
            response.headers["X-Rate-Limit-Problem"] = "minute"
            return response
        if kind == "day_limit":
            response = SandboxResponse(429, b"", {"Content-Type": "text/plain"})
            response.headers.update(headers)
            response.headers["X-DayLimit-Remaining"] = "0"
            response.headers["X-Rate-Limit-Problem"] = "day"
            return response
        if kind == "401":
            return problem(401, "Unauthorized", "AuthenticationUnsuccessful")
        del request
        return SandboxResponse(
            503, b"The service is temporarily unavailable", {"Content-Type": "text/plain; charset=utf-8"}
        )
