"""The `relance` command. Every command is a thin shell over a library function (sqlite-utils
style); user errors print one line and exit non-zero, never a traceback.

Exit codes: 0 ok, 1 error, 2 usage, 3 partial (some connections failed).
"""

from __future__ import annotations

import sys

import click

from policies.model.errors import RelanceError
from sync.commands import connections, interest, operations, planning, policy_tools, sandbox


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="relance")
def cli() -> None:
    """relance: credit control on top of QuickBooks Online and Xero."""


for module in (policy_tools, interest, planning, connections, sandbox, operations):
    module.register(cli)


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
