"""Decisions an operator records: disputes, pauses, payment plans, and settling an uncertain action."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import click

from sync.commands.options import DATE, config_option, connection_option
from sync.queries import create_payment_plan, resolve_uncertain, set_dispute, set_pause
from sync.workspace import Workspace


@click.command()
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
    click.echo(
        set_dispute(
            Workspace.open(config_path),
            invoice,
            until=until,
            reason=reason,
            clear=clear,
            connection=connection,
        )
    )


@click.command()
@click.argument("customer")
@click.option("--until", type=DATE, required=True, help="Resume chasing after this date.")
@click.option("--reason", default="", help="Why (kept in the audit trail).")
@config_option()
@connection_option()
def pause(
    customer: str, until: date, reason: str, config_path: Path | None, connection: str | None
) -> None:
    """Pause every reminder and fee for a customer until a date."""
    click.echo(
        set_pause(Workspace.open(config_path), customer, until=until, reason=reason, connection=connection)
    )


@click.command("payment-plan")
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
            Workspace.open(config_path),
            customer,
            list(invoices),
            parsed,
            acceleration_days=acceleration_days,
            connection=connection,
        )
    )


@click.command()
@click.argument("key")
@click.option("--sent", "verdict", flag_value="sent", help="It did happen: mark done.")
@click.option("--not-sent", "verdict", flag_value="not-sent", help="It did not happen: plan it again.")
@config_option()
def resolve(key: str, verdict: str | None, config_path: Path | None) -> None:
    """Settle an uncertain action after checking the ledger or mailbox by hand."""
    if verdict is None:
        raise click.UsageError("say what happened: --sent or --not-sent")
    click.echo(resolve_uncertain(Workspace.open(config_path), key, sent=verdict == "sent"))


COMMANDS = (dispute, pause, payment_plan, resolve)
