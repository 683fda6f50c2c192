"""Every bad input a new user would try gets a one-line error on stderr and a non-zero exit, never a
traceback. Exit codes: 0 ok, 1 error, 2 usage, 3 partial (some connections failed).

Most cases drive `sync.cli.main` in-process (the console script's own error handling: an exception
it does not handle would fail the test); a few run the installed `relance` script as a subprocess
to prove nothing reaches the user's terminal but the message."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from connectors.tokens import Tokens
from sync.cli import main
from sync.workspace import Workspace
from tests.support.sandboxes import SandboxWorkspace, build_workspace

TODAY = date(2026, 3, 2)
RELANCE = Path(sys.executable).with_name("relance")


@pytest.fixture(scope="module")
def sw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxWorkspace]:
    from sync.engine import run_sync
    from sync.run_report import RunOptions

    built = build_workspace(tmp_path_factory.mktemp("bad") / "ws", today=TODAY, customers=10, invoices=60)
    try:
        # The store knows both ledgers' invoices and customers (nothing recorded, nothing applied).
        assert all(run.ok for run in run_sync(built.open(), RunOptions(today=TODAY, dry_run=True)))
        yield built
    finally:
        built.stop()


@pytest.fixture(autouse=True)
def _no_config_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELANCE_CONFIG", raising=False)


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same retries against a closed port, with millisecond backoff instead of seconds."""
    original = Workspace.open_connector

    def open_connector(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        connector = original(self, *args, **kwargs)
        connector._retry_base_wait = 0.001  # type: ignore[attr-defined]
        return connector

    monkeypatch.setattr(Workspace, "open_connector", open_connector)


def relance(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the console entry point in-process: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err


def error_lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip().lower().startswith("error")]


def one_error(err: str) -> str:
    lines = error_lines(err)
    assert len(lines) == 1, err
    return lines[0]


def variant(sw: SandboxWorkspace, name: str, text: str) -> str:
    """A modified relance.yaml next to the real one (same tokens, policies and state)."""
    path = sw.root / name
    path.write_text(text)
    return str(path)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unreachable(sw: SandboxWorkspace, connection: str) -> str:
    base = sw.sandboxes[connection].base_url
    moved = base.replace(urlsplit(base).netloc, f"127.0.0.1:{closed_port()}")
    return variant(sw, f"unreachable-{connection}.yaml", sw.config_path.read_text().replace(base, moved))


# ---------------------------------------------------------------- configuration


def test_missing_config_in_cwd(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for command in (["sync"], ["plan"], ["tasks"], ["report", "aging"], ["history", "F-1"], ["daemon"]):
        code, _, err = relance(capsys, *command)
        assert code == 1, command
        line = one_error(err)
        assert "relance.yaml: no such configuration file" in line and "relance init" in line


def test_config_path_that_does_not_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = relance(capsys, "sync", "--config", str(tmp_path / "nope" / "relance.yaml"))
    assert code == 1
    assert f"{tmp_path / 'nope' / 'relance.yaml'}: no such configuration file" in one_error(err)


def test_yaml_typo_names_the_line(sw: SandboxWorkspace, capsys: pytest.CaptureFixture[str]) -> None:
    text = sw.config_path.read_text().replace("outbox_dir: outbox\n", "outbox_dir outbox\nemail: [\n")
    code, _, err = relance(capsys, "sync", "--config", variant(sw, "typo.yaml", text))
    assert code == 1
    line = one_error(err)
    assert "typo.yaml:4" in line and "YAML syntax error" in line


def test_misspelt_key_suggests_the_right_one(
    sw: SandboxWorkspace, capsys: pytest.CaptureFixture[str]
) -> None:
    text = sw.config_path.read_text().replace("outbox_dir:", "outbox_dri:")
    code, _, err = relance(capsys, "tasks", "--config", variant(sw, "misspelt.yaml", text))
    assert code == 1
    line = one_error(err)
    assert "misspelt.yaml:3" in line and "did you mean 'outbox_dir'" in line


def test_wrong_policy_path(sw: SandboxWorkspace, capsys: pytest.CaptureFixture[str]) -> None:
    text = sw.config_path.read_text().replace("    policy: fr-b2b.yaml\n", "    policy: polcy.yaml\n")
    config = variant(sw, "wrong-policy.yaml", text)
    code, _, err = relance(capsys, "sync", "--config", config, "--connection", "test-quickbooks")
    assert code == 1
    line = one_error(err)
    assert f"{sw.root / 'polcy.yaml'}: file not found" in line and "policy:" in line
    # Both connections: one fails on its policy, the other syncs -> partial.
    code, out, err = relance(capsys, "sync", "--config", config, "--today", TODAY.isoformat(), "--dry-run")
    assert code == 3
    assert "polcy.yaml" in one_error(err) and "test-xero (xero)" in out
    # Read commands that need the policy fail the same way.
    code, _, err = relance(capsys, "report", "aging", "--config", config, "--connection", "test-quickbooks")
    assert code == 1 and "polcy.yaml: file not found" in one_error(err)


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("version: 1\ncompany: [\n", "YAML syntax error"),
        (None, "company.currency"),  # the shipped example with a wrong currency code
    ],
)
def test_broken_policy_file(
    sw: SandboxWorkspace, capsys: pytest.CaptureFixture[str], broken: str | None, expected: str
) -> None:
    policy = sw.root / "broken-policy.yaml"
    if broken is None:
        broken = (sw.root / "fr-b2b.yaml").read_text().replace("currency: EUR", "currency: EURO", 1)
    policy.write_text(broken)
    text = sw.config_path.read_text().replace("    policy: fr-b2b.yaml\n", "    policy: broken-policy.yaml\n")
    config = variant(sw, "broken-policy-config.yaml", text)
    code, _, err = relance(capsys, "plan", "--config", config, "--connection", "test-quickbooks")
    assert code == 1
    line = one_error(err)
    assert "broken-policy.yaml:" in line and expected in line
    line_number = line.split("broken-policy.yaml:")[1].split(":")[0]
    assert line_number.isdigit() and int(line_number) >= 2


