"""Two daemons on the same state and the same tenants: 0 double actions (#5 section 3, #4 lease).

Two `relance daemon --once` processes start together (small seeded offsets) against one state store
(SQLite file; PostgreSQL) and the same two sandbox tenants. The lease per connection lets one apply
while the other skips it (not an error); both exit 0. After each contested day a clean `relance
sync` finishes whatever a skip left, and the whole history is compared with an identical twin
workspace synced once a day by a single process: no effect in the ledgers, .eml file or task more
than the twin has, nothing missing.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from sync.engine import run_sync as sync_in_process
from sync.run_report import RunOptions
from tests.support.crash import compare, observe, relance_command, run_sync, twin_workspaces
from tests.support.postgres import PG_ENV, PG_SKIP, fresh_postgres_database

DAY = date(2026, 3, 2)
DAYS = 2
TIMEOUT = 300


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_state(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    with fresh_postgres_database(base) as url:
        yield url


def start_daemon(config: Path, day: date, health: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*relance_command(), "daemon", "--once", "--config", str(config), "--today", day.isoformat(),
         "--health-file", str(health)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=config.parent,
    )


def contested_day(config: Path, day: date, offset: float, root: Path) -> list[dict[str, Any]]:
    """Two daemons, the second started `offset` seconds after the first; their outcomes."""
    first = start_daemon(config, day, root / f"health-{day}-a.json")
    time.sleep(offset)
    second = start_daemon(config, day, root / f"health-{day}-b.json")
    outcomes = []
    for process in (first, second):
        stdout, stderr = process.communicate(timeout=TIMEOUT)
        outcomes.append({"code": process.returncode, "stdout": stdout, "stderr": stderr})
    return outcomes


def test_two_daemons_on_one_state_never_double_an_action(shared_state: str | None, tmp_path: Path) -> None:
    rng = random.Random(5)
    with twin_workspaces(
        tmp_path, seed=11, ledgers=("quickbooks", "xero"), customers=20, invoices=150, day=DAY,
        state_urls=(None, shared_state),
    ) as (reference, contested):
        ws = reference.open()
        skips = 0
        try:
            for index in range(DAYS):
                day = DAY + timedelta(days=index)
                reference.set_today(day)
                contested.set_today(day)
                assert all(run.ok for run in sync_in_process(ws, RunOptions(today=day)))
                outcomes = contested_day(contested.config_path, day, rng.uniform(0.0, 0.3), tmp_path)
                for outcome in outcomes:
                    assert outcome["code"] == 0, outcome["stderr"][-3000:]
                    assert "Traceback" not in outcome["stderr"], outcome["stderr"][-3000:]
                skips += sum(o["stderr"].count("is busy") for o in outcomes)
                finishing = run_sync(contested.config_path, day)
                assert finishing.returncode == 0, finishing.stderr[-3000:]
        finally:
            ws.store.close()
        result = compare(observe(reference), observe(contested))
    assert result["duplicates"] == 0, result["details"]
    assert result["repeated_idempotency_keys"] == 0, result["details"]["repeated_keys"]
    assert result["lost"] == 0, result["details"]
    assert result["open_actions"] == 0 and result["uncertain"] == 0
    # The processes really overlapped: at least once, one of them found a lease busy.
    assert skips >= 1
