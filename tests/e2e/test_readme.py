"""The README is the user's door: its generated reference tables are current, and every command,
relance.yaml key and policy field appears in it."""

from __future__ import annotations

import re

import click

from sync.cli import cli
from sync.docs import render_readme, rows
from tests.support.paths import REPO

README = REPO / "README.md"


def _commands(group: click.Group, prefix: str = "relance") -> list[str]:
    """Every command path, loading lazily registered commands as `relance --help` does."""
    context = click.Context(group)
    found = []
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        path = f"{prefix} {name}"
        found.extend(_commands(command, path) if isinstance(command, click.Group) else [path])
    return found


def test_generated_reference_tables_are_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert render_readme(text) == text, "run `python -m sync.docs` to refresh the README tables"


def test_every_command_is_documented_with_an_example() -> None:
    text = README.read_text(encoding="utf-8")
    commands = _commands(cli)
    assert len(commands) >= 19, commands  # the lazy group must be walked, not its empty eager part
    missing = [command for command in commands if f"`{command}" not in text]
    assert not missing, missing


def test_every_policy_field_and_config_key_is_documented() -> None:
    from policies.config import Policy
    from sync.config import AppConfig

    text = README.read_text(encoding="utf-8")
    for schema in (Policy.model_json_schema(), AppConfig.model_json_schema(by_alias=True)):
        for path, _, _, description in rows(schema):
            assert f"`{path}`" in text, path
            assert description, f"{path} has no description"


def test_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert "pip install .            #" in text and "\nrelance demo\n" in text
    assert "pip install -e '.[test]'\npytest -n 2\n" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install --quiet -e '.[test]'" in ci and "pytest -n 2" in ci


def test_the_architecture_table_names_modules_that_exist() -> None:
    """README's "rule -> module" table stays true: every module it names is in the tree."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Architecture") :]
    section = section[: section.index("\n## ", 5)] if "\n## " in section[5:] else section
    named = re.findall(r"`((?:policies|connectors|sync)/[\w/{},.]+)`", section)
    assert len(named) > 20, named
    missing = []
    for name in named:
        expanded = re.sub(r"\{([^}]*)\}", lambda m: "(" + "|".join(m.group(1).split(",")) + ")", name)
        candidates = [expanded] if "(" not in expanded else [
            expanded.replace(f"({group})", option)
            for group in re.findall(r"\(([^)]*)\)", expanded)
            for option in group.split("|")
        ]
        missing += [c for c in candidates if not (README.parent / c.rstrip("/")).exists()]
    assert not missing, missing


def test_the_packaged_example_policies_are_the_documented_ones() -> None:
    """`relance init` copies policies/examples/ (package data); the README points at examples/policies/."""
    packaged = {path.name: path.read_bytes() for path in (REPO / "policies" / "examples").glob("*.yaml")}
    documented = {path.name: path.read_bytes() for path in (REPO / "examples" / "policies").glob("*.yaml")}
    assert packaged and packaged == documented
