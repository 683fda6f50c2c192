"""`python -m bench --quick|--full [--json]`: the figures behind relance's speed and safety claims.

Figures, not timed tests: nothing here asserts on time. CI runs `--quick`; `--full` adds the 100k
and 1M-invoice companies, N=200 crash kills and whole-pull latency storms. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import storms, writes
from bench.process import REPO, BenchChildFailed, run_json_module
from bench.records import LEDGERS

# Sandbox pulls stop at 100k: the sandboxes filter and sort every row on every list page, so
# paging 1M rows through them is quadratic (hours). 1M runs as generated pages -> state store.
QUICK: dict[str, Any] = {
    "sizes": (10_000,),
    "generated_sizes": (10_000,),
    "plan_invoices": 100_000,
    "kills": 20,
    "write_actions": 1000,
}
FULL: dict[str, Any] = {
    "sizes": (10_000, 100_000),
    "generated_sizes": (10_000, 100_000, 1_000_000),
    "plan_invoices": 100_000,
    "kills": 200,
    "write_actions": 1000,
}
PARTS = ("pulls", "writes", "plan", "storms", "crash")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- parts


def pull_figures(sizes: tuple[int, ...], ledgers: tuple[str, ...], *, store: bool) -> dict[str, Any]:
    """One fresh process per (ledger, size): its peak RSS is that size's figure."""
    runs: dict[str, dict[str, Any]] = {ledger: {} for ledger in ledgers}
    for size in sizes:
        for ledger in ledgers:
            say(f"  pull {ledger} {size:,} invoices ...")
            args = ["run", "--ledger", ledger, "--invoices", str(size)]
            if not store:
                args.append("--no-store")
            try:
                runs[ledger][str(size)] = run_json_module("bench.pulls", args, timeout=6 * 3600)
            except (BenchChildFailed, subprocess.TimeoutExpired) as error:
                runs[ledger][str(size)] = {"error": str(error)}
                say(f"    failed: {error}")
                continue
            run = runs[ledger][str(size)]
            say(
                f"    full {run['full']['calls']['total']} calls (minimum {run['minimum']['total']}), "
                f"no-change {run['incremental_nochange']['calls']['total']}, "
                f"1% {run['incremental_1pct']['calls']['total']}; peak RSS {run['peak_rss_mb']} MB; "
                f"full pull {run['full']['seconds']} s"
            )
    api_calls: dict[str, Any] = {}
    peak: dict[str, float] = {}
    peak_by_ledger: dict[str, dict[str, float]] = {}
    for ledger, by_size in runs.items():
        good = {label: result for label, result in by_size.items() if "error" not in result}
        for label, result in good.items():
            peak[label] = max(peak.get(label, 0.0), result["peak_rss_mb"])
            peak_by_ledger.setdefault(label, {})[ledger] = result["peak_rss_mb"]
        if not good:
            first: dict[str, Any] = next(iter(by_size.values()), {})
            api_calls[ledger] = {"error": first.get("error", "not run")}
            continue
        largest = max(good, key=int)
        run = good[largest]
        api_calls[ledger] = {
            "full": run["full"]["calls"]["total"],
            "minimum": run["minimum"]["total"],
            "incremental_nochange": run["incremental_nochange"]["calls"]["total"],
            "incremental_1pct": run["incremental_1pct"]["calls"]["total"],
            "invoices": int(largest),
            "full_list_calls": run["full"]["calls"]["list"],
            "ratio_full_to_minimum": round(
                run["full"]["calls"]["total"] / max(1, run["minimum"]["total"]), 3
            ),
        }
    return {
        "api_calls": api_calls,
        "peak_rss_mb": peak,
        "peak_rss_mb_by_ledger": peak_by_ledger,
        "runs": runs,
    }


def generated_figures(sizes: tuple[int, ...]) -> dict[str, Any]:
    """Generated pages -> SQLite state store, one fresh process per size (no HTTP, no sandbox)."""
    runs: dict[str, Any] = {}
    for size in sizes:
        say(f"  generated pages -> store, {size:,} invoices ...")
        try:
            runs[str(size)] = run_json_module(
                "bench.memory", ["generated", "--invoices", str(size)], timeout=6 * 3600
            )
            say(f"    peak RSS {runs[str(size)]['peak_rss_mb']} MB, {runs[str(size)]['seconds']} s")
        except (BenchChildFailed, subprocess.TimeoutExpired) as error:
            runs[str(size)] = {"error": str(error)}
            say(f"    failed: {error}")
    return runs


_RATE = re.compile(r"^(daily|cold) run:\s+([\d,]+) invoices/s")


def plan_figures(invoices: int) -> dict[str, Any]:
    """bench/plan_throughput.py in a fresh process (one core: the planner is single-threaded)."""
    command = [sys.executable, "-m", "bench.plan_throughput", "--invoices", str(invoices)]
    completed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=3600, check=False)
    rates: dict[str, int] = {}
    for line in completed.stdout.splitlines():
        found = _RATE.match(line.strip())
        if found:
            rates[found.group(1)] = int(found.group(2).replace(",", ""))
    if completed.returncode != 0 or "daily" not in rates:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-10:]
        return {"error": "bench.plan_throughput failed:\n" + "\n".join(tail)}
    return {
        "invoices": invoices,
        "daily_invoices_per_s": rates["daily"],
        "cold_invoices_per_s": rates.get("cold"),
        "output": completed.stdout.strip().splitlines(),
    }


