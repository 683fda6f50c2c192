"""`relance plan`: what the policy would do today, with reasons.

Offline form: `relance plan --invoices FILE.json --policy FILE --today DATE [--json]` evaluates a JSON
list of invoices without any ledger or state store. The file is a JSON array of invoice objects:

    [{"id": "118", "number": "F-2024-118",
      "customer": {"id": "42", "name": "Acme SARL", "kind": "b2b", "country": "FR",
                   "tags": ["key-account"], "emails": ["ap@acme.fr"], "language": "fr"},
      "issue_date": "2024-03-01", "due_date": "2024-03-31", "currency": "EUR",
      "total": "1200.00", "balance": "1200.00", "status": "open",
      "payments": [{"date": "2024-04-10", "amount": "200.00"}],
      "disputed": false}]

Required: id, number, customer.id, issue_date, due_date, currency, total. Optional: customer name
(default: its id), kind (b2b|b2c; default: the policy's), country, tags, emails, language; balance
(default: total minus payments), status (open|paid|draft|void; default: open, or paid when the
balance is 0), payments (each {date, amount}), disputed (true for an open-ended dispute, or the
date it ends). Amounts are strings (or integers), never floats. There is no history in this form:
the plan is what a first run would do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from policies.config import Policy
from policies.model.errors import RelanceError
from policies.model.ledger import Customer, CustomerKind, Invoice, InvoiceStatus, Settlement
from policies.model.money import Money, to_decimal
from policies.planning import Plan, plan_day
from sync.commands.options import config_option, connection_option, json_option, today_option
from sync.engine import preview
from sync.rulebook import load_policy
from sync.store.details_codec import encode_details
from sync.workspace import Workspace


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _text(item: Mapping[str, Any], field: str, *, prefix: str = "", required: bool = True) -> str | None:
    value = item.get(field)
    if value is None:
        if required:
            raise _Bad(prefix + field, "missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Bad(prefix + field, f"expected text, got {json.dumps(value)}")
    return str(value)


def _date(item: Mapping[str, Any], field: str, prefix: str = "") -> date:
    value = item.get(field)
    if value is None:
        raise _Bad(prefix + field, "missing")
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _Bad(prefix + field, f"expected a date YYYY-MM-DD, got {json.dumps(value)}") from None


def _amount(item: Mapping[str, Any], field: str, prefix: str = "") -> Decimal:
    value = item.get(field)
    if value is None:
        raise _Bad(prefix + field, "missing")
    if isinstance(value, float):
        raise _Bad(prefix + field, f'write amounts as strings ("{value}"), floats lose precision')
    try:
        return to_decimal(value)
    except (TypeError, ValueError):
        raise _Bad(prefix + field, f'expected an amount like "1200.00", got {json.dumps(value)}') from None


def _customer(raw: Any) -> Customer:
    if not isinstance(raw, dict):
        raise _Bad("customer", "expected an object with at least an id")
    customer_id = _text(raw, "id", prefix="customer.")
    assert customer_id is not None
    kind = raw.get("kind")
    if kind is not None and kind not in ("b2b", "b2c"):
        raise _Bad("customer.kind", f"expected b2b or b2c, got {json.dumps(kind)}")
    for field in ("tags", "emails"):
        value = raw.get(field, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _Bad(f"customer.{field}", "expected a list of strings")
    unknown = set(raw) - {"id", "name", "kind", "country", "tags", "emails", "language"}
    if unknown:
        raise _Bad(f"customer.{sorted(unknown)[0]}", "unknown field")
    return Customer(
        id=customer_id,
        name=_text(raw, "name", prefix="customer.", required=False) or customer_id,
        emails=tuple(raw.get("emails", [])),
        language=_text(raw, "language", prefix="customer.", required=False),
        country=(_text(raw, "country", prefix="customer.", required=False) or "").upper() or None,
        kind=CustomerKind(kind) if kind else None,
        tags=tuple(raw.get("tags", [])),
    )


_FIELDS = {
    "id",
    "number",
    "customer",
    "issue_date",
    "due_date",
    "currency",
    "total",
    "balance",
    "status",
    "payments",
    "disputed",
}


def _invoice(raw: Any) -> tuple[Invoice, Customer, list[Settlement], tuple[bool, date | None]]:
    if not isinstance(raw, dict):
        raise _Bad("", "expected an invoice object")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise _Bad(sorted(unknown)[0], f"unknown field (known: {', '.join(sorted(_FIELDS))})")
    invoice_id = _text(raw, "id")
    number = _text(raw, "number")
    customer = _customer(raw.get("customer"))
    currency = _text(raw, "currency")
    assert invoice_id is not None and number is not None and currency is not None
    if len(currency) != 3 or not currency.isalpha():
        raise _Bad("currency", f"expected a currency code like EUR, got {json.dumps(currency)}")
    currency = currency.upper()
    total = _amount(raw, "total")
    payments_raw = raw.get("payments", [])
    if not isinstance(payments_raw, list):
        raise _Bad("payments", "expected a list of {date, amount}")
    settlements = []
    for index, payment in enumerate(payments_raw):
        if not isinstance(payment, dict):
            raise _Bad(f"payments[{index}]", "expected an object {date, amount}")
        settlements.append(
            Settlement(
                _date(payment, "date", f"payments[{index}]."),
                _amount(payment, "amount", f"payments[{index}]."),
                "payment",
                f"{invoice_id}-p{index}",
            )
        )
    settlements.sort(key=lambda s: s.date)
    balance = (
        _amount(raw, "balance")
        if raw.get("balance") is not None
        else total - sum((s.amount for s in settlements), Decimal(0))
    )
    status_raw = raw.get("status")
    try:
        status = (
            InvoiceStatus(status_raw)
            if status_raw is not None
            else (InvoiceStatus.PAID if balance <= 0 else InvoiceStatus.OPEN)
        )
    except ValueError:
        raise _Bad("status", f"expected open, paid, draft or void, got {json.dumps(status_raw)}") from None
    disputed_raw = raw.get("disputed", False)
    if disputed_raw is True:
        dispute: tuple[bool, date | None] = (True, None)
    elif disputed_raw in (False, None):
        dispute = (False, None)
    else:
        dispute = (True, _date(raw, "disputed"))
    invoice = Invoice(
        id=invoice_id,
        number=number,
        customer_id=customer.id,
        issue_date=_date(raw, "issue_date"),
        due_date=_date(raw, "due_date"),
        currency=currency,
        total=Money(total, currency),
        balance=Money(balance, currency),
        status=status,
    )
    return invoice, customer, settlements, dispute


def plan_from_json(text: str, policy: Policy, today: date, *, source: str = "invoices.json") -> Plan:
    """Plan a JSON list of invoices (the format in this module's docstring) offline, without history.

    Raises RelanceError naming the item index and field for bad input."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise RelanceError(f"{source}:{error.lineno}: not valid JSON ({error.msg})") from None
    if not isinstance(data, list):
        raise RelanceError(f"{source}: expected a JSON list of invoices, got {type(data).__name__}")
    customers: dict[str, Customer] = {}
    invoices: list[Invoice] = []
    settlements: dict[str, list[Settlement]] = {}
    disputes: dict[str, date | None] = {}
    seen: set[str] = set()
    for index, raw in enumerate(data):
        try:
            invoice, customer, paid, (disputed, until) = _invoice(raw)
        except _Bad as bad:
            where = f"[{index}].{bad.field}" if bad.field else f"[{index}]"
            raise RelanceError(
                f"{source}: item {index}: {where}: {bad.message}",
                hint="see `relance plan --help` for the format",
            ) from None
        if invoice.id in seen:
            raise RelanceError(f"{source}: item {index}: [{index}].id: duplicate invoice id {invoice.id!r}")
        seen.add(invoice.id)
        customers.setdefault(customer.id, customer)
        invoices.append(invoice)
        if paid:
            settlements[invoice.id] = paid
        if disputed:
            disputes[invoice.id] = until
    return plan_day(
        policy=policy,
        today=today,
        customers=customers,
        invoices=invoices,
        settlements=settlements,
        disputes=disputes,
    )


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The `--json` shape: actions (superseded included, kind "superseded"), skipped, credit, ..."""

    def action(item: Any) -> dict[str, Any]:
        return {
            "key": item.key,
            "kind": item.kind.value,
            "customer_id": item.customer_id,
            "currency": item.currency,
            "invoice_ids": list(item.invoice_ids),
            "step": item.step,
            "channel": item.channel,
            "template": item.template,
            "instalment": item.instalment,
            "due_on": item.due_on.isoformat() if item.due_on else None,
            "charges": [
                {"component": c.component, "amount": c.amount.fixed(), "description": c.description}
                for c in item.charges
            ],
            "reason": item.reason,
            "details": encode_details(item.details),
        }

    return {
        "actions": [action(item) for item in plan.actions],
        "superseded": [action(item) for item in plan.superseded],
        "skipped": [{"invoice_id": s.invoice_id, "reason": s.reason} for s in plan.skipped],
        "credit": [
            {
                "customer_id": b.customer_id,
                "limit": b.limit.fixed(),
                "exposure": b.exposure.fixed(),
                "action": b.action,
                "reason": b.reason,
            }
            for b in plan.credit
        ],
        "suggestions": [
            {
                "customer_id": s.customer_id,
                "current": s.current.fixed(),
                "suggested": s.suggested.fixed(),
                "reasons": list(s.reasons),
            }
            for s in plan.suggestions
        ],
        "warnings": list(plan.warnings),
    }


def print_plan(plan: Plan) -> None:
    console = Console(width=max(120, Console().width))
    table = Table(title=f"{len(plan.actions)} action(s)", show_lines=False)
    for column in ("kind", "customer", "invoices", "step", "amount", "reason"):
        table.add_column(column, overflow="fold")
    for item in plan.actions:
        amount = item.total.display() if item.charges else ""
        table.add_row(
            item.kind.value,
            item.customer_id,
            ", ".join(item.invoice_ids),
            item.step or "",
            amount,
            item.reason,
        )
    console.print(table)
    if plan.superseded:
        console.print(f"{len(plan.superseded)} step(s) superseded (recorded, never sent):")
        for item in plan.superseded:
            console.print(f"  - {item.reason}", highlight=False)
    for skip in plan.skipped:
        console.print(f"skipped: {skip.reason}", highlight=False)
    for breach in plan.credit:
        console.print(f"credit: customer {breach.customer_id}: {breach.reason}", highlight=False)
    for suggestion in plan.suggestions:
        console.print(
            f"limit suggestion: customer {suggestion.customer_id}: {suggestion.current} -> "
            f"{suggestion.suggested} ({'; '.join(suggestion.reasons)})",
            highlight=False,
        )
    for warning in plan.warnings:
        console.print(f"warning: {warning}", highlight=False)


@click.command("plan")
@click.option(
    "--invoices",
    "invoices_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Offline: a JSON list of invoices (format below) instead of the state store.",
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Policy YAML file (required with --invoices; otherwise each connection's policy).",
)
@today_option("The day to plan for (YYYY-MM-DD; default: today in the company's timezone).")
@config_option()
@connection_option()
@click.option(
    "--no-pull", is_flag=True, help="Plan from the state store as it is, without pulling first."
)
@json_option("Print the actions as a JSON list (superseded steps included, kind 'superseded').")
def plan_command(
    invoices_path: Path | None,
    policy_path: Path | None,
    today: date | None,
    config_path: Path | None,
    connection: str | None,
    no_pull: bool,
    as_json: bool,
) -> None:
    """Today's actions and their reasons. Nothing is sent or recorded.

    From the state store (pulling each connection first unless --no-pull), or offline with
    --invoices FILE --policy FILE. Offline, each invoice: {"id", "number", "customer": {"id",
    "name", "kind", "country", "tags", "emails", "language"}, "issue_date", "due_date",
    "currency", "total", "balance", "status", "payments": [{"date", "amount"}], "disputed"}.
    Amounts as strings.

    Examples: relance plan --connection acme-qbo;
    relance plan --invoices invoices.json --policy examples/policies/fr-b2b.yaml --today 2024-05-02
    """
    day = today
    if invoices_path is None:
        plans = preview(Workspace.open(config_path), connection=connection, today=day, pull=not no_pull)
        if as_json:
            click.echo(
                json.dumps(
                    {name: plan_to_json(plan) for name, plan in plans.items()}, indent=2, default=str
                )
            )
            return
        for name, plan in plans.items():
            click.echo(f"== {name}")
            print_plan(plan)
        return
    if policy_path is None:
        raise click.UsageError("--invoices needs --policy FILE")
    if day is None:
        raise click.UsageError("--invoices needs --today DATE")
    policy = load_policy(policy_path)
    try:
        text = invoices_path.read_text(encoding="utf-8")
    except OSError as error:
        raise RelanceError(f"{invoices_path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise RelanceError(f"{invoices_path}: not UTF-8 text") from None
    plan = plan_from_json(text, policy, day, source=str(invoices_path))
    if as_json:
        shape = plan_to_json(plan)
        click.echo(json.dumps(shape["actions"] + shape["superseded"], indent=2, default=str))
    else:
        print_plan(plan)


COMMANDS = (plan_command,)
