"""The `relance` command. Every command is a thin shell over a library function (sqlite-utils
style); user errors print one line and exit non-zero, never a traceback.

Exit codes: 0 ok, 1 error, 2 usage, 3 partial (some connections failed).
"""

from __future__ import annotations

import importlib
import sys

import click

from policies.model.errors import RelanceError

# command -> the module of sync.commands defining it (in its COMMANDS). A module is imported only
# when one of its commands runs (or help lists them): `import sync.cli` stays cheap, and each command
# module imports what it needs at its top.
COMMAND_MODULES = {
    "init": "setup",
    "demo": "setup",
    "connect": "connections",
    "policy": "policy_tools",
    "interest": "interest",
    "plan": "planning",
    "sync": "run",
    "apply": "run",
    "daemon": "run",
    "reconcile": "reports",
    "history": "reports",
    "tasks": "reports",
    "report": "reports",
    "dispute": "cases",
    "pause": "cases",
    "payment-plan": "cases",
    "resolve": "cases",
    "sandbox": "sandbox",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module_name = COMMAND_MODULES.get(cmd_name)
        if module_name is None:
            return super().get_command(ctx, cmd_name)
        module = importlib.import_module(f"sync.commands.{module_name}")
        commands: dict[str, click.Command] = {command.name or "": command for command in module.COMMANDS}
        return commands[cmd_name]


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(package_name="relance")
def cli() -> None:
    """relance: credit control on top of QuickBooks Online and Xero."""


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.exceptions.Exit as exit_:
        sys.exit(exit_.exit_code)
    except click.UsageError as error:
        # One line, like every other error; the hint points at the command's help.
        command = error.ctx.command_path if error.ctx else "relance"
        click.echo(f"error: {error.format_message()} (see `{command} --help`)", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except RelanceError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
