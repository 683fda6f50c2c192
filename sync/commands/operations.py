"""Day-to-day commands: init, sync, apply, reconcile, history, dispute, pause, payment-plan,
tasks, resolve, report, daemon, demo. Each is a thin shell over a library function."""

from __future__ import annotations

import csv
import io
import sys
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from policies.model.errors import RelanceError
from sync.commands.options import DATE, config_option, connection_option, echo_json, json_option, today_option


def _workspace(config_path: Path | None) -> Any:
    from sync.workspace import Workspace

    return Workspace.open(config_path)


def _progress() -> Any:
    """A rich progress bar on a TTY; nothing otherwise (logs and pipes stay clean)."""
    if not sys.stderr.isatty():
        return None, None
    from rich.progress import Progress

    progress = Progress(transient=True)
    tasks: dict[str, Any] = {}

    def update(name: str, index: int, total: int) -> None:
        if name not in tasks:
            tasks[name] = progress.add_task(f"applying {name}", total=total)
        progress.update(tasks[name], completed=index + 1, total=total)

    return progress, update


def print_runs(runs: list[Any], *, as_json: bool) -> None:
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
    from sync.engine import RunOptions, exit_code, run_sync

    connection = options.pop("connection", None)
    as_json = options.pop("as_json", False)
    ws = _workspace(config_path)
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


