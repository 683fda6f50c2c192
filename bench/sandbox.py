"""The sandbox side of the bench: a ledger sandbox serving a generated company, its API calls
counted and classified, driven by the bench in this process (LocalSandbox) or in a child process
(`python -m bench.sandbox --ledger L --invoices N`, driven by JSON lines on stdin/stdout; see
bench.pulls.RemoteSandbox), so that a pull's peak RSS measures relance and not the sandbox.
"""

from __future__ import annotations

import argparse
import inspect
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.records import LEDGERS, truth_fingerprint
from connectors.sandbox import server as sandbox_server
from connectors.sandbox.quickbooks import QuickBooksSandbox
from connectors.sandbox.xero import XeroSandbox
from policies.model.ledger import InvoiceStatus

_QBO_ENTITIES = {
    "invoice": "invoice",
    "payment": "payment",
    "customer": "customer",
    "creditmemo": "credit_note",
}
_XERO_ENTITIES = {
    "invoices": "invoice",
    "payments": "payment",
    "contacts": "customer",
    "creditnotes": "credit_note",
}
_FROM = re.compile(r"\bfrom\s+(\w+)", re.IGNORECASE)


def build_sandbox(ledger: str, *, invoices: int, customers: int, seed: int) -> Any:
    """The ledger's sandbox with a generated company (constructed the way `relance sandbox serve`
    does), not started. Server-side rate limits (the Xero sandbox enforces 60/min and 5,000/day
    like Xero) are lifted: the bench counts calls; storms inject limits explicitly."""
    _no_nagle()
    factory: type[QuickBooksSandbox | XeroSandbox] = (
        QuickBooksSandbox if ledger == "quickbooks" else XeroSandbox
    )
    kwargs: dict[str, Any] = {
        "seed": seed,
        "customers": customers,
        "invoices": invoices,
        "today": None,
        "state_file": None,
    }
    accepted = inspect.signature(factory).parameters
    for limit in ("minute_limit", "app_minute_limit", "day_limit", "per_minute_limit", "concurrent_limit"):
        if limit in accepted:
            kwargs[limit] = 10**9
    return factory(**kwargs)


def _no_nagle() -> None:
    """The sandbox answers headers and body in two writes; with Nagle on, each small response
    waits for the client's delayed ACK (~40 ms per call). Sandbox-side only: no effect on counts."""
    sandbox_server._RequestHandler.disable_nagle_algorithm = True


def _servers_of(sandbox: Any) -> list[Any]:
    if isinstance(sandbox, sandbox_server.SandboxServer):
        return [sandbox]
    found = [value for value in vars(sandbox).values() if isinstance(value, sandbox_server.SandboxServer)]
    return found


def _authority_of(sandbox: Any) -> Any:
    for holder in (sandbox, *_servers_of(sandbox)):
        authority = getattr(holder, "authority", None)
        if authority is not None and hasattr(authority, "grant"):
            return authority
    raise RuntimeError(f"{type(sandbox).__name__} exposes no OAuth authority to grant tokens")


def classify(ledger: str, method: str, path: str, query: dict[str, list[str]], body: bytes) -> str:
    """One request -> a call category: list:<entity>, cdc, batch, or 'METHOD /path/{id}'."""
    lowered = path.lower()
    if ledger == "quickbooks":
        if lowered.endswith("/query"):
            sql = (query.get("query") or [""])[-1] or body.decode("utf-8", errors="replace")
            found = _FROM.search(sql)
            entity = _QBO_ENTITIES.get(found.group(1).lower(), found.group(1)) if found else "?"
            return f"list:{entity}"
        if lowered.endswith("/cdc"):
            return "cdc"
        if lowered.endswith("/batch"):
            return "batch"
    elif method == "GET":
        last = lowered.rstrip("/").rsplit("/", 1)[-1]
        if last in _XERO_ENTITIES:
            return f"list:{_XERO_ENTITIES[last]}"
    return f"{method} {sandbox_server.path_pattern(path)}"


