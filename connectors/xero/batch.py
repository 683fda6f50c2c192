"""One batched PUT under one Idempotency-Key, as fee invoices (writes.py) and credit notes
(credit_notes.py) are created: items answered one by one, a failure of the whole PUT meaning the
same for each of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from connectors.base import WriteResult, WriteStatus
from connectors.xero.client import XeroClient
from connectors.xero.errors import guarded


def counted(count: int, noun: str) -> str:
    """'1 fee invoice', '3 fee invoices': how many items a call description names."""
    return f"{count} {noun}{'s' if count > 1 else ''}"


def put_batch(
    client: XeroClient, call: str, key: str, create: Callable[..., Any], models: object
) -> WriteResult:
    """`create` (an AccountingApi create_* method) of `models` (one SDK collection) under
    Idempotency-Key `key`, with summarize_errors off so that each item has its own answer. DONE
    carries the answer's JSON as detail["body"]; otherwise the status and error the failure means
    for every item of the batch."""

    def send() -> WriteResult:
        body = client.json(
            call,
            lambda: create(
                client.tenant_id, models, summarize_errors=False, idempotency_key=key, **client.options()
            ),
        )
        return WriteResult(key, WriteStatus.DONE, detail={"body": body})

    return guarded(key, send)
