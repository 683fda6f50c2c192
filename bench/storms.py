"""Fault storms against the sandboxes: does a full pull complete identical to the truth, or stop
cleanly with a clear message?

Scenarios (each on a fresh connector, fresh token store and fresh limiter):
- baseline: no fault (separates storm effects from pull-vs-truth differences);
- 429_50pct: half the API calls answer 429 with a short Retry-After;
- 5xx_bursts: bursts of 503 at the start and again mid-run;
- latency_2s: every call takes 2 s longer (quick: only for the first pages);
- token_expiry: every access token is revoked after the first page (refresh mid-run);
- day_limit (Xero): the day budget runs out after a few calls -> the tenant stops until reset;
- xml_throttle (QBO): 429s whose body is the XML Fault code 3001.
A stopped pull never yields its cursor, so the next run pulls again from the last stored cursor:
nothing is lost.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.pulls import consume, open_connector
from bench.records import history_from
from bench.sandbox import LocalSandbox
from policies.model.errors import RelanceError

RETRY_AFTER = 0.05  # seconds: the storm runs fast; the connector still honours the header


@dataclass(frozen=True)
class Scenario:
    name: str
    ledgers: tuple[str, ...]
    before: dict[str, Any]  # fault fields set before the pull
    after_page: Callable[[int], dict[str, Any] | None]  # page number -> fault fields to set then
    expect: str  # "complete" or "stop"


def scenarios(*, quick: bool) -> list[Scenario]:
    latency_pages = 2 if quick else 10**9

    def latency_off(page: int) -> dict[str, Any] | None:
        return {"latency": 0.0} if page == latency_pages else None

    return [
        Scenario("baseline", ("quickbooks", "xero"), {}, lambda page: None, "complete"),
        Scenario(
            "429_50pct",
            ("quickbooks", "xero"),
            {"rate_429": 0.5, "retry_after": RETRY_AFTER},
            lambda page: None,
            "complete",
        ),
        Scenario(
            "5xx_bursts",
            ("quickbooks", "xero"),
            {"burst_5xx": 3},
            lambda page: {"burst_5xx": 3} if page == 2 else None,
            "complete",
        ),
        Scenario("latency_2s", ("quickbooks", "xero"), {"latency": 2.0}, latency_off, "complete"),
        Scenario(
            "token_expiry",
            ("quickbooks", "xero"),
            {},
            lambda page: {"expire_tokens": True} if page == 1 else None,
            "complete",
        ),
        Scenario("day_limit", ("xero",), {"day_limit_remaining": 3}, lambda page: None, "stop"),
        Scenario(
            "xml_throttle",
            ("quickbooks",),
            {"qbo_xml_throttle": True, "rate_429": 0.5, "retry_after": RETRY_AFTER},
            lambda page: None,
            "complete",
        ),
    ]


def compare(pulled: dict[str, dict[str, Any]], truth: dict[str, dict[str, Any]]) -> dict[str, int]:
    """Differences per entity: missing, extra, changed records."""
    diff: dict[str, int] = {}
    for entity, expected in truth.items():
        got = pulled.get(entity, {})
        missing = sum(1 for key in expected if key not in got)
        extra = sum(1 for key in got if key not in expected)
        changed = sum(1 for key, value in expected.items() if key in got and got[key] != value)
        if missing or extra or changed:
            diff[entity] = missing + extra + changed
            diff[f"{entity}_missing"] = missing
            diff[f"{entity}_extra"] = extra
            diff[f"{entity}_changed"] = changed
    return diff


def run_scenario(
    sandbox: LocalSandbox, scenario: Scenario, truth: dict[str, dict[str, Any]], workdir: Path
) -> dict[str, Any]:
    connector = open_connector(sandbox.driver.info(), workdir / scenario.name)  # fresh tokens
    sandbox.reset_faults()
    sandbox.reset_counts()
    sandbox.set_faults(**scenario.before)
    pulled: dict[str, dict[str, Any]] = {}

    def on_page(page: int, _: Any) -> None:
        fields = scenario.after_page(page)
        if fields:
            sandbox.set_faults(**fields)

    started = time.perf_counter()
    report: dict[str, Any] = {"expected": scenario.expect}
    try:
        stream = connector.pull(None, history_from=history_from())
        consume(stream, on_page=on_page, keep=pulled)
        _ = stream.cursor
        diff = compare(pulled, truth)
        report.update(outcome="completed", identical_to_truth=not diff, differences=diff)
    except RelanceError as error:
        hint = getattr(error, "hint", None)
        message = str(error)
        if hint and hint not in message:
            message += f" (hint: {hint})"
        report.update(outcome="stopped cleanly", message=message, error_type=type(error).__name__)
    except Exception as error:  # what a storm must never produce: a raw exception
        report.update(outcome="CRASHED", message=f"{type(error).__name__}: {error}")
    finally:
        sandbox.reset_faults()
        connector.close()
    counts = sandbox.counts()
    report["calls"] = sum(counts["calls"].values())
    report["statuses"] = counts["statuses"]
    report["seconds"] = round(time.perf_counter() - started, 2)
    report["ok"] = (report["outcome"] == "completed" and report.get("identical_to_truth", False)) or (
        scenario.expect == "stop" and report["outcome"] == "stopped cleanly"
    )
    return report


def run_storms(
    *,
    quick: bool = True,
    invoices: int = 3000,
    ledgers: tuple[str, ...] = ("quickbooks", "xero"),
    only: tuple[str, ...] = (),
) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for ledger in ledgers:
        sandbox = LocalSandbox(ledger, invoices=invoices, customers=max(20, invoices // 10), seed=3)
        results[ledger] = {}
        try:
            truth = sandbox.fingerprint()
            with tempfile.TemporaryDirectory(prefix="relance-bench-storms-") as tmp:
                for scenario in scenarios(quick=quick):
                    if ledger not in scenario.ledgers or (only and scenario.name not in only):
                        continue
                    results[ledger][scenario.name] = run_scenario(sandbox, scenario, truth, Path(tmp))
        finally:
            sandbox.close()
    return results


def figures(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """The JSON summary: one line per ledger and scenario."""
    summary: dict[str, dict[str, str]] = {}
    for ledger, by_scenario in results.items():
        summary[ledger] = {}
        for name, report in by_scenario.items():
            if report["outcome"] == "completed":
                line = (
                    "completed, identical to truth"
                    if report.get("identical_to_truth")
                    else (f"completed, DIFFERS from truth: {report.get('differences')}")
                )
            else:
                line = f"{report['outcome']}: {report.get('message', '')}"
            summary[ledger][name] = line
    return summary
