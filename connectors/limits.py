"""Client-side rate limiting per tenant at the published API limits (each ledger plugin's `limits`).

QuickBooks Online: 500 requests/min per realm, 10 concurrent.
Xero: 60/min, 5 concurrent and 5,000/day per tenant; 10,000/min per app (shared by all tenants).

Sliding windows of request times plus a semaphore. Xero's remaining-quota headers correct the
local view (another process may share the tenant). Xero's day limit stops the tenant until reset
(DayLimitReached) instead of sleeping for hours.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from connectors.base import DayLimitReached
from connectors.registry import ledger_plugin

MINUTE = 60.0
DAY = 86400.0


class _Window:
    """At most `limit` events in any `period` seconds."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self.events: deque[float] = deque()
        self.blocked_until = 0.0

    def _expire(self, now: float) -> None:
        horizon = now - self.period
        while self.events and self.events[0] <= horizon:
            self.events.popleft()

    def wait_time(self, now: float) -> float:
        self._expire(now)
        wait = max(0.0, self.blocked_until - now)
        if len(self.events) >= self.limit:
            wait = max(wait, self.events[len(self.events) - self.limit] + self.period - now)
        return wait

    def record(self, now: float) -> None:
        self.events.append(now)

    def remaining(self, now: float) -> int:
        self._expire(now)
        return max(0, self.limit - len(self.events))

    def sync_remaining(self, remaining: int, now: float) -> None:
        """The server says only `remaining` are left: count the difference as used now."""
        self._expire(now)
        missing = self.limit - len(self.events) - max(0, remaining)
        for _ in range(max(0, missing)):
            self.events.append(now)


class TenantLimiter:
    def __init__(
        self,
        per_minute: int,
        concurrent: int,
        per_day: int | None = None,
        app_per_minute: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        name: str = "",
        app_window: _Window | None = None,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.name = name
        self.per_minute = per_minute
        self.concurrent = concurrent
        self.per_day = per_day
        self._clock = clock
        self._sleep = sleep
        self._wall = wall_clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrent)
        self._minute = _Window(per_minute, MINUTE)
        self._day = _Window(per_day, DAY) if per_day else None
        self._app = (
            app_window
            if app_window is not None
            else (_Window(app_per_minute, MINUTE) if app_per_minute else None)
        )
        self._day_reset_at: float | None = None  # clock time when a server-side day block ends
        self.waited = 0.0  # total seconds slept waiting for quota (metrics, tests)

    def _windows(self) -> list[_Window]:
        return [w for w in (self._minute, self._app) if w is not None]

    def _day_limit(self, now: float) -> DayLimitReached:
        if self._day_reset_at is not None:
            seconds = self._day_reset_at - now
        elif self._day is not None:
            seconds = self._day.wait_time(now)
        else:
            seconds = 0.0
        reset_at = self._wall() + timedelta(seconds=max(0.0, seconds))
        return DayLimitReached(
            f"daily API limit reached; calls resume after {reset_at:%Y-%m-%d %H:%M} UTC",
            connection=self.name,
            reset_at=reset_at,
            hint="this tenant is skipped until then; other connections go on",
        )

    def _check_day(self, now: float) -> None:
        if self._day_reset_at is not None:
            if now < self._day_reset_at:
                raise self._day_limit(now)
            self._day_reset_at = None
        if self._day is not None and self._day.wait_time(now) > 0:
            raise self._day_limit(now)

    def reserve(self) -> None:
        """Block until a request may start (without the concurrency slot)."""
        while True:
            with self._lock:
                now = self._clock()
                self._check_day(now)
                wait = max(w.wait_time(now) for w in self._windows())
                if wait <= 0:
                    for window in (*self._windows(), self._day):
                        if window is not None:
                            window.record(now)
                    return
            self.waited += wait
            self._sleep(wait)

    @contextmanager
    def acquire(self) -> Iterator[None]:
        """Hold a concurrency slot and one request of quota for the duration of a call."""
        self._slots.acquire()
        try:
            self.reserve()
            yield
        finally:
            self._slots.release()

    def update_from_headers(self, headers: Mapping[str, str]) -> None:
        """Read Xero's X-MinLimit-Remaining / X-DayLimit-Remaining / X-AppMinLimit-Remaining,
        Retry-After and X-Rate-Limit-Problem. Raises DayLimitReached on a day-limit 429."""
        lowered = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            now = self._clock()
            retry_after = _number(lowered.get("retry-after"))
            problem = (lowered.get("x-rate-limit-problem") or "").lower()
            minute_left = _number(lowered.get("x-minlimit-remaining"))
            day_left = _number(lowered.get("x-daylimit-remaining"))
            app_left = _number(lowered.get("x-applimit-remaining") or lowered.get("x-appminlimit-remaining"))
            if minute_left is not None:
                self._minute.sync_remaining(int(minute_left), now)
            if app_left is not None and self._app is not None:
                self._app.sync_remaining(int(app_left), now)
            if day_left is not None and self._day is not None:
                self._day.sync_remaining(int(day_left), now)
            if problem == "day" or (day_left is not None and day_left <= 0):
                self._day_reset_at = now + (
                    retry_after if retry_after is not None else _seconds_to_midnight(self._wall())
                )
                if problem == "day":
                    raise self._day_limit(now)
            elif retry_after is not None:
                target = self._app if problem == "appminute" and self._app is not None else self._minute
                target.blocked_until = max(target.blocked_until, now + retry_after)

    def remaining(self) -> dict[str, int | None]:
        with self._lock:
            now = self._clock()
            return {
                "minute": self._minute.remaining(now),
                "day": self._day.remaining(now) if self._day else None,
                "app_minute": self._app.remaining(now) if self._app else None,
            }


def _number(value: str | None) -> float | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _seconds_to_midnight(now: datetime) -> float:
    tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo or UTC)
    return max(1.0, (tomorrow - now).total_seconds())


_registry: dict[tuple[str, str], TenantLimiter] = {}
_app_windows: dict[str, _Window] = {}
_registry_lock = threading.Lock()


def limiter_for(
    ledger: str,
    tenant: str,
    *,
    per_minute: int | None = None,
    concurrent: int | None = None,
) -> TenantLimiter:
    """The process-wide limiter of one tenant (realm / Xero tenant), at the published limits.

    `per_minute` / `concurrent` override them (connection key rate_limit_per_minute, for local
    sandboxes); an override replaces the registered limiter, later plain calls get that one."""
    with _registry_lock:
        key = (ledger, tenant)
        limiter = _registry.get(key)
        wanted_minute = per_minute or (limiter.per_minute if limiter else None)
        wanted_concurrent = concurrent or (limiter.concurrent if limiter else None)
        if (
            limiter is None
            or (per_minute and per_minute != limiter.per_minute)
            or (concurrent and concurrent != limiter.concurrent)
        ):
            limits = ledger_plugin(ledger).limits
            app_limit = limits.app_per_minute
            app_window = None
            if app_limit:
                app_window = _app_windows.setdefault(
                    ledger, _Window(max(app_limit, wanted_minute or 0), MINUTE)
                )
            limiter = TenantLimiter(
                per_minute=int(wanted_minute or limits.per_minute or 1),
                concurrent=int(wanted_concurrent or limits.concurrent or 1),
                per_day=limits.per_day,
                name=tenant,
                app_window=app_window,
            )
            _registry[key] = limiter
        return limiter


def reset_limiters() -> None:
    """Forget every limiter (tests, and sandboxes whose day budget was reset)."""
    with _registry_lock:
        _registry.clear()
        _app_windows.clear()
