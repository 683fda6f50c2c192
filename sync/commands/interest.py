"""`relance interest`: statutory late-payment interest and compensation for one invoice, offline."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import click
from rich.console import Console
from rich.table import Table

from policies.config import interest_terms
from policies.interest import InterestResult, compute_interest
from policies.model.errors import RelanceError
from policies.model.ledger import Settlement
from policies.model.money import Money, to_decimal
from sync.commands.options import DATE, json_option
from sync.rulebook import load_rulebook


class Amount(click.ParamType):
    name = "AMOUNT"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            amount = to_decimal(str(value))
        except (TypeError, ValueError):
            self.fail(f"expected an amount like 1200.00, got {value!r}", param, ctx)
        if amount <= 0:
            self.fail(f"expected an amount above zero, got {value!r}", param, ctx)
        return amount


class LawCode(click.ParamType):
    """A registered late-payment law (read from the installed plugins when the option is used)."""

    name = "LAW"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> str:
        code = str(value).strip().lower()
        known = list(load_rulebook().laws)
        if code not in known:
            self.fail(f"{value!r} is not one of {', '.join(map(repr, known))}", param, ctx)
        return code


class PaymentSpec(click.ParamType):
    name = "DATE:AMOUNT"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> Settlement:
        if isinstance(value, Settlement):
            return value
        text = str(value)
        day, sep, amount = text.partition(":")
        if not sep:
            self.fail(f"expected DATE:AMOUNT like 2024-05-10:500.00, got {text!r}", param, ctx)
        return Settlement(DATE.convert(day, param, ctx), Amount().convert(amount, param, ctx))


def _print_breakdown(result: InterestResult, until_label: str) -> None:
    console = Console(highlight=False)
    console.print(
        f"{(result.law or '-').upper()} late-payment interest on {result.principal.display()} ({until_label})"
    )
    table = Table(show_header=True, header_style="bold")
    for column in ("from", "to", "days", "principal", "rate %", "interest"):
        table.add_column(column, justify="left" if column in ("from", "to") else "right")
    for segment in result.segments:
        row = segment.to_json(result.currency)
        table.add_row(
            row["start"], row["end"], str(row["days"]), row["principal"], row["annual_rate"], row["interest"]
        )
    if result.segments:
        console.print(table)
    console.print(f"Interest:     {result.interest.display()}")
    console.print(f"Compensation: {result.compensation.display()}")
    console.print(f"Total:        {result.total.display()}")
    for warning in result.warnings:
        console.print(f"warning: {warning}")


@click.command("interest")
@click.option("--law", type=LawCode(), required=True, help="Statutory regime: fr, de, uk, eu, ...")
@click.option("--amount", type=Amount(), required=True, help="Invoice total incl. tax, e.g. 1200.00.")
@click.option("--currency", default=None, help="ISO currency (default GBP for uk, EUR otherwise).")
@click.option("--due", type=DATE, required=True, help="Due date, YYYY-MM-DD.")
@click.option("--paid", type=DATE, default=None, help="Date the balance was paid in full.")
@click.option("--as-of", "as_of", type=DATE, default=None, help="Count interest up to this date.")
@click.option(
    "--payment",
    "payments",
    type=PaymentSpec(),
    multiple=True,
    help="Partial payment DATE:AMOUNT (repeatable).",
)
@click.option("--b2c", is_flag=True, help="The debtor is a consumer.")
@json_option("Print JSON.")
def interest_command(
    law: str,
    amount: Decimal,
    currency: str | None,
    due: date,
    paid: date | None,
    as_of: date | None,
    payments: tuple[Settlement, ...],
    b2c: bool,
    as_json: bool,
) -> None:
    """Late-payment interest and fixed compensation for one invoice.

    Example: relance interest --law fr --amount 1200.00 --due 2024-03-31 --paid 2024-08-15
    """
    if (paid is None) == (as_of is None):
        raise click.UsageError("give exactly one of --paid DATE or --as-of DATE")
    until = paid if paid is not None else as_of
    assert until is not None
    rulebook = load_rulebook()
    code = (currency or rulebook.law(law).compensation_currency).strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise click.BadParameter(
            f"expected an ISO 4217 code like EUR, got {currency!r}", param_hint="--currency"
        )
    try:
        result = compute_interest(
            interest_terms(rulebook, law=law),
            total=Money(amount, code),
            due=due,
            until=until,
            settlements=payments,
            b2c=b2c,
        )
    except RelanceError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        label = f"paid {until.isoformat()}" if paid is not None else f"as of {until.isoformat()}"
        _print_breakdown(result, label)


COMMANDS = (interest_command,)
