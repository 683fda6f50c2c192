"""`relance demo`: the whole product on a fresh machine, with no credentials.

Starts both ledger sandboxes in-process on free localhost ports (a French B2B company on
QuickBooks, a UK company on Xero), connects through the real SDKs and the real OAuth
authorization-code flow, runs one full sync with the example policies and summarises it.
Everything persists in ./relance-demo/, so a second run performs 0 new actions.
"""

from __future__ import annotations

import shutil
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from connectors.oauth import run_authorization_flow
from connectors.sandbox.generator import generate_company
from connectors.sandbox.quickbooks import QuickBooksSandbox
from connectors.sandbox.xero import XeroSandbox
from connectors.tokens import Tokens
from policies.model.actions import TaskStatus
from sync.engine import run_sync
from sync.reports import aging
from sync.run_report import ConnectionRun, RunOptions
from sync.setup import example_policy_text
from sync.workspace import Workspace

DEMO_DIR = Path("relance-demo")
# Sizes: about 200 customers and 2,000 invoices together (issue #4).
QBO_COMPANY: dict[str, Any] = {
    "seed": 1101,
    "customers": 110,
    "invoices": 1100,
    "country": "FR",
    "currency": "EUR",
    "language": "fr",
}
XERO_COMPANY: dict[str, Any] = {
    "seed": 2202,
    "customers": 90,
    "invoices": 900,
    "country": "GB",
    "currency": "GBP",
    "language": "en",
}


@dataclass
class DemoResult:
    directory: Path
    first_run: bool
    today: date
    runs: list[ConnectionRun] = field(default_factory=list)
    emails_in_outbox: int = 0
    tasks_open: int = 0
    breaches: list[dict[str, Any]] = field(default_factory=list)
    aging: dict[str, Any] = field(default_factory=dict)

    @property
    def new_actions(self) -> int:
        return sum(run.applied for run in self.runs)

    @property
    def actions(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for run in self.runs:
            total.update(run.actions)
        return dict(sorted(total.items()))

    @property
    def fees_total(self) -> dict[str, str]:
        total: dict[str, Decimal] = {}
        for run in self.runs:
            for currency, amount in run.fees_total.items():
                total[currency] = total.get(currency, Decimal(0)) + amount
        return {currency: f"{amount:.2f}" for currency, amount in sorted(total.items())}

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "first_run": self.first_run,
            "today": self.today.isoformat(),
            "new_actions": self.new_actions,
            "actions": self.actions,
            "emails_in_outbox": self.emails_in_outbox,
            "tasks_open": self.tasks_open,
            "fees_total": self.fees_total,
            "credit_limit_breaches": len(self.breaches),
            "aging": self.aging,
            "connections": [run.to_json() for run in self.runs],
        }


def _authorize(sandbox: QuickBooksSandbox | XeroSandbox, ledger: str) -> Tokens:
    """The real authorization-code flow; this function plays the user's browser."""
    def browser(url: str) -> None:
        # The sandbox consent page approves at once and redirects to our 127.0.0.1 listener.
        threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 30}, daemon=True).start()

    return run_authorization_flow(
        ledger,
        sandbox.client_id,
        sandbox.client_secret,
        open_browser=False,
        paste=False,
        port=0,
        browser=browser,
        discovery_url=getattr(sandbox, "discovery_url", None),
        identity_url=getattr(sandbox, "identity_url", None),
        api_root=sandbox.base_url,
    )


def _config_text(qbo: QuickBooksSandbox, xero: XeroSandbox) -> str:
    return f"""\
# relance demo configuration (written by `relance demo`; base URLs change at every demo run)
state: sqlite:///state.sqlite
policy: policy-fr-b2b.yaml
outbox_dir: outbox
email:
  transport: file          # the demo writes .eml files into outbox/emails instead of sending
  from: relance-demo@example.com
  reply_to: comptabilite@example.com
connections:
  - name: demo-quickbooks
    ledger: quickbooks
    policy: policy-fr-b2b.yaml
    base_url: {qbo.base_url}
    discovery_url: {qbo.discovery_url}
    client_id: {qbo.client_id}
    realm_id: "{qbo.realm_id}"
    rate_limit_per_minute: 100000   # local sandbox: no need to pace at Intuit's 500/min
  - name: demo-xero
    ledger: xero
    policy: policy-uk-b2b.yaml
    base_url: {xero.base_url}
    identity_url: {xero.identity_url}
    client_id: {xero.client_id}
    tenant_id: "{xero.tenant_id}"
    rate_limit_per_minute: 100000   # local sandbox: no need to pace at Xero's 60/min
"""


