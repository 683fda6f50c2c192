"""Limiter and retries at unit level, with a fake clock and a fake sleep (no wall time)."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest
import requests

from connectors.base import (
    AuthError,
    DayLimitReached,
    LedgerUnavailable,
    RateLimited,
    RejectedByLedger,
)
from connectors.limits import TenantLimiter, limiter_for, reset_limiters
from connectors.retry import call_with_retries


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def limiter(
    fake: FakeTime,
    *,
    per_minute: int = 60,
    concurrent: int = 5,
    per_day: int | None = None,
    app_per_minute: int | None = None,
) -> TenantLimiter:
    return TenantLimiter(
        per_minute,
        concurrent,
        per_day=per_day,
        app_per_minute=app_per_minute,
        clock=fake.clock,
        sleep=fake.sleep,
        wall_clock=lambda: datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    )


def test_per_minute_window_paces_requests() -> None:
    fake = FakeTime()
    limit = limiter(fake, per_minute=3)
    for _ in range(3):
        with limit.acquire():
            pass
    assert fake.sleeps == []
    with limit.acquire():
        pass
    assert fake.sleeps == [60.0]  # the 4th waits until the first leaves the window
    assert limit.remaining()["minute"] == 2  # 3 in the window... the first expired, 2 left after the 4th


def test_app_window_is_shared_and_day_budget_stops_instead_of_sleeping() -> None:
    fake = FakeTime()
    limit = limiter(fake, per_minute=100, per_day=2)
    with limit.acquire():
        pass
    with limit.acquire():
        pass
    with pytest.raises(DayLimitReached) as caught, limit.acquire():
        pass
    assert fake.sleeps == []
    assert caught.value.reset_at is not None and caught.value.reset_at > datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_headers_correct_the_local_view() -> None:
    fake = FakeTime()
    limit = limiter(fake, per_minute=60, per_day=5000, app_per_minute=10000)
    limit.update_from_headers(
        {"X-MinLimit-Remaining": "0", "X-DayLimit-Remaining": "4000", "X-AppMinLimit-Remaining": "9000"}
    )
    remaining = limit.remaining()
    assert remaining == {"minute": 0, "day": 4000, "app_minute": 9000}
    with limit.acquire():
        pass
    assert fake.sleeps and fake.sleeps[0] == pytest.approx(60.0)

    limit.update_from_headers({"Retry-After": "7"})
    before = fake.now
    with limit.acquire():
        pass
    assert fake.now - before >= 7

    with pytest.raises(DayLimitReached):
        limit.update_from_headers({"X-Rate-Limit-Problem": "day", "Retry-After": "3600"})
    with pytest.raises(DayLimitReached), limit.acquire():
        pass
    fake.now += 3601
    with limit.acquire():  # the tenant resumes after the reset
        pass


def test_concurrency_is_capped() -> None:
    limit = TenantLimiter(per_minute=1000, concurrent=2)
    inside = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()

    def work() -> None:
        nonlocal inside, peak
        with limit.acquire():
            with lock:
                inside += 1
                peak = max(peak, inside)
            release.wait(2)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(5)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert peak <= 2


def test_registry_uses_published_limits_and_overrides() -> None:
    reset_limiters()
    qbo = limiter_for("quickbooks", "9130")
    assert (qbo.per_minute, qbo.concurrent, qbo.per_day) == (500, 10, None)
    xero = limiter_for("xero", "t-1")
    assert (xero.per_minute, xero.concurrent, xero.per_day) == (60, 5, 5000)
    assert limiter_for("xero", "t-1") is xero
    assert limiter_for("xero", "t-2")._app is xero._app  # one app-wide window
    fast = limiter_for("xero", "t-1", per_minute=100000)
    assert fast.per_minute == 100000 and limiter_for("xero", "t-1") is fast
    reset_limiters()


# ---------------------------------------------------------------- retries


def flaky(errors: list[Exception], result: str = "ok"):
    calls = {"n": 0}

    def call() -> str:
        calls["n"] += 1
        if errors:
            raise errors.pop(0)
        return result

    return call, calls


def run(fn, *, idempotent: bool, sleeps: list[float], **kwargs):
    return call_with_retries(
        fn,
        idempotent=idempotent,
        describe="GET Invoices",
        connection="acme",
        sleep=sleeps.append,
        rng=random.Random(1),
        **kwargs,
    )


def test_429_honours_retry_after_even_when_not_idempotent() -> None:
    fn, calls = flaky([RateLimited("slow down", retry_after=4), RateLimited("slow down", retry_after=4)])
    sleeps: list[float] = []
    assert run(fn, idempotent=False, sleeps=sleeps) == "ok"
    assert calls["n"] == 3
    assert all(4 <= s <= 4.4 for s in sleeps) and len(sleeps) == 2


def test_5xx_and_connection_errors_retry_with_backoff_only_when_idempotent() -> None:
    fn, calls = flaky([LedgerUnavailable("503"), requests.ConnectionError("reset"), LedgerUnavailable("503")])
    sleeps: list[float] = []
    assert run(fn, idempotent=True, sleeps=sleeps, base_wait=1.0) == "ok"
    assert calls["n"] == 4
    assert 0.5 <= sleeps[0] <= 1 and 1 <= sleeps[1] <= 2 and 2 <= sleeps[2] <= 4  # exponential, jittered

    fn, calls = flaky([LedgerUnavailable("503")])
    with pytest.raises(LedgerUnavailable):
        run(fn, idempotent=False, sleeps=[])
    assert calls["n"] == 1  # may have reached the ledger: the caller marks it uncertain

    fn, calls = flaky([requests.ConnectionError("reset")])
    with pytest.raises(LedgerUnavailable, match="not retried"):
        run(fn, idempotent=False, sleeps=[])
    assert calls["n"] == 1


@pytest.mark.parametrize(
    "error", [RejectedByLedger("bad field"), AuthError("revoked"), DayLimitReached("day limit")]
)
def test_never_retried(error: Exception) -> None:
    fn, calls = flaky([error])
    with pytest.raises(type(error)):
        run(fn, idempotent=True, sleeps=[])
    assert calls["n"] == 1


def test_gives_up_with_a_clear_message_and_caps_waits() -> None:
    fn, calls = flaky([RateLimited("429", retry_after=500) for _ in range(10)])
    sleeps: list[float] = []
    with pytest.raises(RateLimited) as caught:
        run(fn, idempotent=True, sleeps=sleeps, max_attempts=3, max_wait=30)
    assert calls["n"] == 3 and sleeps == [30, 30]
    message = str(caught.value)
    assert "gave up after 3 attempts" in message and "[acme]" in message and "later" in message
