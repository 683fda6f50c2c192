"""API calls of full and incremental pulls, through the real connectors, against the sandboxes.

`python -m bench.pulls run --ledger quickbooks --invoices 10000` runs one size in this process
(peak RSS is this process's) while the sandbox serving that company runs in a child process
(`python -m bench.pulls serve ...`, driven by JSON lines on stdin/stdout), so the figure measures
relance and not the sandbox. Call counts come from the sandbox side: every request it answers is
classified (list call per entity, CDC, batch, single-object call).

The connectors' limiter paces at the published limits (Xero 60/min); against a local sandbox the
bench registers a limiter with a very high per-minute budget: the figures count calls, pacing
would only add sleep.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.memory import REPO, current_rss_mb, peak_rss_mb
from connectors.base import Connector, Cursor, Page
from policies.model.ledger import InvoiceStatus

LEDGERS = ("quickbooks", "xero")
PAGE_SIZE = 1000
LOCAL_PER_MINUTE = 1_000_000  # a local sandbox: count calls, do not pace them
HISTORY_DAYS = 730  # the connectors' default 24 months of history

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


# ---------------------------------------------------------------- the sandbox side


def build_sandbox(ledger: str, *, invoices: int, customers: int, seed: int) -> Any:
    """The ledger's sandbox with a generated company (constructed the way `relance sandbox serve`
    does), not started. Server-side rate limits (the Xero sandbox enforces 60/min and 5,000/day
    like Xero) are lifted: the bench counts calls; storms inject limits explicitly."""
    _no_nagle()
    if ledger == "quickbooks":
        from connectors.sandbox.quickbooks import QuickBooksSandbox as factory
    else:
        from connectors.sandbox.xero import XeroSandbox as factory  # type: ignore[assignment]
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
    from connectors.sandbox import server

    server._RequestHandler.disable_nagle_algorithm = True


def _servers_of(sandbox: Any) -> list[Any]:
    from connectors.sandbox.server import SandboxServer

    if isinstance(sandbox, SandboxServer):
        return [sandbox]
    found = [value for value in vars(sandbox).values() if isinstance(value, SandboxServer)]
    return found


def _authority_of(sandbox: Any) -> Any:
    for holder in (sandbox, *_servers_of(sandbox)):
        authority = getattr(holder, "authority", None)
        if authority is not None and hasattr(authority, "grant"):
            return authority
    raise RuntimeError(f"{type(sandbox).__name__} exposes no OAuth authority to grant tokens")


def classify(ledger: str, method: str, path: str, query: dict[str, list[str]], body: bytes) -> str:
    """One request -> a call category: list:<entity>, cdc, batch, or 'METHOD /path/{id}'."""
    from connectors.sandbox.server import path_pattern

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
    return f"{method} {path_pattern(path)}"


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

    def fingerprint(self) -> dict[str, list[Any]]:
        return truth_fingerprint(self.sandbox.truth())

    def effects(self) -> dict[str, int]:
        return dict(Counter(effect.kind for effect in self.sandbox.effects()))

    def log_total(self) -> int:
        return int(self.sandbox.log.count())

    def stop(self) -> None:
        self.sandbox.stop()


def serve_main(args: argparse.Namespace) -> int:
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


class RemoteSandbox:
    """A SandboxDriver in a child process (big companies: keeps the sandbox out of our RSS)."""

    def __init__(self, ledger: str, *, invoices: int, customers: int, seed: int) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.pulls",
                "serve",
                "--ledger",
                ledger,
                "--invoices",
                str(invoices),
                "--customers",
                str(customers),
                "--seed",
                str(seed),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.info: dict[str, Any] = self._read()

    def _read(self) -> dict[str, Any]:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._process.wait(timeout=10)
            self._stderr.seek(0)
            tail = "\n".join(self._stderr.read().strip().splitlines()[-15:])
            raise RuntimeError(f"the sandbox process exited ({self._process.returncode}):\n{tail}")
        result: dict[str, Any] = json.loads(line)
        return result

    def __getattr__(self, op: str) -> Callable[..., Any]:
        if op.startswith("_"):
            raise AttributeError(op)

        def call(**kwargs: Any) -> Any:
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
            self._process.stdin.flush()
            answer = self._read()
            if "error" in answer:
                raise RuntimeError(f"sandbox {op}: {answer['error']}")
            return answer["ok"]

        return call

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(Exception):
                self.__getattr__("stop")()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._stderr.close()


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


# ---------------------------------------------------------------- the relance side


def open_connector(info: dict[str, Any], workdir: Path, *, name: str | None = None) -> Connector:
    """The real connector for a sandbox: encrypted token store, refresher against the sandbox's
    OAuth endpoints, and a limiter registered with a local-sandbox budget."""
    from cryptography.fernet import Fernet

    from connectors.limits import limiter_for, reset_limiters
    from connectors.oauth import refresher_for, resolve_endpoints
    from connectors.secrets import SecretBox
    from connectors.tokens import TokenProvider, Tokens, TokenStore

    ledger = info["ledger"]
    name = name or f"bench-{ledger}"
    account_id = info["account_id"]
    workdir.mkdir(parents=True, exist_ok=True)
    store = TokenStore(workdir / "tokens.enc.json", SecretBox(Fernet.generate_key()))
    store.save(name, Tokens.from_response(info["token"], account_id=account_id))
    endpoints = resolve_endpoints(
        ledger,
        discovery_url=info.get("discovery_url"),
        identity_url=info.get("identity_url"),
        base_url=info["base_url"],
    )
    refresher = refresher_for(ledger, info["client_id"], info["client_secret"], endpoints)
    provider = TokenProvider(name, store, refresher, lock_dir=workdir, ledger=ledger)
    # A fresh limiter per connector: storms exhaust Xero's day budget on purpose.
    reset_limiters()
    limiter_for(ledger, account_id, per_minute=LOCAL_PER_MINUTE)
    if ledger == "quickbooks":
        from connectors.quickbooks.connector import QuickBooksConnector

        return QuickBooksConnector(name=name, base_url=info["base_url"], realm_id=account_id, tokens=provider)
    from connectors.xero.connector import XeroConnector

    return XeroConnector(name=name, base_url=info["base_url"], tenant_id=account_id, tokens=provider)


def history_from(today: date | None = None) -> date:
    return (today or datetime.now(UTC).date()) - timedelta(days=HISTORY_DAYS)


@dataclass
class PullOutcome:
    records: Counter[str]
    pages: int
    cursor: Cursor | None
    seconds: float
    rss_samples: list[float]
    quarantined: int


def consume(
    pages: Iterator[Page] | Any,
    *,
    on_page: Callable[[int, Page], None] | None = None,
    keep: dict[str, dict[str, Any]] | None = None,
) -> tuple[Counter[str], int, int, list[float]]:
    """Iterate a pull without holding it: counts per entity, pages, quarantined, RSS samples."""
    records: Counter[str] = Counter()
    pages_seen = quarantined = 0
    samples: list[float] = []
    for page in pages:
        pages_seen += 1
        records[page.entity] += len(page.records)
        quarantined += len(page.quarantined)
        if keep is not None:
            bucket = keep.setdefault(page.entity, {})
            for record in page.records:
                bucket[record.id] = record_fingerprint(page.entity, record)
            for deleted in page.deleted_ids:
                bucket.pop(deleted, None)
        if pages_seen % 25 == 1:
            rss = current_rss_mb()
            if rss is not None:
                samples.append(rss)
        if on_page is not None:
            on_page(pages_seen, page)
    return records, pages_seen, quarantined, samples


def pull(connector: Connector, cursor: Cursor | None, **kwargs: Any) -> PullOutcome:
    started = time.perf_counter()
    stream = connector.pull(cursor, history_from=history_from())
    records, pages, quarantined, samples = consume(stream, **kwargs)
    new_cursor = stream.cursor
    return PullOutcome(records, pages, new_cursor, time.perf_counter() - started, samples, quarantined)


def _amount(value: Any) -> str:
    """Equal amounts compare equal whatever their exponent (2285.80 from JSON is 2285.8)."""
    return str(Decimal(value).normalize()) if value is not None else "None"


def record_fingerprint(entity: str, record: Any) -> Any:
    """What must survive a pull exactly: ids, amounts, status."""
    if entity == "invoice":
        return [
            _amount(record.total.amount),
            _amount(record.balance.amount),
            str(record.status),
            record.customer_id,
        ]
    if entity in ("payment", "credit_note"):
        total = record.amount.amount if entity == "payment" else record.total.amount
        return [_amount(total), sorted([a.invoice_id, _amount(a.amount)] for a in record.allocations)]
    return [record.name]


def truth_fingerprint(snapshot: Any) -> dict[str, dict[str, Any]]:
    return {
        "customer": {
            c.id: record_fingerprint("customer", c) for c in snapshot.customers.values() if c.active
        },
        "invoice": {i.id: record_fingerprint("invoice", i) for i in snapshot.invoices.values()},
        "payment": {p.id: record_fingerprint("payment", p) for p in snapshot.payments.values()},
        "credit_note": {n.id: record_fingerprint("credit_note", n) for n in snapshot.credit_notes.values()},
    }


def minimum_calls(records: Counter[str]) -> dict[str, int]:
    """ceil(rows / 1000) list calls per entity (at least one call to learn there are none)."""
    return {
        entity: max(1, math.ceil(records.get(entity, 0) / PAGE_SIZE))
        for entity in ("customer", "invoice", "payment", "credit_note")
    }


def summarise_calls(counts: dict[str, Any]) -> dict[str, Any]:
    calls: dict[str, int] = counts["calls"]
    lists = {k.removeprefix("list:"): v for k, v in calls.items() if k.startswith("list:")}
    return {
        "total": sum(calls.values()),
        "list": sum(lists.values()),
        "by_entity": lists,
        "other": {k: v for k, v in calls.items() if not k.startswith("list:")},
    }


def _open_store(workdir: Path) -> Any | None:
    """The real state store (SQLite) when sync/store is there, else None (pull-only streaming)."""
    try:
        from sync.engine import pull_into_store  # noqa: F401
        from sync.store import open_store
    except ImportError:
        return None
    return open_store(f"sqlite:///{workdir / 'state.sqlite'}")


def run_size(
    ledger: str, invoices: int, *, seed: int = 11, use_store: bool = True, remote: bool = True
) -> dict[str, Any]:
    """Full pull, no-change incremental, 1% incremental for one company size; RSS of this process."""
    customers = max(20, invoices // 10)
    opened = time.perf_counter()
    sandbox: RemoteSandbox | LocalSandbox = (
        RemoteSandbox(ledger, invoices=invoices, customers=customers, seed=seed)
        if remote
        else LocalSandbox(ledger, invoices=invoices, customers=customers, seed=seed)
    )
    sandbox_seconds = time.perf_counter() - opened
    try:
        with tempfile.TemporaryDirectory(prefix="relance-bench-") as tmp:
            workdir = Path(tmp)
            connector = open_connector(sandbox.info, workdir)
            store = _open_store(workdir) if use_store else None
            result: dict[str, Any] = {
                "ledger": ledger,
                "invoices": invoices,
                "customers": customers,
                "sandbox_seconds": round(sandbox_seconds, 2),
                "mode": "pull -> SQLite state store"
                if store is not None
                else "pull only (pages streamed, not stored)",
            }
            try:
                runs = {}
                for phase in ("full", "incremental_nochange", "incremental_1pct"):
                    if phase == "incremental_1pct":
                        time.sleep(1.1)  # modification stamps strictly after the cursor (1 s resolution)
                        result["modified"] = sandbox.modify(fraction=0.01)
                        time.sleep(1.1)
                    sandbox.reset_counts()
                    outcome = _pull_phase(
                        connector, store, ledger, full=phase == "full", cursor=runs.get("cursor")
                    )
                    runs["cursor"] = outcome.cursor
                    calls = summarise_calls(sandbox.counts())
                    result[phase] = {
                        "calls": calls,
                        "records": dict(outcome.records),
                        "pages": outcome.pages,
                        "quarantined": outcome.quarantined,
                        "seconds": round(outcome.seconds, 2),
                    }
                    if phase == "full":
                        result["rss_during_full_mb"] = outcome.rss_samples
                        minimum = minimum_calls(outcome.records)
                        result["minimum"] = {"total": sum(minimum.values()), "by_entity": minimum}
            finally:
                connector.close()
                if store is not None:
                    with contextlib.suppress(Exception):
                        store.close()
    finally:
        sandbox.close()
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _pull_phase(
    connector: Connector, store: Any | None, ledger: str, *, full: bool, cursor: Cursor | None
) -> PullOutcome:
    if store is None:
        return pull(connector, None if full else cursor)
    from sync.engine import pull_into_store

    started = time.perf_counter()
    counts, quarantined = pull_into_store(
        connector, store, f"bench-{ledger}", history_from=history_from(), full=full
    )
    rss = current_rss_mb()
    pages = -1  # pull_into_store does not expose pages; calls are counted on the sandbox side
    return PullOutcome(
        Counter(counts),
        pages,
        None,
        time.perf_counter() - started,
        [rss] if rss is not None else [],
        quarantined,
    )


class GeneratedPages:
    """A connector-shaped source streaming a generated company as pages of 1,000 (no HTTP).

    Measures what relance itself holds while streaming pages into the state store, without a
    sandbox process holding the whole company in memory (the sandboxes page linearly since their
    list results are cached per query and state version, but keep every record as JSON-like
    objects: several GB at 1M invoices). Invoices, payments and credit notes are emitted as they
    are generated: nothing is accumulated beyond one page per entity."""

    ledger = "generated"

    def __init__(self, invoices: int, customers: int, seed: int) -> None:
        self.invoices = invoices
        self.customers = customers
        self.seed = seed
        self.mode = "full"
        self.source_mb: float | None = None

    def pull(self, cursor: Cursor | None, *, history_from: date) -> GeneratedPages:
        return self

    def __iter__(self) -> Iterator[Page]:
        from connectors.sandbox.generator import iter_company

        customers, stream = iter_company(
            seed=self.seed,
            customers=self.customers,
            invoices=self.invoices,
            today=datetime.now(UTC).date(),
            country="FR",
            currency="EUR",
            other_currencies=("USD", "GBP"),
            language="fr",
        )
        # what the generator itself holds (customer objects, per-customer habits): not relance's
        self.source_mb = current_rss_mb()
        for start in range(0, len(customers), PAGE_SIZE):
            yield Page("customer", tuple(customers[start : start + PAGE_SIZE]))
        del customers
        buffers: dict[str, list[Any]] = {"invoice": [], "payment": [], "credit_note": []}
        for item in stream:
            buffers["invoice"].append(item.invoice)
            buffers["payment"].extend(item.payments)
            buffers["credit_note"].extend(item.credit_notes)
            for entity, rows in buffers.items():
                if len(rows) >= PAGE_SIZE:
                    yield Page(entity, tuple(rows))  # type: ignore[arg-type]
                    rows.clear()
        for entity, rows in buffers.items():
            if rows:
                yield Page(entity, tuple(rows))  # type: ignore[arg-type]

    @property
    def cursor(self) -> Cursor:
        return Cursor(ledger=self.ledger, data={}, taken_at=datetime.now(UTC))


def run_generated(invoices: int, *, seed: int = 11) -> dict[str, Any]:
    """Generated pages -> the SQLite state store in this process: peak RSS at any size."""
    from sync.engine import pull_into_store

    source = GeneratedPages(invoices, max(20, invoices // 10), seed)
    with tempfile.TemporaryDirectory(prefix="relance-bench-gen-") as tmp:
        store = _open_store(Path(tmp))
        if store is None:
            raise RuntimeError("sync/store is not available")
        started = time.perf_counter()
        try:
            counts, _ = pull_into_store(
                source, store, "bench-generated", history_from=history_from(), full=True
            )  # type: ignore[arg-type]
        finally:
            store.close()
        seconds = time.perf_counter() - started
        database_mb = round(sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6, 1)
    return {
        "ledger": "generated (no HTTP)",
        "invoices": invoices,
        "mode": "generated pages -> SQLite state store",
        "records": dict(counts),
        "seconds": round(seconds, 1),
        "database_mb": database_mb,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_generator_setup_mb": source.source_mb,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pulls", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("run", "serve", "generated"):
        child = sub.add_parser(command)
        child.add_argument("--ledger", choices=LEDGERS, required=command != "generated")
        child.add_argument("--invoices", type=int, default=10_000)
        child.add_argument("--customers", type=int, default=None)
        child.add_argument("--seed", type=int, default=11)
    sub.choices["run"].add_argument("--no-store", action="store_true", help="stream pages, do not store them")
    sub.choices["run"].add_argument("--local", action="store_true", help="sandbox in this process")
    args = parser.parse_args(argv)
    if args.customers is None:
        args.customers = max(20, args.invoices // 10)
    if args.command == "serve":
        return serve_main(args)
    if args.command == "generated":
        print(json.dumps(run_generated(args.invoices, seed=args.seed)))
        return 0
    result = run_size(
        args.ledger, args.invoices, seed=args.seed, use_store=not args.no_store, remote=not args.local
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
