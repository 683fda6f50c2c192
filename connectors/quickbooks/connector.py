"""The QuickBooks Online connector: python-quickbooks over HTTP, within QBO's limits.

One object per connection, made of four parts with one purpose each:
- client.py: the SDK client, HTTP session, limiter, retries and token handling (every call);
- pull.py: full pulls by paged queries, incremental ones by change data capture;
- writes.py (+ items.py, keys.py): fee lines, fee invoices, notes, credit memos, invoice send,
  batched under requestids, each carrying its action key;
- verify.py: whether a write took effect, after an unknown outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from connectors.base import (
    AccessTokens,
    Capabilities,
    Clock,
    ConnectorError,
    Cursor,
    Verification,
    WriteRequest,
    WriteResult,
)
from connectors.limits import TenantLimiter
from connectors.quickbooks.client import BATCH_SIZE, LEDGER, MINOR_VERSION, RETRY_BASE_WAIT, QuickBooksClient
from connectors.quickbooks.items import FeeItem
from connectors.quickbooks.pull import QuickBooksPull
from connectors.quickbooks.verify import QuickBooksVerifier
from connectors.quickbooks.writes import QuickBooksWriter
from connectors.streams import PageStream


class QuickBooksConnector:
    ledger = LEDGER
    capabilities = Capabilities(
        fee_line_on_invoice=True,
        fee_invoice=True,
        ledger_email=True,
        ledger_email_idempotent=False,  # invoice send has no requestid protection: verify first
        notes=True,
        credit_notes=True,
        write_batch_size=BATCH_SIZE,
    )

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        realm_id: str,
        tokens: AccessTokens,
        minor_version: int = MINOR_VERSION,
        history_months: int = 24,
        fee_mode: str = "line",
        fee_item_name: str = "Late fee",
        clock: Clock | None = None,
        limiter: TenantLimiter | None = None,
        retry_sleep: Callable[[float], None] = time.sleep,
        retry_base_wait: float = RETRY_BASE_WAIT,
        max_attempts: int = 6,
        timeout: tuple[float, float] = (10.0, 120.0),
    ) -> None:
        if fee_mode not in ("line", "invoice"):
            raise ConnectorError(
                f"fee_mode must be 'line' or 'invoice', not {fee_mode!r}", connection=name, call="config"
            )
        self.client = QuickBooksClient(
            name=name,
            base_url=base_url,
            realm_id=realm_id,
            tokens=tokens,
            minor_version=minor_version,
            clock=clock,
            limiter=limiter,
            retry_sleep=retry_sleep,
            retry_base_wait=retry_base_wait,
            max_attempts=max_attempts,
            timeout=timeout,
        )
        self.name = name
        self.realm_id = self.client.realm_id
        self.fee_mode = fee_mode
        self.fee_item = FeeItem(self.client, fee_item_name)
        self.puller = QuickBooksPull(self.client, history_months=history_months)
        self.writer = QuickBooksWriter(self.client, self.fee_item, fee_mode=fee_mode)
        self.verifier = QuickBooksVerifier(self.client)
        if fee_mode == "invoice":
            self.capabilities = replace(QuickBooksConnector.capabilities, fee_line_on_invoice=False)

    # ------------------------------------------------------------ the Connector protocol

    def pull(self, cursor: Cursor | None, *, history_from: date | None = None) -> PageStream:
        return self.puller.pull(cursor, history_from=history_from)

    def write(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        return self.writer.write(requests)

    def verify(self, request: WriteRequest, *, since: datetime) -> Verification:
        return self.verifier.verify(request, since=since)

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------ reads and knobs on the client

    def query(self, select: str, describe: str | None = None) -> dict[str, Any]:
        return self.client.query(select, describe)

    def fee_item_ref(self) -> dict[str, str]:
        """ItemRef of the fee Item (found, else created once); cached. Raises ConnectorError."""
        return self.fee_item.ref()

    @property
    def tokens(self) -> AccessTokens:
        return self.client.tokens

    @property
    def limiter(self) -> TenantLimiter:
        return self.client.limiter

    @property
    def calls(self) -> int:
        """HTTP requests answered (any status), for benchmarks and tests."""
        return self.client.calls

    # Tests shorten the backoff, or move the clock, of an open connector.
    @property
    def _retry_base_wait(self) -> float:
        return self.client.retry_base_wait

    @_retry_base_wait.setter
    def _retry_base_wait(self, seconds: float) -> None:
        self.client.retry_base_wait = seconds

    @property
    def _clock(self) -> Clock | None:
        return self.client.clock

    @_clock.setter
    def _clock(self, clock: Clock | None) -> None:
        self.client.clock = clock
