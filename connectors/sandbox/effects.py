"""Exactly-once bookkeeping shared by the ledger sandboxes: the effects writes had (what
exactly-once tests count) and the stored answers that replay a repeated idempotent write.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from connectors.sandbox.clock import SandboxClock
from connectors.sandbox.messages import SandboxResponse

EffectKind = Literal["email", "note", "fee_line", "fee_invoice", "credit_note"]


@dataclass(frozen=True, slots=True)
class Effect:
    """Something a write did to the sandbox ledger (what exactly-once tests count)."""

    kind: EffectKind
    invoice_id: str
    idempotency_key: str | None
    amount: Decimal | None
    at: datetime
    detail: str = ""


class EffectLog:
    """The effects of a ledger's writes, in order, stamped by the sandbox clock."""

    def __init__(self, clock: SandboxClock) -> None:
        self.clock = clock
        self._effects: list[Effect] = []

    def record(
        self, kind: EffectKind, invoice_id: str, key: str | None, amount: Decimal | None, detail: str = ""
    ) -> None:
        self._effects.append(Effect(kind, invoice_id, key, amount, self.clock.now(), detail))

    def replace(self, effects: Iterable[Effect]) -> None:
        """Start over with `effects` (a reset, or a state file being loaded)."""
        self._effects = list(effects)

    def __iter__(self) -> Iterator[Effect]:
        return iter(self._effects)

    def __len__(self) -> int:
        return len(self._effects)

    def snapshot(self) -> list[Effect]:
        return list(self._effects)


# A stored answer: status, body, headers.
StoredAnswer = tuple[int, bytes, dict[str, str]]


class ReplayStore:
    """The first answer of each idempotent write, by key: repeating the key replays it (and has no
    second effect). Which writes are keyed and which answers are kept is the ledger's rule."""

    def __init__(self) -> None:
        self._answers: dict[str, StoredAnswer] = {}

    def replay(self, key: str) -> SandboxResponse | None:
        stored = self._answers.get(key)
        if stored is None:
            return None
        status, body, headers = stored
        return SandboxResponse(status, body, dict(headers))

    def remember(self, key: str, response: SandboxResponse) -> None:
        self._answers[key] = (response.status, response.body, dict(response.headers))

    def items(self) -> Iterator[tuple[str, StoredAnswer]]:
        return iter(self._answers.items())

    def replace(self, answers: Iterable[tuple[str, StoredAnswer]]) -> None:
        """Start over with `answers` (a reset, or a state file being loaded)."""
        self._answers = dict(answers)

    def __len__(self) -> int:
        return len(self._answers)
