"""Exactly-once beyond requestid: where a QuickBooks write carries its action key.

Fee lines carry the key in the line description, fee invoices and credit memos in DocNumber
("RF-"/"RC-" + key prefix), notes in their text, so a repeated request (even in a differently
composed batch) is recognised and not applied twice. Batches carry a requestid derived from their
members; the fee Item's create one derived from realm and name.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from connectors.quickbooks import mapping


def batch_request_id(parts: Sequence[str]) -> str:
    if len(parts) == 1 and len(parts[0]) <= 50:
        return parts[0]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:40]


def item_request_id(realm_id: str, name: str) -> str:
    """requestid of the fee Item's create: the same for every retry and every worker of a realm."""
    return "relance-item-" + hashlib.sha256(f"{realm_id}|{name}".encode()).hexdigest()[:24]


def fee_description(description: str, key: str) -> str:
    return f"{mapping.FEE_MARKER} {description} {key_marker(key)}"


def key_marker(key: str) -> str:
    return f"(ref {key})"


def doc_number(prefix: str, key: str) -> str:
    return f"{prefix}-{key[:17]}"  # DocNumber holds at most 21 characters
