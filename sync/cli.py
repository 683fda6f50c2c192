"""The `relance` command. Every command is a thin shell over a library function (sqlite-utils
style); user errors print one line and exit non-zero, never a traceback.

Exit codes: 0 ok, 1 error, 2 usage, 3 partial (some connections failed).
"""

from __future__ import annotations

import importlib
import sys

import click

from policies.model.errors import RelanceError

# command -> (the module of sync.commands defining it in its COMMANDS, its one-line help). A module is
# imported only when one of its commands runs: `import sync.cli` and `relance --help` stay cheap, and
# each command module imports what it needs at its top. tests/e2e/test_cli_help.py keeps the lines
# equal to the commands' own.
COMMAND_MODULES: dict[str, tuple[str, str]] = {
    "init": ("setup", "Write relance.yaml and policy.yaml from the shipped examples."),
    "demo": ("setup", "Run relance end to end against local sandboxes of QuickBooks and Xero."),
    "connect": ("connections", "Connect a QuickBooks Online company or a Xero organisation."),
    "policy": ("policy_tools", "Validate policy files and print their JSON Schema."),
    "interest": ("interest", "Late-payment interest and fixed compensation for one invoice."),
    "plan": ("planning", "Today's actions and their reasons."),
    "sync": ("run", "Pull from the ledgers, plan today's actions, apply them (exactly once)."),
    "apply": ("run", "Apply planned actions (re-checks the ledger first, like sync)."),
    "daemon": ("run", "Run sync on a schedule; SIGTERM finishes the action in hand and exits."),
    "reconcile": (
        "reports",
        "Drift between the ledger and relance's state, with proposed fixes (none is applied).",
    ),
    "history": ("reports", "Everything relance planned and did for one invoice (id or number)."),
    "tasks": ("reports", "Calls to make, letters to post, files to hand over."),
    "report": ("reports", "Receivables reports."),
    "dispute": ("cases", "Mark an invoice disputed (no reminders, no fees) or clear the dispute."),
    "pause": ("cases", "Pause every reminder and fee for a customer until a date."),
    "payment-plan": (
        "cases",
        "Agree a payment plan: the ladder pauses; a missed instalment is chased on its own.",
    ),
    "resolve": ("cases", "Settle an uncertain action after checking the ledger or mailbox by hand."),
    "sandbox": ("sandbox", "Local, stateful sandboxes of the QuickBooks Online and Xero APIs."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use (click's documented pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMAND_MODULES})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMAND_MODULES.get(cmd_name)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        module = importlib.import_module(f"sync.commands.{entry[0]}")
        commands: dict[str, click.Command] = {command.name or "": command for command in module.COMMANDS}
        return commands[cmd_name]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table: help imports no command module."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        # a stand-in command shortens each line the way click shortens a loaded command's help
        rows = [
            (name, click.Command(name, help=COMMAND_MODULES[name][1]).get_short_help_str(limit))
            for name in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


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
