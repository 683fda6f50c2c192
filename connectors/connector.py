"""The Connector protocol (connectors.base) as both ledger connectors implement it: one object per
connection made of a client (every call) and three parts with one purpose each, a puller, a writer
and a verifier, which the protocol's calls go to; the client's state is readable on the connector.

A ledger connector (connectors/quickbooks/connector.py, connectors/xero/connector.py) builds its
client and parts, and names its ledger and capabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Protocol

from connectors.base import AccessTokens, Clock, Cursor, Verification, WriteRequest, WriteResult
from connectors.client import LedgerClient
from connectors.limits import TenantLimiter
from connectors.streams import PageStream


class Puller(Protocol):
    def pull(self, cursor: Cursor | None, *, history_from: date) -> PageStream: ...


class Writer(Protocol):
    def write(self, requests: Sequence[WriteRequest]) -> list[WriteResult]: ...


class Verifier(Protocol):
    def verify(self, request: WriteRequest, *, since: datetime) -> Verification: ...


class LedgerConnector:
    """A connector over `client`, `puller`, `writer` and `verifier` (set by the ledger's)."""

    name: str
    client: LedgerClient
    puller: Puller
    writer: Writer
    verifier: Verifier

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
