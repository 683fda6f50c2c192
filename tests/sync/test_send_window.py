"""The daemon sends emails only inside the company's send window; other actions go on."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sync.engine import run_sync
from sync.run_report import RunOptions
from tests.support.sandboxes import build_workspace

TODAY = date(2026, 3, 2)


def _closed_window_policy(path: Path) -> None:
    """Rewrite the send window so that 'now' is outside it whatever the time of day."""
    text = path.read_text()
    hour = datetime.now(ZoneInfo("Europe/Paris")).hour
    start, end = ((hour + 2) % 24, (hour + 3) % 24) if hour < 20 else (1, 2)
    line = 'send_window: {start: "09:00", end: "18:00"}'
    assert line in text, "the example policy's send window line changed"
    path.write_text(text.replace(line, f'send_window: {{start: "{start:02d}:00", end: "{end:02d}:00"}}'))


def test_daemon_defers_emails_outside_the_window_and_sends_them_inside(tmp_path: Path) -> None:
    built = build_workspace(tmp_path / "ws", today=TODAY, ledgers=("quickbooks",), customers=10, invoices=60)
    try:
        _closed_window_policy(tmp_path / "ws" / "fr-b2b.yaml")
        ws = built.open()
        [run] = run_sync(ws, RunOptions(today=TODAY, respect_send_window=True))
        assert run.deferred > 0 and not run.errors
        assert not [e for e in built.sandboxes["test-quickbooks"].effects() if e.kind == "email"]
        assert not list((tmp_path / "ws" / "outbox" / "emails").glob("*.eml"))
        assert run.applied > 0  # tasks, fees and notes of non-email steps went on

        [later] = run_sync(ws, RunOptions(today=TODAY))  # an operator's one-off run sends them
        assert later.applied >= run.deferred
        assert list((tmp_path / "ws" / "outbox" / "emails").glob("*.eml"))
    finally:
        built.stop()