@pytest.mark.parametrize(
    "command",
    [
        ["sync"],
        ["apply"],
        ["plan", "--no-pull"],
        ["reconcile", "--no-pull"],
        ["report", "aging"],
        ["tasks"],
        ["history", "INV-000001"],
        ["dispute", "INV-000001"],
        ["pause", "1", "--until", "2026-05-01"],
    ],
)
def test_unknown_connection(
    sw: SandboxWorkspace, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    code, _, err = relance(capsys, *command, "--connection", "nope", "--config", str(sw.config_path))
    assert code == 1
    line = one_error(err)
    assert "unknown connection 'nope'" in line and "test-quickbooks, test-xero" in line


# ---------------------------------------------------------------- ledgers


def test_unreachable_ledger_all_failed(
    sw: SandboxWorkspace, capsys: pytest.CaptureFixture[str], fast_retries: None
) -> None:
    config = unreachable(sw, "test-xero")
    code, _, err = relance(capsys, "sync", "--config", config, "--connection", "test-xero", "--dry-run")
    assert code == 1
    line = one_error(err)
    assert "[test-xero]" in line and "cannot reach the ledger" in line and "base_url" in line


def test_unreachable_ledger_partial(
    sw: SandboxWorkspace, capsys: pytest.CaptureFixture[str], fast_retries: None
) -> None:
    config = unreachable(sw, "test-quickbooks")
    code, out, err = relance(capsys, "sync", "--config", config, "--today", TODAY.isoformat(), "--dry-run")
    assert code == 3
    line = one_error(err)
    assert "[test-quickbooks]" in line and "cannot reach the ledger" in line
    assert "test-xero (xero): pulled" in out
    code, out, _ = relance(
        capsys, "sync", "--config", config, "--dry-run", "--json", "--today", TODAY.isoformat()
    )
    assert code == 3

    runs = {run["name"]: run for run in json.loads(out)["connections"]}
    assert runs["test-quickbooks"]["errors"] and runs["test-xero"]["errors"] == []


def test_revoked_refresh_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    built = build_workspace(tmp_path / "ws", today=TODAY, ledgers=("quickbooks",), customers=10, invoices=60)
    try:
        ws = built.open()
        stored = ws.token_store.get("test-quickbooks")
        assert stored is not None
        expired = datetime.now(UTC) - timedelta(hours=1)
        ws.token_store.save(
            "test-quickbooks", Tokens("at-expired", "rt-revoked", expired, account_id=stored.account_id)
        )
        code, _, err = relance(
            capsys, "sync", "--config", str(built.config_path), "--today", TODAY.isoformat()
        )
        assert code == 1
        line = one_error(err)
        assert "test-quickbooks" in line and "relance connect quickbooks --name test-quickbooks" in line
    finally:
        built.stop()


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "command",
    [
        ["sync", "--today", "2026-13-45"],
        ["report", "aging", "--today", "yesterday"],
        ["reconcile", "--today", "2026-02-30"],
        ["plan", "--today", "2026-13-45"],
        ["dispute", "INV-000001", "--until", "soon"],
        ["pause", "1", "--until", "next week"],
        ["payment-plan", "1", "--invoice", "INV-000001", "--instalment", "garbage"],
        ["payment-plan", "1", "--invoice", "INV-000001", "--instalment", "2026-02-30:100"],
        ["payment-plan", "1", "--invoice", "INV-000001", "--instalment", "2026-04-01:12,50"],
        ["payment-plan", "1", "--invoice", "INV-000001"],
        ["report", "aging", "--format", "xml"],
        ["resolve", "f00d"],
        ["daemon", "--interval", "0"],
        ["daemon", "--interval", "5", "--cron", "0 8 * * *"],
        ["daemon", "--jitter", "-3"],
    ],
)
def test_usage_errors(sw: SandboxWorkspace, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    code, _, err = relance(capsys, *command, "--config", str(sw.config_path))
    assert code == 2
    line = one_error(err)
    assert line.startswith("error: ") and "--help" in line and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["history", "NOPE-1"], "invoice 'NOPE-1' is not in the state store"),
        (["dispute", "NOPE-1", "--until", "2026-05-01"], "invoice 'NOPE-1' is not in the state store"),
        (["history", "INV-000001"], "exists in several connections"),
        (["pause", "nobody at all", "--until", "2026-05-01"], "customer 'nobody at all' is not in the state"),
        (
            ["payment-plan", "nobody", "--invoice", "INV-000001", "--instalment", "2026-04-01:10"],
            "customer 'nobody' is not in the state store",
        ),
        (
            ["payment-plan", "1", "--invoice", "INV-000001", "--instalment", "2026-04-01:-10"],
            "must be a positive number",
        ),
        (["resolve", "0123456789abcdef", "--sent"], "no uncertain action '0123456789abcdef'"),
        (["tasks", "--done", "deadbeef"], "no open task 'deadbeef'"),
        (["daemon", "--cron", "every monday", "--once"], "not a valid cron expression"),
    ],
)
def test_unknown_things(
    sw: SandboxWorkspace, capsys: pytest.CaptureFixture[str], command: list[str], expected: str
) -> None:
    code, _, err = relance(capsys, *command, "--config", str(sw.config_path))
    assert code == 1
    line = one_error(err)
    assert line.startswith("error: ") and expected in line