def run_demo(directory: Path = DEMO_DIR, *, reset: bool = False, today: date | None = None) -> DemoResult:
    directory = directory.resolve()
    if reset and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    first_run = not (directory / "state.sqlite").exists()
    demo_today = today or date.today()

    qbo_state, xero_state = directory / "sandbox-quickbooks.json", directory / "sandbox-xero.json"
    qbo = QuickBooksSandbox(today=demo_today, state_file=qbo_state)
    # Local sandbox: no need to pace at Xero's 60 calls/min (the real limits apply to real tenants).
    xero = XeroSandbox(
        today=demo_today,
        state_file=xero_state,
        minute_limit=100_000,
        app_minute_limit=100_000,
        day_limit=1_000_000,
    )
    if not qbo_state.exists():
        qbo.seed(generate_company(today=demo_today, **QBO_COMPANY))
    if not xero_state.exists():
        xero.seed(generate_company(today=demo_today, **XERO_COMPANY))
    qbo.start()
    xero.start()
    try:
        for name in ("fr-b2b", "uk-b2b"):
            target = directory / f"policy-{name}.yaml"
            if not target.exists():
                target.write_text(example_policy_text(name))
        config_path = directory / "relance.yaml"
        config_path.write_text(_config_text(qbo, xero))
        ws = Workspace.open(config_path)
        for connection, sandbox, ledger in (
            ("demo-quickbooks", qbo, "quickbooks"),
            ("demo-xero", xero, "xero"),
        ):
            if ws.token_store.get(connection) is None:
                ws.token_store.save(connection, _authorize(sandbox, ledger))
            ws.token_store.save_client_secret(connection, sandbox.client_secret)
        result = DemoResult(directory, first_run, demo_today)
        result.runs = run_sync(ws, RunOptions(today=demo_today))
        result.emails_in_outbox = len(list((ws.outbox_dir / "emails").glob("*.eml")))
        result.tasks_open = len(ws.store.tasks.records(status=TaskStatus.OPEN))
        for run in result.runs:
            report = aging(ws.store.ledger.snapshot(run.name), demo_today)
            result.aging[run.name] = report.to_json()
        result.breaches = [b for run in result.runs for b in ws.store.outbox.breaches(run.name)]
    finally:
        qbo.stop()
        xero.stop()
        qbo.save()
        xero.save()
    return result


def print_summary(result: DemoResult) -> None:
    """What the demo did, for a person reading a terminal."""
    import click

    click.echo(f"relance demo in {result.directory} (today {result.today})")
    if not result.new_actions:
        click.echo("0 new actions: everything due today was already done (run with --reset to start over).")
    for run in result.runs:
        pulled = ", ".join(f"{count} {entity}s" for entity, count in sorted(run.pulled.items()))
        click.echo(f"\n{run.name} ({run.ledger}): pulled {pulled or 'no changes'}")
        for step, count in sorted(run.steps.items()):
            click.echo(f"  reminders at step {step}: {count}")
        for kind, count in sorted(run.actions.items()):
            click.echo(f"  {kind}: {count}")
        for currency, amount in sorted(run.fees_total.items()):
            click.echo(f"  fees posted: {currency} {amount:,.2f}")
        for error in run.errors[:5]:
            click.echo(f"  error: {error}")
    click.echo(
        f"\nemails in the outbox: {result.emails_in_outbox} ({result.directory / 'outbox' / 'emails'})"
    )
    click.echo(
        f"open tasks: {result.tasks_open} (`relance tasks --config {result.directory / 'relance.yaml'}`)"
    )
    click.echo(f"credit-limit breaches: {len(result.breaches)}")
    for name, report in result.aging.items():
        click.echo(f"\naging, {name}:")
        for row in report["buckets"]:
            if row["invoices"] != "0":
                click.echo(
                    f"  {row['currency']} {row['bucket']:>8}: {row['invoices']:>4} invoices, "
                    f"{row['balance']:>12} owed, {row['expected_recovery']:>12} expected"
                )
    click.echo(f"\nNext: relance report aging --config {result.directory / 'relance.yaml'}")
