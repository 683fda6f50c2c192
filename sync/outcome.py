"""What one effect came to: done, failed (nothing happened) or uncertain (verify before any retry).

The result type the applier records in the outbox and every channel and ledger write returns;
it sits below both so neither imports the other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from connectors.base import WriteResult, WriteStatus


@dataclass(frozen=True, slots=True)
class Outcome:
    status: WriteStatus
    ledger_ids: tuple[str, ...] = ()
    error: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)  # recorded with the action when done

    @classmethod
    def done(cls, **detail: Any) -> Outcome:
        return cls(WriteStatus.DONE, detail=detail)

    @classmethod
    def failed(cls, error: str) -> Outcome:
        return cls(WriteStatus.FAILED, error=error)

    @classmethod
    def uncertain(cls, error: str) -> Outcome:
        return cls(WriteStatus.UNCERTAIN, error=error)

    def with_detail(self, **extra: Any) -> Outcome:
        return replace(self, detail={**self.detail, **extra})


def combine(results: Sequence[WriteResult]) -> Outcome:
    """One action may be several ledger requests (a notice over N invoices)."""
    ids = tuple(r.ledger_id for r in results if r.ledger_id)
    errors = [f"{r.key}: {r.error}" for r in results if r.error]
    if any(r.status is WriteStatus.UNCERTAIN for r in results):
        return Outcome(WriteStatus.UNCERTAIN, ids, "; ".join(errors) or "outcome unknown")
    if any(r.status is WriteStatus.FAILED for r in results):
        return Outcome(WriteStatus.FAILED, ids, "; ".join(errors))
    return Outcome(WriteStatus.DONE, ids, detail={"results": [r.ledger_id for r in results]})
