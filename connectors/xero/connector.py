"""The Xero connector, through xero-python (AccountingApi over urllib3).

One object per connection, made of parts with one purpose each:
- client.py: the SDK client, limiter, retries and token handling (every call);
- pull.py: full and If-Modified-Since pulls, paged by pageCount;
- writes.py, credit_notes.py (+ keys.py): fee invoices, emails, history notes, credit notes and
  their allocations, under Idempotency-Keys;
- verify.py: whether a write took effect, after an unknown outcome.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import date, datetime

from connectors.base import (
    AccessTokens,
    Capabilities,
    Clock,
    Cursor,
    Verification,
    WriteRequest,
    WriteResult,
)
from connectors.limits import TenantLimiter
from connectors.streams import PageStream
from connectors.xero.client import LEDGER, PAGE_SIZE, RETRY_BASE_WAIT, XeroClient
from connectors.xero.credit_notes import XeroCreditNotes
from connectors.xero.pull import XeroPull
from connectors.xero.verify import XeroVerifier
from connectors.xero.writes import XeroWriter

SALES_ACCOUNT_CODE = "200"


class XeroConnector:
    ledger = LEDGER
    capabilities = Capabilities(
        fee_line_on_invoice=False,  # lines of an approved invoice cannot be changed safely
        fee_invoice=True,
        ledger_email=True,
        ledger_email_idempotent=True,
        notes=True,
        credit_notes=True,
        write_batch_size=50,
    )

    def __init__(
        self,
        *,
        name: str,
        base_url: str,
        tenant_id: str,
        tokens: AccessTokens,
        history_months: int = 24,
        clock: Clock | None = None,
        page_size: int = PAGE_SIZE,
        account_code: str = SALES_ACCOUNT_CODE,
        limiter: TenantLimiter | None = None,
        retry_sleep: Callable[[float], None] = time.sleep,
        retry_base_wait: float = RETRY_BASE_WAIT,
        max_attempts: int = 6,
        timeout: tuple[float, float] = (10.0, 120.0),
    ) -> None:
        self.client = XeroClient(
            name=name,
            base_url=base_url,
            tenant_id=tenant_id,
            tokens=tokens,
            clock=clock,
            limiter=limiter,
            retry_sleep=retry_sleep,
            retry_base_wait=retry_base_wait,
            max_attempts=max_attempts,
            timeout=timeout,
        )
        self.name = name
        self.tenant_id = tenant_id
        self.history_months = history_months
        self.puller = XeroPull(self.client, page_size=page_size)
        self.credit_notes = XeroCreditNotes(self.client, account_code=account_code)
        self.writer = XeroWriter(
            self.client,
            self.credit_notes,
            account_code=account_code,
            batch_size=self.capabilities.write_batch_size,
        )
        self.verifier = XeroVerifier(self.client)

    # ------------------------------------------------------------ the Connector protocol

    def pull(self, cursor: Cursor | None, *, history_from: date) -> PageStream:
        return self.puller.pull(cursor, history_from=history_from)

    def write(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        return self.writer.write(requests)

    def verify(self, request: WriteRequest, *, since: datetime) -> Verification:
        return self.verifier.verify(request, since=since)

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------ state on the client

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

    # Tests shorten the backoff of an open connector.
    @property
    def _retry_base_wait(self) -> float:
        return self.client.retry_base_wait

    @_retry_base_wait.setter
    def _retry_base_wait(self, seconds: float) -> None:
        self.client.retry_base_wait = seconds

    def __repr__(self) -> str:
        base_url = self.client.base_url
        return f"XeroConnector(name={self.name!r}, tenant_id={self.tenant_id!r}, base_url={base_url!r})"