class SandboxDriver:
    """Everything the bench does to a sandbox, in the sandbox's process."""

    def __init__(self, ledger: str, sandbox: Any) -> None:
        self.ledger = ledger
        self.sandbox = sandbox
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._statuses: Counter[int] = Counter()
        self._instrument()

    def _instrument(self) -> None:
        """Wrap the server's dispatch to classify API calls (OAuth routes are not API calls)."""
        servers = _servers_of(self.sandbox)
        if not servers:
            raise RuntimeError(f"{type(self.sandbox).__name__}: no SandboxServer found to count calls on")
        for server in servers:
            original = server.handle

            def handle(
                request: Any, _original: Callable[[Any], Any] = original, _server: Any = server
            ) -> Any:
                response = _original(request)
                found = _server.match(request.method, request.path)
                if found is not None and found[0].auth:
                    category = classify(
                        self.ledger, request.method, request.path, request.query, request.body
                    )
                    with self._lock:
                        self._calls[category] += 1
                        self._statuses[response.status] += 1
                return response

            server.handle = handle

    def start(self) -> dict[str, Any]:
        self.sandbox.start("127.0.0.1", 0)
        return self.info()

    def info(self) -> dict[str, Any]:
        body = _authority_of(self.sandbox).grant("bench")
        sandbox = self.sandbox
        return {
            "ledger": self.ledger,
            "base_url": sandbox.base_url,
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
            "account_id": sandbox.realm_id if self.ledger == "quickbooks" else sandbox.tenant_id,
            "discovery_url": getattr(sandbox, "discovery_url", None),
            "identity_url": getattr(sandbox, "identity_url", None),
            "token": body,
        }

    def counts(self) -> dict[str, Any]:
        with self._lock:
            return {"calls": dict(self._calls), "statuses": {str(k): v for k, v in self._statuses.items()}}

    def reset_counts(self) -> None:
        with self._lock:
            self._calls.clear()
            self._statuses.clear()

    def invoice_ids(self, *, open_only: bool = False, limit: int | None = None) -> list[dict[str, str]]:
        truth = self.sandbox.truth()
        rows = []
        for invoice in truth.invoices.values():
            if open_only and (invoice.status != InvoiceStatus.OPEN or invoice.balance.amount <= 0):
                continue
            rows.append(
                {
                    "id": invoice.id,
                    "customer_id": invoice.customer_id,
                    "currency": invoice.currency,
                    "number": invoice.number,
                    "balance": str(invoice.balance.amount),
                }
            )
            if limit is not None and len(rows) >= limit:
                break
        return rows

    def modify(self, fraction: float, seed: int = 7) -> int:
        ids = sorted(self.sandbox.truth().invoices)
        count = max(1, round(len(ids) * fraction))
        chosen = random.Random(seed).sample(ids, count)
        self.sandbox.modify_invoices(chosen)
        return count

    def set_faults(self, **fields: Any) -> None:
        faults = self.sandbox.faults
        with faults.lock:
            for name, value in fields.items():
                if not hasattr(faults, name):
                    raise ValueError(f"sandbox faults have no field {name!r}")
                setattr(faults, name, value)

    def reset_faults(self) -> None:
        self.sandbox.faults.reset()

    def fingerprint(self) -> dict[str, dict[str, Any]]:
        return truth_fingerprint(self.sandbox.truth())

    def effects(self) -> dict[str, int]:
        return dict(Counter(effect.kind for effect in self.sandbox.effects()))

    def log_total(self) -> int:
        return int(self.sandbox.log.count())

    def stop(self) -> None:
        self.sandbox.stop()


def serve(args: argparse.Namespace) -> int:
    """The sandbox process: generate, start, print its info, then answer JSON-line commands."""
    started = time.perf_counter()
    sandbox = build_sandbox(args.ledger, invoices=args.invoices, customers=args.customers, seed=args.seed)
    driver = SandboxDriver(args.ledger, sandbox)
    info = driver.start()
    info["generated_seconds"] = round(time.perf_counter() - started, 2)
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        op = command.pop("op")
        try:
            if op == "stop":
                driver.stop()
                print(json.dumps({"ok": None}), flush=True)
                return 0
            result = getattr(driver, op)(**command)
            print(json.dumps({"ok": result}, default=str), flush=True)
        except Exception as error:  # report to the bench process, keep serving
            print(json.dumps({"error": f"{type(error).__name__}: {error}"}), flush=True)
    driver.stop()
    return 0


class LocalSandbox:
    """A SandboxDriver in this process (small companies: writes, storms, smoke tests)."""

    def __init__(self, ledger: str, *, invoices: int, customers: int, seed: int) -> None:
        self.driver = SandboxDriver(
            ledger, build_sandbox(ledger, invoices=invoices, customers=customers, seed=seed)
        )
        self.info = self.driver.start()

    def __getattr__(self, op: str) -> Any:
        if op.startswith("_"):
            raise AttributeError(op)
        return getattr(self.driver, op)

    def close(self) -> None:
        self.driver.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox", description="serve a generated company")
    parser.add_argument("--ledger", choices=LEDGERS, required=True)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    if args.customers is None:
        args.customers = max(20, args.invoices // 10)
    return serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
