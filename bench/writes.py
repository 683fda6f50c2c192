"""HTTP calls per 1,000 write actions through connector.write() (batching: QBO 30 per batch).

Each kind of write is sent as one list of requests on distinct invoices of a generated company,
in an in-process sandbox; the calls are counted on the sandbox side (every API request, including
re-reads the connector makes, e.g. QBO SyncTokens). Results are reported with their statuses so a
low count can never hide failed writes.
"""

from __future__ import annotations

import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.pulls import open_connector, summarise_calls
from bench.sandbox import LocalSandbox
from connectors.base import (
    CreditNoteRequest,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    WriteRequest,
)

KINDS = ("note", "fee_line", "fee_invoice", "ledger_email", "credit_note")


def requests_for(kind: str, invoices: list[dict[str, str]], run: str) -> list[WriteRequest]:
    today = datetime.now(UTC).date()
    built: list[WriteRequest] = []
    for index, invoice in enumerate(invoices):
        key = f"bench-{run}-{kind}-{index}"
        if kind == "note":
            built.append(Note(key, invoice["id"], "relance: late_1 reminder sent by email"))
        elif kind == "fee_line":
            built.append(
                FeeLine(key, invoice["id"], "Late-payment fee", Decimal("15.00"), invoice["currency"])
            )
        elif kind == "fee_invoice":
            built.append(
                FeeInvoice(
                    key,
                    invoice["customer_id"],
                    invoice["currency"],
                    (("Late-payment fee", Decimal("15.00")),),
                    invoice["number"],
                    today + timedelta(days=30),
                    today,
                )
            )
        elif kind == "ledger_email":
            built.append(LedgerEmail(key, invoice["id"]))
        elif kind == "credit_note":
            built.append(
                CreditNoteRequest(
                    key,
                    invoice["customer_id"],
                    invoice["id"],
                    invoice["currency"],
                    Decimal("1.00"),
                    "Early-payment discount",
                    today,
                )
            )
        else:
            raise ValueError(f"unknown write kind {kind!r}")
    return built


def supported(connector: Any, kind: str) -> bool:
    caps = connector.capabilities
    return {
        "note": caps.notes,
        "fee_line": caps.fee_line_on_invoice,
        "fee_invoice": caps.fee_invoice,
        "ledger_email": caps.ledger_email,
        "credit_note": caps.credit_notes,
    }[kind]


def measure_writes(
    ledger: str,
    *,
    actions: int = 1000,
    company_invoices: int = 10_000,
    kinds: tuple[str, ...] = KINDS,
    seed: int = 5,
) -> dict[str, Any]:
    """{kind: {"calls": n per `actions` writes, "statuses": {...}, ...}} for one ledger."""
    sandbox = LocalSandbox(
        ledger, invoices=company_invoices, customers=max(20, company_invoices // 10), seed=seed
    )
    result: dict[str, Any] = {}
    try:
        open_invoices = sandbox.invoice_ids(open_only=True)
        with tempfile.TemporaryDirectory(prefix="relance-bench-writes-") as tmp:
            connector = open_connector(sandbox.info, Path(tmp))
            try:
                result["batch_size"] = connector.capabilities.write_batch_size
                offset = 0
                for kind in kinds:
                    if not supported(connector, kind):
                        result[kind] = {"supported": False}
                        continue
                    # distinct invoices per kind, so one kind's edits do not stale another's
                    chosen = open_invoices[offset : offset + actions]
                    if len(chosen) < actions:
                        chosen = open_invoices[:actions]
                    offset += actions
                    batch = requests_for(kind, chosen, run=str(seed))
                    sandbox.reset_counts()
                    started = time.perf_counter()
                    outcomes = connector.write(batch)
                    seconds = time.perf_counter() - started
                    calls = summarise_calls(sandbox.counts())
                    statuses = Counter(str(outcome.status) for outcome in outcomes)
                    errors = Counter((o.error or "")[:120] for o in outcomes if o.error)
                    result[kind] = {
                        "actions": len(batch),
                        "calls": calls["total"],
                        "calls_per_1000": round(calls["total"] * 1000 / max(1, len(batch)), 1),
                        "by_call": {
                            **{f"query:{k}": v for k, v in calls["by_entity"].items()},
                            **calls["other"],
                        },
                        "statuses": dict(statuses),
                        "first_errors": dict(errors.most_common(3)),
                        "seconds": round(seconds, 2),
                    }
                result["open_invoices_available"] = len(open_invoices)
            finally:
                connector.close()
    finally:
        sandbox.close()
    return result


def figures(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The JSON summary: calls per 1,000 actions by ledger and kind."""
    return {
        ledger: {
            kind: data["calls_per_1000"]
            for kind, data in by_kind.items()
            if isinstance(data, dict) and "calls_per_1000" in data
        }
        for ledger, by_kind in results.items()
    }
