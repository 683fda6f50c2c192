"""Typed action details from the JSON shape the outbox stores (tests keep their data readable)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policies.model.actions import ActionKind
from policies.model.details import Details
from sync.store.details_codec import decode_details


def typed(kind: ActionKind, step: str | None, data: Mapping[str, Any]) -> Details | None:
    """The details an action of `kind` (and `step`) carries, from their stored JSON form."""
    details, extra = decode_details(kind, step, data)
    assert not extra, f"keys that are not {kind.value} details: {sorted(extra)}"
    return details
