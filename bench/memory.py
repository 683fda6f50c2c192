"""Peak memory and fresh-process runs.

Peak RSS is the high-water mark of the whole process (resource.getrusage ru_maxrss): to get one
figure per ledger size, each size runs in a fresh `python -m bench.pulls run ...` process, and the
sandbox serving that size runs in yet another process, so the figure measures relance alone.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB (Linux reports KB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def current_rss_mb() -> float | None:
    """Resident set size now (Linux /proc only), to show memory flat between pages."""
    try:
        with open(f"/proc/{os.getpid()}/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return round(pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024), 1)


class BenchChildFailed(RuntimeError):
    """A bench subprocess exited non-zero or printed no JSON."""


def run_json_module(module: str, args: list[str], *, timeout: float) -> dict[str, Any]:
    """Run `python -m module args` in a fresh process; its last stdout line is one JSON object."""
    command = [sys.executable, "-m", module, *args]
    completed = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-15:]
        raise BenchChildFailed(f"{' '.join(command[1:])} exited {completed.returncode}:\n" + "\n".join(tail))
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# ---------------------------------------------------------------- pull + plan in one fresh process

POLICY = REPO / "examples" / "policies" / "fr-b2b.yaml"


def run_pull_and_plan(
    invoices: int, *, seed: int = 11, record: bool = False, reference: bool = False
) -> dict[str, Any]:
    """Generated pages -> SQLite state store (no HTTP), then today's plan of the connection, in this
    process: peak RSS after the pull and after the plan, plan time. The store is fresh, so this is
    the first run (every overdue invoice gets its step): the plan's own size is the upper bound.

    record=False: `plan_for` (the whole Plan held, as `run_connection` does today).
    record=True: the parts of `iter_plan_parts` recorded in the outbox one by one, nothing kept.
    reference=True: `plan_from_snapshot`, the whole-ledger single pass, for comparison."""
    import tempfile
    import time
    from datetime import UTC, datetime

    from bench.pulls import GeneratedPages, _open_store, history_from
    from sync.engine import iter_plan_parts, plan_for, plan_from_snapshot, pull_into_store
    from sync.rulebook import load_policy

    name = "bench-generated"
    policy = load_policy(POLICY)
    source = GeneratedPages(invoices, max(20, invoices // 10), seed)
    with tempfile.TemporaryDirectory(prefix="relance-bench-plan-") as tmp:
        store = _open_store(Path(tmp))
        if store is None:
            raise RuntimeError("sync/store is not available")
        try:
            started = time.perf_counter()
            counts, _ = pull_into_store(source, store, name, history_from=history_from(), full=True)  # type: ignore[arg-type]
            pull_seconds = time.perf_counter() - started
            after_pull = peak_rss_mb()
            today = datetime.now(UTC).date()
            started = time.perf_counter()
            if record:

                def keep(part: Any) -> tuple[int, int]:
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
        "records": dict(counts),
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
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description="peak RSS of pull + plan, one size per fresh process"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    plan = sub.add_parser("plan", help="one size in this process (prints one JSON line)")
    sizes = sub.add_parser("sizes", help="several sizes, each in a fresh process")
    for child in (plan, sizes):
        child.add_argument("--record", action="store_true", help="record plan parts as they come")
        child.add_argument("--reference", action="store_true", help="plan_from_snapshot instead")
    plan.add_argument("--invoices", type=int, default=10_000)
    plan.add_argument("--seed", type=int, default=11)
    sizes.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args(argv)
    if args.command == "plan":
        result = run_pull_and_plan(
            args.invoices, seed=args.seed, record=args.record, reference=args.reference
        )
        print(json.dumps(result))
    else:
        print(json.dumps(plan_memory_figures(args.sizes, record=args.record, reference=args.reference)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
