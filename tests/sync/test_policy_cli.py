"""`relance policy check` and `relance policy schema`, driven through the real click group."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from click.testing import CliRunner

from sync.cli import cli
from tests.support.paths import BROKEN_POLICIES, EXAMPLE_POLICIES


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_check_examples_ok() -> None:
    paths = sorted(str(path) for path in EXAMPLE_POLICIES.glob("*.yaml"))
    code, output = run("policy", "check", "--today", "2026-03-01", *paths)
    assert code == 0
    assert output.splitlines() == [f"{path}: ok" for path in paths]


def test_check_reports_errors_with_file_line_and_exits_1() -> None:
    broken = str(BROKEN_POLICIES / "offset_ten.yaml")
    good = str(EXAMPLE_POLICIES / "fr-b2b.yaml")
    code, output = run("policy", "check", good, broken)
    assert code == 1
    assert output.splitlines() == [
        f"{good}: ok",
        f"{broken}:23: ladder.steps[1].offset_days: expected whole days, got 'ten'",
    ]
    assert "Traceback" not in output


def test_check_missing_file() -> None:
    code, output = run("policy", "check", "no-such-policy.yaml")
    assert code == 1
    assert output == "no-such-policy.yaml: file not found (check the `policy:` path in relance.yaml)\n"


def test_check_warnings_do_not_fail(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\n"
        "company: {name: X, country: FR, currency: EUR}\n"
        "interest:\n"
        '  annual_rate: "5"\n'
        "ladder:\n"
        "  steps:\n"
        "    - {name: late, offset_days: 10, channel: email, template: late_1, charge: [interest]}\n"
    )
    code, output = run("policy", "check", "--today", "2026-03-01", str(path))
    assert code == 0
    lines = output.splitlines()
    assert lines[0] == f"{path}: ok (1 warning(s))"
    assert lines[1].startswith(f"warning: {path}:4: interest.annual_rate: 5 % a year is below 3x")


def test_check_json() -> None:
    broken = str(BROKEN_POLICIES / "unknown_channel.yaml")
    good = str(EXAMPLE_POLICIES / "us-net30.yaml")
    code, output = run("policy", "check", "--json", good, broken)
    assert code == 1
    assert json.loads(output) == [
        {"file": good, "ok": True, "errors": [], "warnings": []},
        {
            "file": broken,
            "ok": False,
            "errors": [
                f"{broken}:24: ladder.steps[1].channel: expected one of: ledger_email, email, call_task, "
                "letter, agency, got 'sms'"
            ],
            "warnings": [],
        },
    ]


def test_check_every_broken_policy_fails_cleanly() -> None:
    paths = sorted(str(path) for path in BROKEN_POLICIES.glob("*.yaml"))
    code, output = run("policy", "check", "--json", *paths)
    assert code == 1
    reports = json.loads(output)
    assert [report["ok"] for report in reports] == [False] * len(paths)
    for path, report in zip(paths, reports, strict=True):
        assert all(error.startswith(f"{path}:") for error in report["errors"]), report


def test_check_bad_today_is_a_usage_error() -> None:
    code, output = run("policy", "check", "--today", "tomorrow", str(EXAMPLE_POLICIES / "fr-b2b.yaml"))
    assert code == 2
    assert "expected a date like 2026-12-31, got 'tomorrow'" in output


def test_schema_prints_a_valid_json_schema(tmp_path: Path) -> None:
    code, output = run("policy", "schema")
    assert code == 0
    schema = json.loads(output)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "relance policy"
    assert schema["properties"]["ladder"]["description"] == "The default reminder ladder."
    assert set(schema["required"]) == {"version", "company", "ladder"}
    target = tmp_path / "policy.schema.json"
    code, output = run("policy", "schema", "--output", str(target))
    assert code == 0 and json.loads(target.read_text()) == schema