def register(cli: click.Group) -> None:
    @cli.command()
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
        from sync.setup import init_workspace

        for path in init_workspace(directory, example=example, force=force):
            click.echo(f"wrote {path}")

    @cli.command()
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

    @cli.command()
    @config_option()
    @connection_option()
    @today_option()
    @json_option()
    def apply(config_path: Path | None, connection: str | None, today: date | None, as_json: bool) -> None:
        """Apply planned actions (re-checks the ledger first, like sync)."""
        _run(config_path, connection=connection, today=today, as_json=as_json)

    @cli.command()
    @config_option()
    @connection_option()
    @today_option()
    @click.option("--no-pull", is_flag=True, help="Compare with the state store as it is, without pulling.")
    @json_option()
    def reconcile(
        config_path: Path | None, connection: str | None, today: date | None, no_pull: bool, as_json: bool
    ) -> None:
        """Drift between the ledger and relance's state, with proposed fixes (none is applied)."""
        from sync.reconcile import reconcile as do_reconcile

        ws = _workspace(config_path)
        findings = do_reconcile(ws, connection=connection, today=today, pull=not no_pull)
        if as_json:
            echo_json({"findings": [f.to_json() for f in findings]})
            return
        if not findings:
            click.echo("no drift found")
        for finding in findings:
            click.echo(f"{finding.kind}: {finding.message}")
            if finding.proposal:
                click.echo(f"  proposed: {finding.proposal}")

    @cli.command()
    @click.argument("invoice")
    @config_option()
    @connection_option()
    @json_option()
    def history(invoice: str, config_path: Path | None, connection: str | None, as_json: bool) -> None:
        """Everything relance planned and did for one invoice (id or number)."""
        from sync.queries import invoice_history

        ws = _workspace(config_path)
        entries = invoice_history(ws, invoice, connection=connection)
        if as_json:
            echo_json({"invoice": invoice, "history": entries})
            return
        if not entries:
            click.echo(f"nothing planned or done for invoice {invoice} yet")
        for entry in entries:
            click.echo(
                f"{entry['at']}  {entry['status']:<10} {entry['kind']:<11} {entry.get('step') or '':<16} "
                f"{entry['reason']}"
            )

    @cli.command()
    @click.argument("invoice")
    @click.option(
        "--until", type=DATE, default=None, help="Pause chasing until this date (default: open-ended)."
    )
    @click.option("--reason", default="", help="Why (kept in the audit trail).")
    @click.option("--clear", is_flag=True, help="The dispute is settled: resume chasing.")
    @config_option()
    @connection_option()
    def dispute(
        invoice: str,
        until: date | None,
        reason: str,
        clear: bool,
        config_path: Path | None,
        connection: str | None,
    ) -> None:
        """Mark an invoice disputed (no reminders, no fees) or clear the dispute."""
        from sync.queries import set_dispute

        click.echo(
            set_dispute(
                _workspace(config_path),
                invoice,
                until=until,
                reason=reason,
                clear=clear,
                connection=connection,
            )
        )

    @cli.command()
    @click.argument("customer")
    @click.option("--until", type=DATE, required=True, help="Resume chasing after this date.")
    @click.option("--reason", default="", help="Why (kept in the audit trail).")
    @config_option()
    @connection_option()
    def pause(
        customer: str, until: date, reason: str, config_path: Path | None, connection: str | None
    ) -> None:
        """Pause every reminder and fee for a customer until a date."""
        from sync.queries import set_pause

        click.echo(
            set_pause(_workspace(config_path), customer, until=until, reason=reason, connection=connection)
        )

    @cli.command("payment-plan")
    @click.argument("customer")
    @click.option("--invoice", "invoices", multiple=True, required=True, help="Invoice covered (repeatable).")
    @click.option(
        "--instalment",
        "instalments",
        multiple=True,
        required=True,
        metavar="DATE:AMOUNT",
        help="One instalment, e.g. 2026-12-15:500.00 (repeatable).",
    )
    @click.option(
        "--acceleration-days",
        type=int,
        default=None,
        help="Whole balance falls due when an instalment is this late (default: the policy's).",
    )
    @config_option()
    @connection_option()
    def payment_plan(
        customer: str,
        invoices: tuple[str, ...],
        instalments: tuple[str, ...],
        acceleration_days: int | None,
        config_path: Path | None,
        connection: str | None,
    ) -> None:
        """Agree a payment plan: the ladder pauses; a missed instalment is chased on its own."""
        from sync.queries import create_payment_plan

        parsed = []
        for item in instalments:
            day, _, amount = item.partition(":")
            try:
                parsed.append((date.fromisoformat(day), Decimal(amount)))
            except (ValueError, InvalidOperation):
                raise click.BadParameter(
                    f"expected DATE:AMOUNT like 2026-12-15:500.00, got {item!r}", param_hint="--instalment"
                ) from None
        click.echo(
            create_payment_plan(
                _workspace(config_path),
                customer,
                list(invoices),
                parsed,
                acceleration_days=acceleration_days,
                connection=connection,
            )
        )

    @cli.command()
    @config_option()
    @connection_option()
    @click.option("--all", "show_all", is_flag=True, help="Include tasks already done.")
    @click.option("--done", "mark_done", default=None, metavar="KEY", help="Mark a task done.")
    @json_option()
    def tasks(
        config_path: Path | None, connection: str | None, show_all: bool, mark_done: str | None, as_json: bool
    ) -> None:
        """Calls to make, letters to post, files to hand over."""
        from sync.queries import complete_task, list_tasks

        ws = _workspace(config_path)
        if mark_done:
            click.echo(complete_task(ws, mark_done))
            return
        rows = list_tasks(ws, connection=connection, include_done=show_all)
        if as_json:
            echo_json({"tasks": rows})
            return
        if not rows:
            click.echo("no open tasks")
        for row in rows:
            click.echo(
                f"{row['key'][:12]}  {row['due_on'] or '':<10}  {row['kind']:<6} {row['customer']:<30} "
                f"{row['amount_due']:>14}  {row['summary']}"
            )

    @cli.command()
    @click.argument("key")
    @click.option("--sent", "verdict", flag_value="sent", help="It did happen: mark done.")
    @click.option("--not-sent", "verdict", flag_value="not-sent", help="It did not happen: plan it again.")
    @config_option()
    def resolve(key: str, verdict: str | None, config_path: Path | None) -> None:
        """Settle an uncertain action after checking the ledger or mailbox by hand."""
        from sync.queries import resolve_uncertain

        if verdict is None:
            raise click.UsageError("say what happened: --sent or --not-sent")
        click.echo(resolve_uncertain(_workspace(config_path), key, sent=verdict == "sent"))

    @cli.group()
    def report() -> None:
        """Receivables reports."""

    @report.command("aging")
    @config_option()
    @connection_option()
    @today_option()
    @click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
    @click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
    def report_aging(
        config_path: Path | None, connection: str | None, today: date | None, fmt: str, as_json: bool
    ) -> None:
        """Aging buckets, DSO, credit-limit breaches and expected recovery per bucket."""
        from sync.queries import aging_report

        reports = aging_report(_workspace(config_path), connection=connection, today=today)
        fmt = "json" if as_json else fmt
        if fmt == "json":
            echo_json({"connections": reports})
            return
        if fmt == "csv":
            out = io.StringIO()
            writer = csv.DictWriter(
                out, ["connection", "currency", "bucket", "invoices", "balance", "expected_recovery"]
            )
            writer.writeheader()
            for name, report_ in reports.items():
                for row in report_["buckets"]:
                    writer.writerow({"connection": name, **row})
            click.echo(out.getvalue(), nl=False)
            return
        from rich.console import Console
        from rich.table import Table

        console = Console()
        for name, report_ in reports.items():
            table = Table(title=f"{name} — aging as of {report_['as_of']}")
            for column in ("currency", "bucket", "invoices", "balance", "expected recovery"):
                table.add_column(column, justify="right" if column not in ("currency", "bucket") else "left")
            for row in report_["buckets"]:
                table.add_row(
                    row["currency"],
                    row["bucket"],
                    str(row["invoices"]),
                    row["balance"],
                    row["expected_recovery"],
                )
            console.print(table)
            dso = ", ".join(f"{cur} {days or 'n/a'} days" for cur, days in report_["dso_days"].items())
            console.print(
                f"DSO: {dso or 'n/a'}; credit-limit breaches: {len(report_['credit_limit_breaches'])}"
            )
            for breach in report_["credit_limit_breaches"]:
                console.print(
                    f"  {breach['customer']}: exposure {breach['exposure']} > limit {breach['limit']}"
                    f" ({breach['action']})"
                )

    @cli.command()
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
        from datetime import timedelta

        from sync.daemon import Schedule, StopFlag, configure_json_logging, run_daemon

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

    @cli.command()
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
        from sync.demo import run_demo

        result = run_demo(directory, reset=reset, today=today)
        if as_json:
            echo_json(result.to_json())
            return
        from sync.demo import print_summary

        print_summary(result)


def fail(message: str) -> None:
    raise RelanceError(message)
