"""`relance demo` twice in a fresh folder: the first run acts, the second reports 0 new actions
(issue #4 acceptance). Runs the installed console script, as a new user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RELANCE = Path(sys.executable).parent / "relance"


def _demo(cwd: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELANCE_")}
    result = subprocess.run(
        [str(RELANCE), "demo", "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_demo_acts_once_then_reports_nothing_new(tmp_path: Path) -> None:
    first = _demo(tmp_path)
    assert first["new_actions"] > 100
    assert {"reminder", "fee", "note", "task"} <= set(first["actions"])
    assert first["emails_in_outbox"] > 0
    assert set(first["fees_total"]) == {"EUR", "GBP"}
    assert [c["ledger"] for c in first["connections"]] == ["quickbooks", "xero"]
    assert all(not c["errors"] for c in first["connections"])
    emails = sorted((tmp_path / "relance-demo" / "outbox" / "emails").glob("*.eml"))
    assert len(emails) == first["emails_in_outbox"]

    second = _demo(tmp_path)
    assert second["new_actions"] == 0
    assert second["actions"] == {}
    assert second["emails_in_outbox"] == first["emails_in_outbox"]
