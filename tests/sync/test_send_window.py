"""The daemon sends emails only inside the company's send window; other actions go on."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sync.engine import run_sync
from sync.run_report import RunOptions
from sync.workspace import Workspace
from tests.support.sandboxes import build_workspace

TODAY = date(2026, 3, 2)
PARIS = ZoneInfo("Europe/Paris")


class FrozenClock:
    """The run's one clock, stopped at a chosen moment (the fr-b2b window is 09:00-18:00 Paris)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


def test_daemon_defers_emails_outside_the_window_and_sends_them_inside(tmp_path: Path) -> None:
    built = build_workspace(tmp_path / "ws", today=TODAY, ledgers=("quickbooks",), customers=10, invoices=60)
    try:
        evening = Workspace.open(
            built.config_path, clock=FrozenClock(datetime(2026, 3, 2, 20, 0, tzinfo=PARIS))
        )
        [run] = run_sync(evening, RunOptions(today=TODAY, respect_send_window=True))
        assert run.deferred > 0 and not run.errors
        assert not [e for e in built.sandboxes["test-quickbooks"].effects() if e.kind == "email"]
        assert not list((tmp_path / "ws" / "outbox" / "emails").glob("*.eml"))
        assert run.applied > 0  # tasks, fees and notes of non-email steps went on

        morning = Workspace.open(
            built.config_path, clock=FrozenClock(datetime(2026, 3, 2, 10, 0, tzinfo=PARIS))
        )
        [inside] = run_sync(morning, RunOptions(today=TODAY, respect_send_window=True))
        assert inside.deferred == 0 and inside.applied >= run.deferred  # the daemon sends them inside
        assert list((tmp_path / "ws" / "outbox" / "emails").glob("*.eml"))
    finally:
        built.stop()


def test_an_operator_run_sends_outside_the_window(tmp_path: Path) -> None:
    built = build_workspace(tmp_path / "ws", today=TODAY, ledgers=("quickbooks",), customers=10, invoices=60)
    try:
        evening = Workspace.open(
            built.config_path, clock=FrozenClock(datetime(2026, 3, 2, 20, 0, tzinfo=PARIS))
        )
        [run] = run_sync(evening, RunOptions(today=TODAY, respect_send_window=True))
        [later] = run_sync(evening, RunOptions(today=TODAY))  # an operator's one-off run sends them
        assert later.applied >= run.deferred
        assert list((tmp_path / "ws" / "outbox" / "emails").glob("*.eml"))
    finally:
        built.stop()