def crash_part(kills: int) -> dict[str, Any]:
    # Imported here: the crash part is optional, and says so when bench/crash.py is absent
    # (tests/e2e/test_bench_smoke.py hides the module to check that).
    try:
        from bench.crash import crash_figures
    except ImportError:
        return {"kills": 0, "note": "bench/crash.py not present"}
    result: dict[str, Any] = crash_figures(kills)
    return result


def _timed(name: str, fn: Callable[[], Any], timings: dict[str, float]) -> Any:
    say(f"[{name}]")
    started = time.perf_counter()
    try:
        return fn()
    except Exception as error:  # one failing part must not hide the others' figures
        say(f"  {name} failed: {type(error).__name__}: {error}")
        return {"error": f"{type(error).__name__}: {error}"}
    finally:
        timings[name] = round(time.perf_counter() - started, 1)


# ---------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    memory_gb = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            memory_gb = round(int(handle.readline().split()[1]) / 1024 / 1024, 1)
    except (OSError, ValueError, IndexError):
        pass
    return {
        "cpus": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "system": platform.system(),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    preset = FULL if args.full else QUICK
    sizes = tuple(args.sizes) if args.sizes else preset["sizes"]
    parts = tuple(args.only) if args.only else PARTS
    kills = args.kills if args.kills is not None else preset["kills"]
    ledgers = tuple(args.ledger) if args.ledger else LEDGERS
    timings: dict[str, float] = {}
    report: dict[str, Any] = {"mode": "full" if args.full else "quick", "machine": machine()}
    started = time.perf_counter()
    if "pulls" in parts:
        pulls = _timed("pulls", lambda: pull_figures(sizes, ledgers, store=not args.no_store), timings)
        if "error" in pulls:
            report["api_calls"] = pulls
        else:
            report["api_calls"] = pulls["api_calls"]
            report["peak_rss_mb"] = pulls["peak_rss_mb"]
            report["peak_rss_mb_by_ledger"] = pulls["peak_rss_mb_by_ledger"]
            report["pulls"] = pulls["runs"]
    if "pulls" in parts:
        generated = _timed("store", lambda: generated_figures(tuple(preset["generated_sizes"])), timings)
        report["peak_rss_mb_store_only"] = {
            size: run.get("peak_rss_mb") for size, run in generated.items() if isinstance(run, dict)
        }
        report["store_only"] = generated
    if "plan" in parts:
        plan = _timed("plan", lambda: plan_figures(preset["plan_invoices"]), timings)
        report["plan_invoices_per_s"] = plan.get("daily_invoices_per_s")
        report["plan"] = plan
    if "crash" in parts:
        report["crash"] = _timed("crash", lambda: crash_part(kills), timings)
    if "writes" in parts:
        detail = _timed(
            "writes",
            lambda: {
                ledger: writes.measure_writes(ledger, actions=preset["write_actions"]) for ledger in ledgers
            },
            timings,
        )
        report["writes_per_1000_actions"] = detail if "error" in detail else writes.figures(detail)
        report["writes"] = detail
    if "storms" in parts:
        detail = _timed("storms", lambda: storms.run_storms(quick=not args.full, ledgers=ledgers), timings)
        report["storms"] = detail if "error" in detail else storms.figures(detail)
        report["storms_detail"] = detail
    timings["total"] = round(time.perf_counter() - started, 1)
    report["wall_seconds"] = timings
    return report


def human(report: dict[str, Any]) -> str:
    lines = [f"relance bench ({report['mode']}) on {report['machine']}"]
    for ledger, calls in report.get("api_calls", {}).items():
        lines.append(f"  {ledger}: {calls}")
    if "plan_invoices_per_s" in report:
        lines.append(f"  plan: {report['plan_invoices_per_s']} invoices/s (daily run, one core)")
    if "peak_rss_mb" in report:
        lines.append(f"  peak RSS MB by size: {report['peak_rss_mb']}")
    if "writes_per_1000_actions" in report:
        lines.append(f"  writes per 1000 actions: {report['writes_per_1000_actions']}")
    for ledger, by_scenario in (report.get("storms") or {}).items():
        if isinstance(by_scenario, dict):
            for name, line in by_scenario.items():
                lines.append(f"  storm {ledger} {name}: {line}")
    if "crash" in report:
        lines.append(f"  crash: {report['crash']}")
    lines.append(f"  wall seconds: {report['wall_seconds']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="10k invoices, N=20 kills (default)")
    mode.add_argument("--full", action="store_true", help="10k, 100k and 1M invoices, N=200 kills")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    parser.add_argument("--ledger", nargs="+", choices=LEDGERS, help="only these ledgers")
    parser.add_argument("--sizes", nargs="+", type=int, help="company sizes (invoices) for the pulls")
    parser.add_argument("--kills", type=int, default=None, help="crash harness: number of SIGKILLs")
    parser.add_argument("--no-store", action="store_true", help="pull without the state store")
    args = parser.parse_args(argv)
    report = run(args)
    print(json.dumps(report, default=str) if args.json else human(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
