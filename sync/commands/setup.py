"""`relance init` and `relance demo`: a workspace to start from; the whole product on local sandboxes."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import click

from sync.commands.options import echo_json, json_option, today_option
from sync.demo import print_summary, run_demo
from sync.setup import init_workspace


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    help="Where to write relance.yaml and policy.yaml.",
)
@click.option(
    "--example",
    type=click.Choice(["fr-b2b", "uk-b2b", "de-b2b", "us-net30"]),
    default="fr-b2b",
    help="Which example policy to start from.",
)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(directory: Path, example: str, force: bool) -> None:
    """Write relance.yaml and policy.yaml from the shipped examples."""
    for path in init_workspace(directory, example=example, force=force):
        click.echo(f"wrote {path}")


@click.command()
@click.option("--reset", is_flag=True, help="Start again from a fresh demo folder.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("relance-demo"),
    help="Demo folder (default ./relance-demo).",
)
@today_option()
@json_option()
def demo(reset: bool, directory: Path, today: date | None, as_json: bool) -> None:
    """Run relance end to end against local sandboxes of QuickBooks and Xero."""
    result = run_demo(directory, reset=reset, today=today)
    if as_json:
        echo_json(result.to_json())
        return
    print_summary(result)


COMMANDS = (init, demo)
