"""`relance daemon`: one cycle, several cycles, SIGTERM in the middle of a run (a real process),
schedules (interval, cron, jitter) and bad schedules."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from connectors.quickbooks.connector import QuickBooksConnector
from connectors.xero.connector import XeroConnector
from policies.model.actions import ActionStatus
from sync.cli import cli, main
from sync.daemon import Schedule, StopFlag, run_daemon
from sync.errors import ConfigError
from sync.workspace import Workspace
from tests.support.sandboxes import SandboxWorkspace, build_workspace

TODAY = date(2026, 3, 2)
RELANCE = Path(sys.executable).with_name("relance")


@pytest.fixture
def sw(tmp_path: Path) -> Iterator[SandboxWorkspace]:
    built = build_workspace(tmp_path / "ws", today=TODAY, customers=10, invoices=60)
    try:
        yield built
    finally:
        built.stop()


def json_lines(text: str) -> list[dict[str, Any]]:
    lines = [line for line in text.splitlines() if line.strip()]
    return [json.loads(line) for line in lines]  # every line must be JSON


def test_once_runs_one_cycle_and_writes_health(sw: SandboxWorkspace) -> None:
    health = sw.root / "health" / "daemon.json"
    handler_before = signal.getsignal(signal.SIGTERM)
    args = ["daemon", "--once", "--today", TODAY.isoformat(), "--health-file", str(health)]
    result = CliRunner().invoke(cli, [*args, "--config", str(sw.config_path)])
    assert result.exit_code == 0, (result.output, result.exception)
    state = json.loads(health.read_text())
    assert state["status"] == "ok" and state["cycles"] == 1 and state["next_run"] is None
    assert state["pid"] == os.getpid()
    assert set(state["connections"]) == {"test-quickbooks", "test-xero"}
    store = sw.open().store
    for name, connection in state["connections"].items():
        assert connection["ok"] and connection["errors"] == []
        assert connection["applied"] == len(store.outbox.actions(name, status=ActionStatus.DONE)) > 0
    logs = json_lines(result.stderr)
    messages = [entry["msg"] for entry in logs]
    assert messages[0] == "daemon started" and messages[-1] == "daemon stopped"
    synced = [entry for entry in logs if entry["msg"] == "connection synced"]
    assert {entry["connection"] for entry in synced} == {"test-quickbooks", "test-xero"}
    assert all(entry["level"] == "info" and "ts" in entry for entry in synced)
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the CLI put the handler back


def test_default_health_file_next_to_config(sw: SandboxWorkspace) -> None:
    assert run_daemon(sw.config_path, once=True, today=TODAY) == 0
    state = json.loads((sw.root / "relance-health.json").read_text())
    assert state["status"] == "ok"


def test_loop_runs_several_cycles(sw: SandboxWorkspace, caplog: pytest.LogCaptureFixture) -> None:
    health = sw.root / "health.json"
    schedule = Schedule(interval=timedelta(milliseconds=20))
    with caplog.at_level(logging.INFO, logger="relance.daemon"):
        code = run_daemon(sw.config_path, schedule=schedule, health_file=health, today=TODAY, cycles=3)
    assert code == 0
    state = json.loads(health.read_text())
    assert state["cycles"] == 3 and state["next_run"] is not None
    synced = [r for r in caplog.records if r.getMessage() == "connection synced"]
    assert len(synced) == 3 * 2
    applied = [r.data["applied"] for r in synced]  # type: ignore[attr-defined]
    assert sum(applied[:2]) > 0 and applied[2:] == [0, 0, 0, 0]  # later cycles: nothing new to do


def test_failing_connection_does_not_stop_the_loop(
    sw: SandboxWorkspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Workspace.open_connector

    def fast(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        connector = original(self, *args, **kwargs)
        assert isinstance(connector, QuickBooksConnector | XeroConnector)  # their backoff test hook
        connector._retry_base_wait = 0.001
        return connector

    monkeypatch.setattr(Workspace, "open_connector", fast)
    sw.sandboxes["test-xero"].stop()  # the port closes: the ledger is unreachable
    health = sw.root / "health.json"
    code = run_daemon(
        sw.config_path,
        schedule=Schedule(interval=timedelta(milliseconds=10)),
        health_file=health,
        today=TODAY,
        cycles=2,
    )
    assert code == 3  # partial: one connection failed, the other worked
    state = json.loads(health.read_text())
    assert state["status"] == "partial" and state["cycles"] == 2
    assert state["connections"]["test-quickbooks"]["ok"]
    errors = state["connections"]["test-xero"]["errors"]
    assert errors and "[test-xero]" in errors[0] and "cannot reach the ledger" in errors[0]


def test_stop_flag_ends_the_loop_between_cycles(sw: SandboxWorkspace) -> None:
    stop = StopFlag()
    calls = 0

    def clock() -> datetime:
        nonlocal calls
        calls += 1
        if calls > 3:  # during the first cycle's bookkeeping: as if SIGTERM came in
            stop.set()
        return datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    code = run_daemon(
        sw.config_path,
        schedule=Schedule(interval=timedelta(hours=1)),  # would sleep an hour without the flag
        health_file=sw.root / "health.json",
        today=TODAY,
        stop=stop,
        clock=clock,
    )
    assert code == 0
    assert json.loads((sw.root / "health.json").read_text())["cycles"] == 1


@pytest.mark.skipif(not RELANCE.exists(), reason=f"console script not installed at {RELANCE}")
def test_sigterm_during_a_run(sw: SandboxWorkspace) -> None:
    health = sw.root / "health.json"
    env = {k: v for k, v in os.environ.items() if k != "RELANCE_CONFIG"}
    args = ["daemon", "--interval", "1", "--today", TODAY.isoformat(), "--health-file", str(health)]
    process = subprocess.Popen(
        [str(RELANCE), *args, "--config", str(sw.config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        seen = ""
        # The first connection is done: the signal lands while the second one is being synced.
        while (line := process.stderr.readline()) and json.loads(line)["msg"] != "connection synced":
            seen += line
        assert line, seen
        seen += line
        process.send_signal(signal.SIGTERM)
        stdout, rest = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, rest
    logs = json_lines(seen + rest)
    assert "Traceback" not in rest and stdout == ""
    assert logs[-1]["msg"] == "daemon stopped" and logs[-1]["cycles"] == 1
    state = json.loads(health.read_text())
    assert state["cycles"] == 1 and state["next_run"] is None
    store = sw.open().store
    assert store.outbox.actions(status=ActionStatus.IN_FLIGHT) == []
    # The next run takes over from where this one stopped.
    assert run_daemon(sw.config_path, once=True, today=TODAY, health_file=health) == 0
    assert store.outbox.actions(status=ActionStatus.IN_FLIGHT) == [] and store.outbox.actions(
        status=ActionStatus.DONE
    )


# ---------------------------------------------------------------- schedules


def test_interval_and_jitter() -> None:
    rng = random.Random(3)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    plain = Schedule(interval=timedelta(minutes=30))
    assert plain.next_run(start, rng) == start + timedelta(minutes=30)
    jittered = Schedule(interval=timedelta(minutes=30), jitter_seconds=120)
    offsets = {
        (jittered.next_run(start, rng) - start - timedelta(minutes=30)).total_seconds() for _ in range(50)
    }
    assert all(0 <= offset <= 120 for offset in offsets) and len(offsets) > 1


def test_cron_schedule() -> None:
    friday_evening = datetime(2026, 3, 6, 19, 0, tzinfo=UTC)
    weekdays_at_8 = Schedule(cron="0 8 * * 1-5")
    assert weekdays_at_8.next_run(friday_evening, random.Random(0)) == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cron": "61 * * * *"}, "not a valid cron expression"),
        ({"cron": "every monday"}, "not a valid cron expression"),
        ({}, "exactly one of"),
        ({"interval": timedelta(minutes=5), "cron": "0 8 * * *"}, "exactly one of"),
    ],
)
def test_bad_schedules(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Schedule(**kwargs)


def test_invalid_cron_is_a_one_line_error(
    sw: SandboxWorkspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RELANCE_CONFIG", raising=False)
    for config_cron, cli_args in ((None, ["--cron", "61 * * * *"]), ("'61 * * * *'", [])):
        config = sw.config_path
        if config_cron:
            config = sw.root / "cron.yaml"
            config.write_text(
                sw.config_path.read_text() + f"daemon:\n  interval_minutes: null\n  cron: {config_cron}\n"
            )
        with pytest.raises(SystemExit) as exit_:
            main(["daemon", "--once", *cli_args, "--config", str(config)])
        assert exit_.value.code == 1
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "'61 * * * *' is not a valid cron expression" in errors[0], err
        assert "Traceback" not in err
