"""SIGKILL in the middle of apply, rerun: no email, note or fee twice, nothing planned lost (#4, #5).

`relance sync` runs in a subprocess against sandboxes served by this process; it is killed at each
deterministic crash point (sync/crashpoints.py) and at seeded random points, then rerun until its
outbox is quiet. An identical twin workspace synced once without kills is the reference: the
sandboxes' own effects, the outbox (.eml per key), the task list and the action statuses are
compared (tests/support/crash.py). SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sync.engine import run_sync as sync_in_process
from sync.run_report import RunOptions
from tests.support.crash import compare, crash_figures, finish, observe, run_sync, twin_workspaces
from tests.support.postgres import PG_ENV, PG_SKIP, fresh_postgres_database

DAY = date(2026, 3, 2)
KILL_POINTS = ("after_claim:1", "after_effect:1", "after_effect:5", "mid_batch:2")

@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def victim_state(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The killed workspace's state: None = SQLite file in the workspace; else a fresh PG database."""
    if request.param == "sqlite":
        yield None
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    with fresh_postgres_database(base) as url:
        yield url


def reference_sync(reference: Any, day: date) -> None:
    ws = reference.open()
    try:
        runs = sync_in_process(ws, RunOptions(today=day))
        assert all(run.ok for run in runs), [run.errors for run in runs]
    finally:
        ws.store.close()


@pytest.fixture(scope="module")
def deterministic(victim_state: str | None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both ledgers; at each kill point in turn, per connection, then clean reruns; compared."""
    root = tmp_path_factory.mktemp("crash-deterministic")
    with twin_workspaces(
        root, seed=11, ledgers=("quickbooks", "xero"), customers=20, invoices=150, day=DAY,
        state_urls=(None, victim_state),
    ) as (reference, victim):
        reference_sync(reference, DAY)
        killed: dict[str, bool] = {}
        for connection in victim.sandboxes:
            for point in KILL_POINTS:
                run = run_sync(victim.config_path, DAY, crashpoint=point, connection=connection)
                assert run.killed or run.returncode == 0, run.stderr[-2000:]
                killed[f"{connection} {point}"] = run.killed
        reruns = finish(victim.config_path, DAY)
        result = compare(observe(reference), observe(victim))
        result["killed"] = killed
        result["rerun_codes"] = [run.returncode for run in reruns]
        return result


def test_every_kill_point_is_reached_on_both_ledgers(deterministic: dict[str, Any]) -> None:
    assert all(deterministic["killed"].values()), deterministic["killed"]
    assert deterministic["rerun_codes"] and set(deterministic["rerun_codes"]) == {0}


def test_no_effect_twice_after_deterministic_kills(deterministic: dict[str, Any]) -> None:
    details = deterministic["details"]
    assert deterministic["duplicates"] == 0, details
    assert deterministic["repeated_idempotency_keys"] == 0, details["repeated_keys"]
    assert deterministic["extra_actions_done"] == 0


def test_outbox_quiet_and_nothing_uncertain_after_reruns(deterministic: dict[str, Any]) -> None:
    # file transport and idempotent ledger writes can all be verified: nothing needs an operator
    assert deterministic["open_actions"] == 0
    assert deterministic["uncertain"] == 0, deterministic["uncertain_actions"]


def test_nothing_planned_lost_after_deterministic_kills(deterministic: dict[str, Any]) -> None:
    details = deterministic["details"]
    assert deterministic["lost"] == 0, {k: details[k] for k in ("lost_effects", "lost_actions")}


def test_interrupted_quickbooks_invoice_send_is_not_sent_again(tmp_path: Path) -> None:
    """Seed 7 on DAY sends two invoices through QBO's own email; the kill lands after the first
    result of that batch is recorded, so the second send is in flight and must be verified."""
    with twin_workspaces(
        tmp_path, seed=7, ledgers=("quickbooks",), customers=12, invoices=80, day=DAY
    ) as (reference, victim):
        reference_sync(reference, DAY)
        sends = [e for e in reference.sandboxes["test-quickbooks"].effects() if e.kind == "email"]
        assert len(sends) >= 2, "scenario drift: this day no longer sends invoices through QBO"
        run = run_sync(victim.config_path, DAY, crashpoint="mid_batch:1")
        assert run.killed, run.stderr[-2000:]
        finish(victim.config_path, DAY)
        emails = [e for e in victim.sandboxes["test-quickbooks"].effects() if e.kind == "email"]
        per_invoice = {e.invoice_id: sum(1 for x in emails if x.invoice_id == e.invoice_id) for e in emails}
        assert max(per_invoice.values()) == 1, per_invoice


def test_interrupted_xero_fee_invoice_batch_is_not_created_again(tmp_path: Path) -> None:
    """Seed 11 on DAY posts 7 fee invoices to Xero in one batch; the kill lands after the second
    result of the ledger batch is recorded, so fee invoices of the batch are left in flight."""
    with twin_workspaces(
        tmp_path, seed=11, ledgers=("xero",), customers=20, invoices=150, day=DAY
    ) as (reference, victim):
        reference_sync(reference, DAY)
        fees = [e for e in reference.sandboxes["test-xero"].effects() if e.kind == "fee_invoice"]
        assert len(fees) >= 3, "scenario drift: this day no longer posts a batch of Xero fee invoices"
        run = run_sync(victim.config_path, DAY, crashpoint="mid_batch:2")
        assert run.killed, run.stderr[-2000:]
        finish(victim.config_path, DAY)
        result = compare(observe(reference), observe(victim))
        assert result["duplicates"] == 0, result["details"]["duplicate_effects"]


def test_random_kills_small_company(tmp_path: Path) -> None:
    """CI-sized random campaign (seeded delays and crash points) on SQLite."""
    figures = crash_figures(
        6, seed=3, customers=12, invoices=80, kills_per_day=6, root=tmp_path, log=lambda _: None
    )
    assert figures["kills"] == 6, figures
    assert not figures["errors"], figures["errors"]
    assert figures["open_actions"] == 0
    assert figures["duplicates"] == 0, figures["details"]
    assert figures["lost"] == 0, figures["details"]
