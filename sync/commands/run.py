"""Running relance: `sync`, `apply` and the `daemon` that runs sync on a schedule."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import click
from rich.progress import Progress, TaskID

from sync.commands.options import config_option, connection_option, echo_json, json_option, today_option
from sync.daemon import Schedule, StopFlag, configure_json_logging, run_daemon
from sync.engine import run_sync
from sync.run_report import ConnectionRun, RunOptions, exit_code
from sync.workspace import Workspace


def _progress() -> tuple[Progress, Callable[[str, int, int], None]] | tuple[None, None]:
    """A rich progress bar on a TTY; nothing otherwise (logs and pipes stay clean)."""
    if not sys.stderr.isatty():
        return None, None
    progress = Progress(transient=True)
    tasks: dict[str, TaskID] = {}

    def update(name: str, index: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(f"applying {name}", total=total)
        progress.update(tasks[name], completed=index + 1, total=total)

    return progress, update


def print_runs(runs: list[ConnectionRun], *, as_json: bool) -> None:
    if as_json:
        echo_json({"connections": [run.to_json() for run in runs]})
        return
    for run in runs:
        pulled = ", ".join(f"{n} {entity}s" for entity, n in sorted(run.pulled.items())) or "nothing new"
        click.echo(
            f"{run.name} ({run.ledger}): pulled {pulled}; planned {run.planned}, applied {run.applied}"
            f", superseded {run.superseded}, cancelled {run.cancelled}"
        )
        for kind, count in sorted(run.actions.items()):
            click.echo(f"  {kind}: {count}")
        for currency, amount in sorted(run.fees_total.items()):
            click.echo(f"  fees posted: {currency} {amount:,.2f}")
        for warning in run.warnings[:10]:
            click.echo(f"  warning: {warning}")
        for error in run.errors:
            click.echo(f"  error: {error}", err=True)


def _run(config_path: Path | None, **options: Any) -> None:
    connection = options.pop("connection", None)
    as_json = options.pop("as_json", False)
    ws = Workspace.open(config_path)
    progress, update = _progress()
    run_options = RunOptions(progress=update, **options)
    if progress is not None:
        with progress:
            runs = run_sync(ws, run_options, connection=connection)
    else:
        runs = run_sync(ws, run_options, connection=connection)
    print_runs(runs, as_json=as_json)
    code = exit_code(runs)
    if code:
        sys.exit(code)


@click.command()
@config_option()
@connection_option()
@today_option()
@click.option("--dry-run", is_flag=True, help="Pull and plan; record and apply no action.")
@click.option("--full", is_flag=True, help="Full pull instead of incremental.")
@json_option()
def sync(
    config_path: Path | None,
    connection: str | None,
    today: date | None,
    dry_run: bool,
    full: bool,
    as_json: bool,
) -> None:
    """Pull from the ledgers, plan today's actions, apply them (exactly once)."""
    _run(config_path, connection=connection, today=today, dry_run=dry_run, full=full, as_json=as_json)


@click.command()
@config_option()
@connection_option()
@today_option()
@json_option()
def apply(config_path: Path | None, connection: str | None, today: date | None, as_json: bool) -> None:
    """Apply planned actions (re-checks the ledger first, like sync)."""
    _run(config_path, connection=connection, today=today, as_json=as_json)


@click.command()
@config_option()
@today_option()
@click.option("--once", is_flag=True, help="One cycle, then exit.")
@click.option(
    "--interval",
    "interval_minutes",
    type=click.IntRange(min=1),
    default=None,
    help="Minutes between runs (default: daemon.interval_minutes in relance.yaml).",
)
@click.option("--cron", default=None, help="Cron schedule instead of an interval, e.g. '0 8-18 * * 1-5'.")
@click.option(
    "--jitter",
    "jitter_seconds",
    type=click.FloatRange(min=0),
    default=None,
    help="Random delay added to each run (seconds).",
)
@click.option("--health-file", type=click.Path(dir_okay=False, path_type=Path), default=None)
def daemon(
    config_path: Path | None,
    today: date | None,
    once: bool,
    interval_minutes: int | None,
    cron: str | None,
    jitter_seconds: float | None,
    health_file: Path | None,
) -> None:
    """Run sync on a schedule; SIGTERM finishes the action in hand and exits."""
    if interval_minutes and cron:
        raise click.UsageError("give --interval or --cron, not both")
    schedule = None
    if interval_minutes or cron:
        schedule = Schedule(
            interval=timedelta(minutes=interval_minutes) if interval_minutes else None,
            cron=cron,
            jitter_seconds=jitter_seconds or 0.0,
        )
    restore_logging = configure_json_logging()
    stop = StopFlag()
    stop.install()
    try:
        code = run_daemon(
            config_path, schedule=schedule, health_file=health_file, once=once, today=today, stop=stop
        )
    finally:
        stop.restore()
        restore_logging()
    if code:
        sys.exit(code)


COMMANDS = (sync, apply, daemon)