def test_init_refuses_to_overwrite(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert relance(capsys, "init", "--dir", str(tmp_path))[0] == 0
    code, _, err = relance(capsys, "init", "--dir", str(tmp_path))
    assert code == 1 and "already exist" in one_error(err) and "--force" in err


# ---------------------------------------------------------------- the real console script


@pytest.mark.skipif(not RELANCE.exists(), reason=f"console script not installed at {RELANCE}")
def test_console_script_shows_one_line_not_a_traceback(sw: SandboxWorkspace, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "RELANCE_CONFIG"}
    config = str(sw.config_path)
    broken_policy = sw.root / "script-broken.yaml"
    broken_policy.write_text("version: 1\ncompany: {name: x, currency: EUR\n")
    policy_config = variant(
        sw,
        "script-policy.yaml",
        sw.config_path.read_text().replace("    policy: fr-b2b.yaml\n", "    policy: script-broken.yaml\n"),
    )
    typo = variant(
        sw, "script-typo.yaml", sw.config_path.read_text().replace("email:\n", "email\n  - x: [\n")
    )
    cases = [
        (["sync"], 1, "no such configuration file"),
        (["sync", "--config", typo], 1, "script-typo.yaml:"),
        (["sync", "--config", policy_config, "--connection", "test-quickbooks"], 1, "script-broken.yaml:"),
        (["sync", "--config", config, "--connection", "nope"], 1, "unknown connection 'nope'"),
    ]
    running = [
        subprocess.Popen(
            [str(RELANCE), *args],
            cwd=empty,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args, _, _ in cases
    ]
    for (args, expected_code, expected), process in zip(cases, running, strict=True):
        stdout, stderr = process.communicate(timeout=120)
        assert process.returncode == expected_code, (args, stderr)
        assert "Traceback" not in stderr and "Traceback" not in stdout
        assert expected in one_error(stderr), (args, stderr)
    shutil.rmtree(empty)
