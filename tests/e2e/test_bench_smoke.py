"""Smoke run of the bench harness at tiny sizes: counts and structure only, never time."""

from __future__ import annotations

import json
import math
import sys
from collections import Counter

import pytest

from bench import storms, structure, writes
from bench.__main__ import crash_part, plan_figures
from bench.process import peak_rss_mb, run_json_module
from bench.pulls import minimum_calls, run_size
from bench.sandbox import classify
from tests.support.paths import REPO


def test_classify_names_list_calls_per_entity() -> None:
    qbo = classify(
        "quickbooks", "POST", "/v3/company/1/query", {}, b"SELECT * FROM CreditMemo STARTPOSITION 1"
    )
    assert qbo == "list:credit_note"
    assert classify(
        "quickbooks", "GET", "/v3/company/1/query", {"query": ["select * from Invoice"]}, b""
    ) == ("list:invoice")
    assert classify("quickbooks", "GET", "/v3/company/1/cdc", {}, b"") == "cdc"
    assert classify("quickbooks", "POST", "/v3/company/1/batch", {}, b"") == "batch"
    assert classify("xero", "GET", "/api.xro/2.0/Contacts", {}, b"") == "list:customer"
    xero_write = classify(
        "xero", "PUT", "/api.xro/2.0/Invoices/3f2b7c1e-1111-2222-3333-444455556666/History", {}, b""
    )
    assert xero_write == "PUT /api.xro/2.0/Invoices/{id}/History"


def test_minimum_is_ceil_rows_over_1000_with_one_call_for_empty_entities() -> None:
    assert minimum_calls(Counter(invoice=2001, payment=1000, customer=1)) == {
        "customer": 1,
        "invoice": 3,
        "payment": 1,
        "credit_note": 1,
    }


@pytest.mark.parametrize("ledger", ["quickbooks", "xero"])
def test_pull_figures_of_a_small_company(ledger: str) -> None:
    result = run_size(ledger, 1200, remote=False, use_store=True)
    full = result["full"]
    assert full["records"]["invoice"] > 1000
    minimum = result["minimum"]["by_entity"]
    assert minimum["invoice"] == math.ceil(full["records"]["invoice"] / 1000)
    # every entity is listed at least the minimum number of times (the counts come from the sandbox)
    for entity, calls in minimum.items():
        assert full["calls"]["by_entity"].get(entity, 0) >= calls, (entity, full["calls"])
    assert result["incremental_nochange"]["calls"]["total"] >= 1
    assert result["modified"] == 12
    assert result["incremental_1pct"]["records"].get("invoice", 0) >= 12
    assert result["peak_rss_mb"] > 0


def test_pull_size_in_a_fresh_process_with_the_sandbox_in_another() -> None:
    result = run_json_module(
        "bench.pulls", ["run", "--ledger", "xero", "--invoices", "300", "--no-store"], timeout=120
    )
    assert result["mode"].startswith("pull only")
    assert result["full"]["records"]["invoice"] == 300
    assert result["full"]["calls"]["list"] == result["full"]["calls"]["total"]
    json.dumps(result)


@pytest.mark.parametrize("ledger", ["quickbooks", "xero"])
def test_writes_are_counted_with_their_statuses(ledger: str) -> None:
    result = writes.measure_writes(ledger, actions=31, company_invoices=1500, kinds=("note", "fee_invoice"))
    for kind in ("note", "fee_invoice"):
        figures = result[kind]
        assert figures["actions"] == 31
        assert figures["statuses"] == {"done": 31}, figures
        assert figures["calls"] >= 1
    assert writes.figures({ledger: result})[ledger]["note"] == result["note"]["calls_per_1000"]


def test_storms_report_completion_against_truth_or_a_clean_stop() -> None:
    results = storms.run_storms(
        invoices=600, ledgers=("xero",), only=("baseline", "token_expiry", "day_limit")
    )
    xero = results["xero"]
    assert xero["baseline"]["outcome"] == "completed" and xero["baseline"]["identical_to_truth"]
    assert xero["token_expiry"]["statuses"].get("401") == 1
    assert xero["token_expiry"]["ok"]
    assert xero["day_limit"]["outcome"] == "stopped cleanly"
    assert xero["day_limit"]["error_type"] == "DayLimitReached"
    assert "day_limit" in storms.figures(results)["xero"]


def test_plan_figure_parses_the_planner_bench() -> None:
    figures = plan_figures(300)
    assert figures.get("invoices") == 300, figures
    assert figures["daily_invoices_per_s"] > 0


def test_crash_part_says_so_when_the_crash_harness_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bench.crash", None)  # import bench.crash -> ImportError
    assert crash_part(5) == {"kills": 0, "note": "bench/crash.py not present"}


def test_peak_rss_is_positive() -> None:
    assert peak_rss_mb() > 0


def test_structure_figures_show_no_cycle_and_no_upward_import() -> None:
    """bench.structure measures the whole tree (bench included, which lint-imports does not cover)."""
    result = structure.figures(REPO)
    assert result["import_cycles"] == [] and result["upward_imports"] == []
    assert result["largest_classes"][0]["lines"] < 400
