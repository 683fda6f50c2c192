"""Peak memory of relance itself: generated pages streamed into the state store, and pull + plan.

`python -m bench.memory generated --invoices N`: generated pages -> the SQLite state store (no HTTP,
no sandbox), the only way to reach 1M invoices. `python -m bench.memory plan --invoices N
[--record | --reference]`: the same pull, then today's plan of the connection. Each size runs in a
fresh process (bench.process): peak RSS is a high-water mark.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.process import REPO, current_rss_mb, peak_rss_mb, run_json_module
from bench.records import PAGE_SIZE, history_from
from connectors.base import (
    Capabilities,
    Cursor,
    Entity,
    Page,
    PullMode,
    Verification,
    WriteRequest,
    WriteResult,
)
from connectors.sandbox.generator import iter_company
from sync.pull import pull_into_store
from sync.store import Store, open_store

if TYPE_CHECKING:
    from policies.planning import Plan

NAME = "bench-generated"  # the connection the generated pages are stored under
POLICY = REPO / "examples" / "policies" / "fr-b2b.yaml"


class GeneratedPages:
    """A connector streaming a generated company as pages of 1,000 (no HTTP).

    Measures what relance itself holds while streaming pages into the state store, without a
    sandbox process holding the whole company in memory (the sandboxes page linearly since their
    list results are cached per query and state version, but keep every record as JSON-like
    objects: several GB at 1M invoices). Invoices, payments and credit notes are emitted as they
    are generated: nothing is accumulated beyond one page per entity."""

    name = NAME
    ledger = "generated"
    capabilities = Capabilities(
        fee_line_on_invoice=False,
        fee_invoice=False,
        ledger_email=False,
        ledger_email_idempotent=False,
        notes=False,
        credit_notes=False,
        write_batch_size=0,
    )
    mode = PullMode.FULL

    def __init__(self, invoices: int, customers: int, seed: int) -> None:
        self.invoices = invoices
        self.customers = customers
        self.seed = seed
        self.source_mb: float | None = None

    def pull(self, cursor: Cursor | None, *, history_from: date) -> GeneratedPages:
        return self

    def write(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        raise NotImplementedError("generated pages are read-only")

    def verify(self, request: WriteRequest, *, since: datetime) -> Verification:
        raise NotImplementedError("generated pages are read-only")

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Page]:
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
        buffers: dict[Entity, list[Any]] = {"invoice": [], "payment": [], "credit_note": []}
        for item in stream:
            buffers["invoice"].append(item.invoice)
            buffers["payment"].extend(item.payments)
            buffers["credit_note"].extend(item.credit_notes)
            for entity, rows in buffers.items():
                if len(rows) >= PAGE_SIZE:
                    yield Page(entity, tuple(rows))
                    rows.clear()
        for entity, rows in buffers.items():
            if rows:
                yield Page(entity, tuple(rows))

    @property
    def cursor(self) -> Cursor:
        return Cursor(ledger=self.ledger, data={}, taken_at=datetime.now(UTC))


def _state_store(directory: Path) -> Store:
    return open_store(f"sqlite:///{directory / 'state.sqlite'}")


def _pull_generated(source: GeneratedPages, store: Store) -> dict[str, int]:
    """Every generated page into `store` (a full pull): records stored per entity."""
    counts, _ = pull_into_store(source, store, NAME, history_from=history_from(), full=True)
    return dict(counts)


def run_generated(invoices: int, *, seed: int = 11) -> dict[str, Any]:
    """Generated pages -> the SQLite state store in this process: peak RSS at any size."""
    source = GeneratedPages(invoices, max(20, invoices // 10), seed)
    with tempfile.TemporaryDirectory(prefix="relance-bench-gen-") as tmp:
        store = _state_store(Path(tmp))
        started = time.perf_counter()
        try:
            counts = _pull_generated(source, store)
        finally:
            store.close()
        seconds = time.perf_counter() - started
        database_mb = round(sum(f.stat().st_size for f in Path(tmp).iterdir()) / 1e6, 1)
    return {
        "ledger": "generated (no HTTP)",
        "invoices": invoices,
        "mode": "generated pages -> SQLite state store",
        "records": counts,
        "seconds": round(seconds, 1),
        "database_mb": database_mb,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_generator_setup_mb": source.source_mb,
    }


def run_pull_and_plan(
    invoices: int, *, seed: int = 11, record: bool = False, reference: bool = False
) -> dict[str, Any]:
    """Generated pages -> SQLite state store (no HTTP), then today's plan of the connection, in this
    process: peak RSS after the pull and after the plan, plan time. The store is fresh, so this is
    the first run (every overdue invoice gets its step): the plan's own size is the upper bound.

    record=False: `plan_for` (the whole Plan held, as `run_connection` does today).
    record=True: the parts of `iter_plan_parts` recorded in the outbox one by one, nothing kept.
    reference=True: `plan_from_snapshot`, the whole-ledger single pass, for comparison."""
    # Imported here: `generated` measures the store alone; the planner, the policy model (pydantic)
    # and the rulebook add about 15 MB of modules that only this run needs.
    from sync.plans import iter_plan_parts, plan_for, plan_from_snapshot
    from sync.rulebook import load_policy

    name = NAME
    policy = load_policy(POLICY)
    source = GeneratedPages(invoices, max(20, invoices // 10), seed)
    with tempfile.TemporaryDirectory(prefix="relance-bench-plan-") as tmp:
        store = _state_store(Path(tmp))
        try:
            started = time.perf_counter()
            counts = _pull_generated(source, store)
            pull_seconds = time.perf_counter() - started
            after_pull = peak_rss_mb()
            today = datetime.now(UTC).date()
            started = time.perf_counter()
            if record:

                def keep(part: Plan) -> tuple[int, int]:
                    store.outbox.record_planned(name, part.actions)
                    store.outbox.record_superseded(name, part.superseded)
                    return len(part.actions), len(part.superseded)

                tallies = [keep(part) for part in iter_plan_parts(store, policy, name, today)]
                actions, superseded = sum(a for a, _ in tallies), sum(s for _, s in tallies)
                parts = len(tallies)
            else:
                plan = (plan_from_snapshot if reference else plan_for)(store, policy, name, today)
                actions, superseded, parts = len(plan.actions), len(plan.superseded), 1
                del plan
            plan_seconds = time.perf_counter() - started
        finally:
            store.close()
    return {
        "mode": "generated pages -> SQLite store, then "
        + ("plan parts recorded" if record else "plan_from_snapshot" if reference else "plan_for"),
        "invoices": invoices,
        "records": counts,
        "pull_seconds": round(pull_seconds, 1),
        "plan_seconds": round(plan_seconds, 1),
        "plan_invoices_per_s": round(invoices / plan_seconds) if plan_seconds else None,
        "actions": actions,
        "superseded": superseded,
        "parts": parts,
        "peak_rss_after_pull_mb": after_pull,
        "peak_rss_mb": peak_rss_mb(),
        "rss_after_generator_setup_mb": source.source_mb,
    }


def plan_memory_figures(
    sizes: list[int], *, record: bool = False, reference: bool = False, timeout: float = 3600
) -> dict[str, Any]:
    """`run_pull_and_plan` per size, each in a fresh process (peak RSS is a high-water mark)."""
    flags = [*(["--record"] if record else []), *(["--reference"] if reference else [])]
    results = {}
    for size in sizes:
        args = ["plan", "--invoices", str(size), *flags]
        results[str(size)] = run_json_module("bench.memory", args, timeout=timeout)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description="peak RSS of relance: pull -> store, pull + plan"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    generated = sub.add_parser("generated", help="pages -> store, one size in this process (one JSON line)")
    plan = sub.add_parser("plan", help="pull + plan, one size in this process (prints one JSON line)")
    sizes = sub.add_parser("sizes", help="pull + plan, several sizes, each in a fresh process")
    for child in (plan, sizes):
        child.add_argument("--record", action="store_true", help="record plan parts as they come")
        child.add_argument("--reference", action="store_true", help="plan_from_snapshot instead")
    for child in (generated, plan):
        child.add_argument("--invoices", type=int, default=10_000)
        child.add_argument("--seed", type=int, default=11)
    sizes.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args(argv)
    if args.command == "generated":
        print(json.dumps(run_generated(args.invoices, seed=args.seed)))
    elif args.command == "plan":
        result = run_pull_and_plan(
            args.invoices, seed=args.seed, record=args.record, reference=args.reference
        )
        print(json.dumps(result))
    else:
        print(json.dumps(plan_memory_figures(args.sizes, record=args.record, reference=args.reference)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
