"""policies/ is pure: no I/O, no clock. Rate tables and policy files are read by sync.rulebook and
handed in; nothing under policies/ imports a module that reads files, the network or the clock, or
calls one that does. (zoneinfo and holidays are allowed: naming a time zone or a holiday calendar
reads the system's tz database and bundled data, as importing a module does.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO

POLICIES = REPO / "policies"
FORBIDDEN_MODULES = {
    "os",
    "io",
    "pathlib",
    "importlib",
    "socket",
    "requests",
    "sqlalchemy",
    "time",
    "tempfile",
    "shutil",
    "subprocess",
    "urllib",
    "http",
    "logging",
    "random",
    "sync",
    "connectors",
}
FORBIDDEN_FUNCTIONS = {"open", "input", "print"}  # called by name
FORBIDDEN_METHODS = {"now", "today", "utcnow", "read_text", "read_bytes", "write_text", "write_bytes"}


def modules() -> list[Path]:
    return sorted(POLICIES.rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(POLICIES)))
def test_no_io_and_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            names = []
        line = getattr(node, "lineno", 0)
        problems += [f"line {line}: imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_FUNCTIONS:
                problems.append(f"line {node.lineno}: calls {func.id}()")
            if isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_METHODS:
                problems.append(f"line {node.lineno}: calls .{func.attr}()")
    assert not problems, problems


def test_the_scan_sees_a_violation(tmp_path: Path) -> None:
    """The check above can fail: a module reading a file and the clock is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pathlib\nfrom datetime import date\n\ndef f():\n    return open('x'), date.today()\n"
    )
    with pytest.raises(AssertionError) as caught:
        test_no_io_and_no_clock(bad)
    assert "imports pathlib" in str(caught.value) and "calls open()" in str(caught.value)
    assert "calls .today()" in str(caught.value)
