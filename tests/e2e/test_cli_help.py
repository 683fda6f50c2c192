"""`relance --help` lists the commands from sync.cli's table without importing them; the table's
lines are the commands' own."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from sync.cli import COMMAND_MODULES, cli


def test_the_table_says_what_each_command_says() -> None:
    context = click.Context(cli)
    for name, (module, line) in COMMAND_MODULES.items():
        command = cli.get_command(context, name)
        assert command is not None and command.name == name, (name, module)
        assert command.get_short_help_str(limit=500) == line, name


def test_help_lists_every_command() -> None:
    output = CliRunner().invoke(cli, ["--help"]).output
    for name in COMMAND_MODULES:
        assert f"  {name} " in output, name


def test_help_imports_no_command_module() -> None:
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom sync.cli import cli\n"
        "CliRunner().invoke(cli, ['--help'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('sync.commands.')))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
