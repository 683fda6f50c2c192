"""Where a Xero write carries its action key: Idempotency-Key headers (one per batched PUT, derived
from its members), a marker on a fee invoice's first line, a credit note's Reference."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal


def key_marker(key: str) -> str:
    """Tag on a fee invoice line naming the request that created it (shown as a short reference)."""
    return f"(ref {key})"


def with_key_marker(lines: Sequence[tuple[str, Decimal]], key: str) -> list[tuple[str, Decimal]]:
    tagged = [(description, amount) for description, amount in lines]
    if tagged:
        description, amount = tagged[0]
        tagged[0] = (f"{description} {key_marker(key)}", amount)
    return tagged


def batch_key(keys: Sequence[str]) -> str:
    """Idempotency-Key of a batched PUT: derived from its members' keys (order-free)."""
    if len(keys) == 1:
        return keys[0]
    digest = hashlib.sha256("|".join(sorted(keys)).encode()).hexdigest()[:48]
    return f"relance-batch-{digest}"


def credit_note_reference(key: str) -> str:
    return f"relance:{key}"
