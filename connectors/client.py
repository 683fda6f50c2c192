"""What every ledger's client keeps around its SDK, the same way for QuickBooks and Xero: the
connection's name and API root, its tokens and clock, the tenant's limiter, the retry policy, the
count of HTTP calls, and the ledger's clock as the current pull first saw it.

A ledger client (connectors/quickbooks/client.py, connectors/xero/client.py) adds its SDK and
how one call goes through it; `with_retries` runs that call under the connection's retry policy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypedDict, TypeVar

from connectors.base import AccessTokens, Clock, read_clock
from connectors.limits import TenantLimiter, limiter_for
from connectors.retry import call_with_retries

T = TypeVar("T")

RETRY_BASE_WAIT = 0.5  # seconds, first wait of the exponential backoff


class CallSettings(TypedDict, total=False):
    """How a connection's calls are made, passed through from its connector to its client (the
    defaults are LedgerClient's)."""

    clock: Clock | None
    limiter: TenantLimiter | None
    retry_sleep: Callable[[float], None]
    retry_base_wait: float
    max_attempts: int
    timeout: tuple[float, float]


class LedgerClient:
    """One connection's calls to one tenant: their settings, limiter, count and pull clock."""

    def __init__(
        self,
        *,
        ledger: str,
        name: str,
        base_url: str,
        account_id: str,
        tokens: AccessTokens,
        clock: Clock | None = None,
        limiter: TenantLimiter | None = None,
        retry_sleep: Callable[[float], None] = time.sleep,
        retry_base_wait: float = RETRY_BASE_WAIT,
        max_attempts: int = 6,
        timeout: tuple[float, float] = (10.0, 120.0),
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.clock = clock
        self.limiter = limiter or limiter_for(ledger, account_id)
        self.retry_sleep = retry_sleep
        self.retry_base_wait = retry_base_wait
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.calls = 0  # HTTP requests answered (any status), for benchmarks and tests
        # The ledger's clock at the first answer since start_pull(): pull cursors are on it.
        self.pull_started_at: datetime | None = None
        self._local = threading.local()  # the call in flight on this thread

    def now(self) -> datetime:
        return read_clock(self.clock)

    def start_pull(self) -> None:
        self.pull_started_at = None

    def with_retries(self, attempt: Callable[[], T], *, idempotent: bool, describe: str) -> T:
        """`attempt()` under the connection's retry policy (connectors.retry)."""
        return call_with_retries(
            attempt,
            idempotent=idempotent,
            describe=describe,
            connection=self.name,
            max_attempts=self.max_attempts,
            base_wait=self.retry_base_wait,
            sleep=self.retry_sleep,
        )

    def close(self) -> None:
        raise NotImplementedError
