"""The one connector interface every ledger implements, as plain data plus a Protocol.

Pull is a stream of pages (never the whole ledger in memory) with an explicit cursor (singer-sdk
style bookmarks). Writes are requests carrying the action key as idempotency key; connectors batch
them where the API allows (QBO batch of 30, Xero several invoices per PUT).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from policies.model.errors import RelanceError
from policies.model.ledger import CreditNote, Customer, Invoice, Payment

Entity = Literal["customer", "invoice", "payment", "credit_note"]
ENTITIES: tuple[Entity, ...] = ("customer", "invoice", "payment", "credit_note")


# ---------------------------------------------------------------- errors


class ConnectorError(RelanceError):
    """A ledger call failed. Message names the connection and the call; hint says what to do."""

    def __init__(
        self,
        message: str,
        *,
        connection: str = "",
        call: str = "",
        hint: str | None = None,
        retryable: bool = False,
    ) -> None:
        where = " ".join(part for part in (connection and f"[{connection}]", call) if part)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.connection = connection
        self.call = call
        self.retryable = retryable


class ConnectionSetupError(RelanceError):
    """A connection cannot be set up: key file, token store, client secret, OAuth endpoints or
    account id missing or unreadable. The message names the file or setting and the fix."""


class AuthError(ConnectorError):
    """Tokens missing, revoked or refresh failed: the user must reconnect."""


class RateLimited(ConnectorError):
    """429 / throttle fault. `retry_after` in seconds when the API said so."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("retryable", True)
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class DayLimitReached(ConnectorError):
    """Xero's daily call limit: the tenant stops until `reset_at` instead of sleeping."""

    def __init__(self, message: str, *, reset_at: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reset_at = reset_at


class LedgerUnavailable(ConnectorError):
    """Connection refused, DNS, TLS or repeated 5xx."""


class StaleObject(ConnectorError):
    """QBO 5010: the SyncToken is stale; re-read and retry."""


class RejectedByLedger(ConnectorError):
    """A 400-class validation error: retrying the same request cannot help."""


# ---------------------------------------------------------------- pull


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where the last pull stopped. `data` is JSON-serialisable and opaque to sync/."""

    ledger: str
    data: dict[str, Any]
    taken_at: datetime


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A record the mapper could not read: reported, skipped, the pull goes on."""

    entity: Entity
    record_id: str | None
    reason: str
    raw: str  # truncated payload excerpt, for the report


@dataclass(frozen=True, slots=True)
class Page:
    entity: Entity
    records: tuple[Customer | Invoice | Payment | CreditNote, ...]
    deleted_ids: tuple[str, ...] = ()
    quarantined: tuple[Quarantined, ...] = ()


class PullMode(StrEnum):
    FULL = "full"
    INCREMENTAL = "incremental"


class PullStream(Protocol):
    """Iterate for pages; read `cursor` only after the pages are exhausted."""

    mode: PullMode

    def __iter__(self) -> Iterator[Page]: ...

    @property
    def cursor(self) -> Cursor: ...


# ---------------------------------------------------------------- write


@dataclass(frozen=True, slots=True)
class FeeLine:
    """Add a fee line to an existing invoice (capability fee_line_on_invoice)."""

    key: str
    invoice_id: str
    description: str
    amount: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class FeeInvoice:
    """Create a separate receivable invoice for fees, referencing the original invoice(s)."""

    key: str
    customer_id: str
    currency: str
    lines: tuple[tuple[str, Decimal], ...]  # (description, amount)
    reference: str  # the original invoice number(s)
    due_date: date
    issue_date: date


@dataclass(frozen=True, slots=True)
class LedgerEmail:
    """The ledger's own invoice email (QBO invoice send, Xero Invoices/{id}/Email)."""

    key: str
    invoice_id: str
    to: str | None = None
    # The invoice's last delivery time as the ledger reported it before this send (ledger clock):
    # verify() compares the ledger's delivery time with it, never with the local clock.
    previous_delivery: datetime | None = None


@dataclass(frozen=True, slots=True)
class Note:
    """A note on the invoice recording what relance did (Xero History, QBO Attachable note)."""

    key: str
    invoice_id: str
    text: str


@dataclass(frozen=True, slots=True)
class CreditNoteRequest:
    """A credit note linked to an invoice (early-payment discount, fee reversal)."""

    key: str
    customer_id: str
    invoice_id: str
    currency: str
    amount: Decimal
    description: str
    issue_date: date


WriteRequest = FeeLine | FeeInvoice | LedgerEmail | Note | CreditNoteRequest


class WriteStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"  # the ledger refused: nothing happened, safe to plan again
    UNCERTAIN = "uncertain"  # may or may not have happened: verify before any retry


@dataclass(frozen=True, slots=True)
class WriteResult:
    key: str
    status: WriteStatus
    ledger_id: str | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


class Verification(StrEnum):
    HAPPENED = "happened"
    NOT_HAPPENED = "not_happened"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Capabilities:
    fee_line_on_invoice: bool  # QBO yes; Xero no (approved invoice lines are not safely editable)
    fee_invoice: bool
    ledger_email: bool
    ledger_email_idempotent: bool  # Xero: Idempotency-Key; QBO send: no, verify before retry
    notes: bool
    credit_notes: bool
    write_batch_size: int  # QBO 30 per batch request; Xero invoices per PUT


# ---------------------------------------------------------------- what a connector is given


class AccessTokens(Protocol):
    """Valid access tokens for one connection (connectors.tokens.TokenProvider)."""

    def access_token(self) -> str: ...

    def force_refresh(self, stale_access_token: str) -> str:
        """After a 401 with `stale_access_token`: a fresh token (refreshed unless someone did)."""
        ...


@runtime_checkable
class SupportsNow(Protocol):
    def now(self) -> datetime: ...


# A connector's clock: an object with now() (the sandboxes' clocks) or a function (time travel).
Clock = SupportsNow | Callable[[], datetime]


def read_clock(clock: Clock | None) -> datetime:
    """Now, on `clock` (aware, UTC when the clock gives a naive time), or the system clock."""
    if clock is None:
        return datetime.now(UTC)
    moment = clock.now() if isinstance(clock, SupportsNow) else clock()
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@runtime_checkable
class Connector(Protocol):
    name: str  # the connection name from relance.yaml
    ledger: str  # a registered ledger name (connectors.registry)
    capabilities: Capabilities

    def pull(self, cursor: Cursor | None, *, history_from: date) -> PullStream:
        """Full pull when cursor is None (or too old for incremental), else only changes."""
        ...

    def write(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        """Apply write requests (batched where possible), one result per request, same order.
        Idempotent requests carry their key to the ledger; never raises for a single failure."""
        ...

    def verify(self, request: WriteRequest, *, since: datetime) -> Verification:
        """Did this request take effect in the ledger (after `since`)? For non-idempotent calls
        interrupted mid-flight (QBO invoice send): HAPPENED / NOT_HAPPENED / UNKNOWN."""
        ...

    def close(self) -> None: ...
