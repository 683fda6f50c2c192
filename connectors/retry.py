"""Retries with tenacity: exponential backoff with jitter, Retry-After honoured.

What is retried:
- RateLimited (429, QBO throttle 3001): always, even for non-idempotent calls, because the ledger
  refused the request before processing it;
- LedgerUnavailable / 5xx / connection errors: ONLY for idempotent calls. A non-idempotent call that
  may have reached the ledger is re-raised at once so the caller marks it UNCERTAIN and verifies;
- never: RejectedByLedger, AuthError, DayLimitReached, StaleObject (the caller re-reads).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

import requests
import tenacity

from connectors.base import (
    AuthError,
    ConnectorError,
    DayLimitReached,
    LedgerUnavailable,
    RateLimited,
    RejectedByLedger,
    StaleObject,
)

T = TypeVar("T")
log = logging.getLogger("relance.connectors.retry")

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
)
try:  # urllib3 (xero-python) raises its own errors when used without requests
    import urllib3.exceptions as _urllib3_errors

    CONNECTION_ERRORS += (_urllib3_errors.HTTPError,)
except ImportError:  # pragma: no cover - urllib3 ships with requests
    pass

NEVER_RETRY = (RejectedByLedger, AuthError, DayLimitReached, StaleObject)


def is_retryable(error: BaseException, *, idempotent: bool) -> bool:
    if isinstance(error, NEVER_RETRY):
        return False
    if isinstance(error, RateLimited):
        return True
    if isinstance(error, (LedgerUnavailable, *CONNECTION_ERRORS)):
        return idempotent
    if isinstance(error, ConnectorError):
        return idempotent and error.retryable
    return False


class _Wait(tenacity.wait.wait_base):
    """Retry-After when the ledger sent one, else full-jitter exponential backoff."""

    def __init__(self, max_wait: float, base: float, rng: random.Random) -> None:
        self.max_wait = max_wait
        self.base = base
        self.rng = rng

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            # a little jitter on top so parallel workers do not come back in lockstep
            return min(self.max_wait, error.retry_after + self.rng.uniform(0, 0.1 * error.retry_after))
        ceiling = min(self.max_wait, self.base * 2 ** (retry_state.attempt_number - 1))
        return self.rng.uniform(ceiling / 2, ceiling)


def call_with_retries(
    fn: Callable[[], T],
    *,
    idempotent: bool,
    describe: str,
    connection: str,
    max_attempts: int = 6,
    max_wait: float = 60,
    base_wait: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Call `fn` with retries. `describe` names the call in messages ("GET Invoices page 3")."""
    waits: list[float] = []

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        waits.append(wait)
        log.info(
            "[%s] %s failed (%s), attempt %d/%d, retrying in %.1fs",
            connection,
            describe,
            type(error).__name__,
            state.attempt_number,
            max_attempts,
            wait,
        )

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max_attempts),
        wait=_Wait(max_wait, base_wait, rng or random.Random()),
        retry=tenacity.retry_if_exception(lambda e: is_retryable(e, idempotent=idempotent)),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except ConnectorError as error:
        attempts = len(waits) + 1
        if attempts > 1 and is_retryable(error, idempotent=idempotent):
            error.message = f"{error.message} (gave up after {attempts} attempts)"
            if error.hint is None:
                error.hint = "the ledger kept refusing or failing; run again later"
        if not error.connection and connection:
            # name the connection and the call, as every relance error does
            error.message = f"[{connection}] {error.call or describe}: {error.message}"
            error.connection = connection
            error.call = error.call or describe
        raise
    except CONNECTION_ERRORS as error:
        attempts = len(waits) + 1
        suffix = (
            f" (gave up after {attempts} attempts)"
            if idempotent
            else " (not retried: may have reached the ledger)"
        )
        raise LedgerUnavailable(
            f"cannot reach the ledger ({type(error).__name__}){suffix}",
            connection=connection,
            call=describe,
            hint="check the network or the base_url of this connection",
        ) from error
