"""API calls of full and incremental pulls, through the real connectors, against the sandboxes.

`python -m bench.pulls run --ledger quickbooks --invoices 10000` runs one size in this process
(peak RSS is this process's) while the sandbox serving that company runs in a child process
(`python -m bench.sandbox ...`, driven by JSON lines on stdin/stdout), so the figure measures
relance and not the sandbox. Call counts come from the sandbox side: every request it answers is
classified (list call per entity, CDC, batch, single-object call).

The connectors' limiter paces at the published limits (Xero 60/min); against a local sandbox the
bench registers a limiter with a very high per-minute budget: the figures count calls, pacing
would only add sleep.

What this process imports is part of what it measures: the sandbox's modules, the other ledger's
SDK and (for --no-store) the state store's are imported only where they are used.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet

from bench.process import REPO, current_rss_mb, peak_rss_mb
from bench.records import LEDGERS, PAGE_SIZE, history_from, record_fingerprint
from connectors.base import Connector, Cursor, Page
from connectors.limits import limiter_for, reset_limiters
from connectors.oauth import refresher_for, resolve_endpoints
from connectors.secrets import SecretBox
from connectors.tokens import TokenProvider, Tokens, TokenStore

if TYPE_CHECKING:
    from bench.sandbox import LocalSandbox
    from sync.store import Store

LOCAL_PER_MINUTE = 1_000_000  # a local sandbox: count calls, do not pace them


# ---------------------------------------------------------------- the sandbox, from this side


class RemoteSandbox:
    """A SandboxDriver (bench.sandbox) in a child process: keeps the sandbox out of this RSS."""

    def __init__(self, ledger: str, *, invoices: int, customers: int, seed: int) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed in close()
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.sandbox",
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


# ---------------------------------------------------------------- the relance side


def open_connector(info: dict[str, Any], workdir: Path, *, name: str | None = None) -> Connector:
    """The real connector for a sandbox: encrypted token store, refresher against the sandbox's
    OAuth endpoints, and a limiter registered with a local-sandbox budget."""
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
    # Only this ledger's connector is imported, as relance loads only the plugin a connection names:
    # the other ledger's SDK would count in this process's peak RSS.
    if ledger == "quickbooks":
        from connectors.quickbooks.connector import QuickBooksConnector

        return QuickBooksConnector(name=name, base_url=info["base_url"], realm_id=account_id, tokens=provider)
    from connectors.xero.connector import XeroConnector

    return XeroConnector(name=name, base_url=info["base_url"], tenant_id=account_id, tokens=provider)


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


def run_size(
    ledger: str, invoices: int, *, seed: int = 11, use_store: bool = True, remote: bool = True
) -> dict[str, Any]:
    """Full pull, no-change incremental, 1% incremental for one company size; RSS of this process."""
    customers = max(20, invoices // 10)
    opened = time.perf_counter()
    sandbox = _open_sandbox(ledger, invoices=invoices, customers=customers, seed=seed, remote=remote)
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
                cursor: Cursor | None = None
                for phase in ("full", "incremental_nochange", "incremental_1pct"):
                    if phase == "incremental_1pct":
                        time.sleep(1.1)  # modification stamps strictly after the cursor (1 s resolution)
                        result["modified"] = sandbox.modify(fraction=0.01)
                        time.sleep(1.1)
                    sandbox.reset_counts()
                    outcome = _pull_phase(connector, store, ledger, full=phase == "full", cursor=cursor)
                    cursor = outcome.cursor
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


def _open_sandbox(
    ledger: str, *, invoices: int, customers: int, seed: int, remote: bool
) -> RemoteSandbox | LocalSandbox:
    if remote:
        return RemoteSandbox(ledger, invoices=invoices, customers=customers, seed=seed)
    # Imported here: the sandbox's modules stay out of this process unless the sandbox runs in it.
    from bench.sandbox import LocalSandbox

    return LocalSandbox(ledger, invoices=invoices, customers=customers, seed=seed)


def _open_store(workdir: Path) -> Store:
    """The real state store (SQLite) in `workdir`."""
    # Imported here: a --no-store run measures the pull alone, without the engine's and the state
    # store's modules (SQLAlchemy among them: about 45 MB of peak RSS). The engine comes first, as
    # in `relance sync`: opening the store before it adds about 1 MB to the peak.
    from sync.pull import pull_into_store  # noqa: F401
    from sync.store import open_store

    return open_store(f"sqlite:///{workdir / 'state.sqlite'}")


def _pull_phase(
    connector: Connector, store: Store | None, ledger: str, *, full: bool, cursor: Cursor | None
) -> PullOutcome:
    if store is None:
        return pull(connector, None if full else cursor)
    from sync.pull import pull_into_store  # imported by _open_store already

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pulls", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="one company size, pulled in this process")
    run.add_argument("--ledger", choices=LEDGERS, required=True)
    run.add_argument("--invoices", type=int, default=10_000)
    run.add_argument("--seed", type=int, default=11)
    run.add_argument("--no-store", action="store_true", help="stream pages, do not store them")
    run.add_argument("--local", action="store_true", help="sandbox in this process")
    args = parser.parse_args(argv)
    result = run_size(
        args.ledger, args.invoices, seed=args.seed, use_store=not args.no_store, remote=not args.local
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
