"""Read commands: reconcile, history, tasks and the aging report."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from sync.commands.options import config_option, connection_option, echo_json, json_option, today_option
from sync.queries import aging_report, complete_task, invoice_history, list_tasks
from sync.reconcile import reconcile as do_reconcile
from sync.workspace import Workspace


@click.command()
@config_option()
@connection_option()
@today_option()
@click.option("--no-pull", is_flag=True, help="Compare with the state store as it is, without pulling.")
@json_option()
def reconcile(
    config_path: Path | None, connection: str | None, today: date | None, no_pull: bool, as_json: bool
) -> None:
    """Drift between the ledger and relance's state, with proposed fixes (none is applied)."""
    ws = Workspace.open(config_path)
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


@click.command()
@click.argument("invoice")
@config_option()
@connection_option()
@json_option()
def history(invoice: str, config_path: Path | None, connection: str | None, as_json: bool) -> None:
    """Everything relance planned and did for one invoice (id or number)."""
    ws = Workspace.open(config_path)
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


@click.command()
@config_option()
@connection_option()
@click.option("--all", "show_all", is_flag=True, help="Include tasks already done.")
@click.option("--done", "mark_done", default=None, metavar="KEY", help="Mark a task done.")
@json_option()
def tasks(
    config_path: Path | None, connection: str | None, show_all: bool, mark_done: str | None, as_json: bool
) -> None:
    """Calls to make, letters to post, files to hand over."""
    ws = Workspace.open(config_path)
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


@click.group()
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
    reports = aging_report(Workspace.open(config_path), connection=connection, today=today)
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


COMMANDS = (reconcile, history, tasks, report)
