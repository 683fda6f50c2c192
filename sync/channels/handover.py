"""What people do: call tasks, letters to print and post, and files handed to a collection agency.

Everything here is keyed by the action key (file names, task keys), so repeating an action after a
crash rewrites the same files instead of adding new ones. Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

from policies.model.actions import PlannedAction
from policies.model.details import CreditLimitDetails
from policies.model.errors import RelanceError
from policies.model.ledger import Customer, Invoice
from policies.model.money import Money

from .context import NoticeContext
from .render import Renderer, format_date, format_money, render_notice
from .transports import atomic_write, checked_key

TASK_KINDS = ("call", "letter", "credit_call", "agency")
_SUBJECT_LABEL = {"fr": "Objet", "de": "Betreff", "en": "Subject"}
# Spreadsheet apps run cells starting with these as formulas (CSV injection): such text gets a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

HANDOVER_COLUMNS = (
    "debtor_name",
    "debtor_id",
    "debtor_address",
    "debtor_country",
    "debtor_email",
    "invoice_number",
    "issue_date",
    "due_date",
    "days_late",
    "total",
    "balance",
    "interest",
    "compensation",
    "fees",
    "currency",
)


@dataclass(frozen=True, slots=True)
class TaskEntry:
    """One line of `relance tasks`: plain data."""

    key: str
    kind: str  # call | letter | credit_call | agency
    customer_id: str
    customer_name: str
    summary: str
    invoices: tuple[str, ...]  # invoice numbers
    amount_due: Money
    due_on: date | None
    phone: str | None = None
    email: str | None = None
    step: str | None = None
    letter_path: Path | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "summary": self.summary,
            "invoices": list(self.invoices),
            "amount_due": self.amount_due.fixed(),
            "currency": self.amount_due.currency,
            "due_on": self.due_on.isoformat() if self.due_on else None,
            "phone": self.phone,
            "email": self.email,
            "step": self.step,
            "letter_path": str(self.letter_path) if self.letter_path else None,
        }


def task_kind(action: PlannedAction) -> str:
    if action.channel == "letter":
        return "letter"
    if action.channel == "agency" or action.kind.value == "agency":
        return "agency"
    if action.step == "credit-limit" or (action.template or "").startswith("credit_limit"):
        return "credit_call"
    return "call"


def _summary(kind: str, action: PlannedAction, ctx: NoticeContext, letter: Path | None) -> str:
    name = ctx.customer.name
    numbers = ", ".join(invoice.number for invoice in ctx.invoices)
    count = len(ctx.invoices)
    what = f"{count} invoice{'s' if count != 1 else ''} ({numbers})" if count else "no invoice"
    due = format_money(ctx.total_due, "en")
    late = f", up to {ctx.max_days_late} days late" if ctx.max_days_late > 0 else ""
    step = f" [step {action.step}]" if action.step else ""
    if kind == "credit_call":
        details = action.details
        credit = details if isinstance(details, CreditLimitDetails) else None
        limit = credit.limit if credit else "?"
        exposure = credit.exposure if credit else "?"
        over = credit.over if credit else "?"
        return (
            f"Call {name}: credit limit {limit} {ctx.currency} exceeded by {over} "
            f"(exposure {exposure} {ctx.currency}){step}"
        )
    if kind == "letter":
        return f"Print and post the letter {letter} to {name}: {what}, {due} due{late}{step}"
    if kind == "agency":
        return f"Send the hand-over file of {name} to the collection agency: {what}, {due} due{late}{step}"
    return f"Call {name} about {what}: {due} due{late}{step}"


def letter_text(ctx: NoticeContext, *, renderer: Renderer | None = None) -> str:
    """The notice's plain-text part laid out as a letter (letterhead, date, subject line)."""
    rendered = render_notice(ctx, renderer=renderer)
    company = ctx.company
    head = [company.name, *company.address_lines]
    contact = " · ".join(item for item in (company.phone, company.email) if item)
    if contact:
        head.append(contact)
    label = _SUBJECT_LABEL.get(rendered.language, "Subject")
    colon = "\u00a0:" if rendered.language == "fr" else ":"
    lines = [
        *head,
        "",
        "",
        ctx.customer.name,
        "",
        format_date(ctx.today, rendered.language),
        "",
        f"{label}{colon} {rendered.subject}",
        "",
        rendered.text.rstrip("\n"),
        "",
    ]
    return "\n".join(lines)


def task_entry(
    action: PlannedAction,
    customer: Customer,
    invoices: Mapping[str, Invoice],
    ctx: NoticeContext,
    *,
    outbox: Path | None = None,
    renderer: Renderer | None = None,
) -> TaskEntry:
    """The task for a call_task / letter / agency / credit-limit action. For letters, also writes
    `<outbox>/letters/<key>.txt` (the notice's text part, laid out as a letter)."""
    kind = task_kind(action)
    letter: Path | None = None
    if kind == "letter":
        if outbox is None:
            raise RelanceError(f"letter {action.key}: no outbox folder to write it to", hint="set outbox_dir")
        letter = atomic_write(
            Path(outbox) / "letters" / f"{checked_key(action.key)}.txt",
            letter_text(ctx, renderer=renderer).encode("utf-8"),
        )
    numbers = tuple(
        invoices[invoice_id].number if invoice_id in invoices else invoice_id
        for invoice_id in action.invoice_ids
    )
    return TaskEntry(
        key=action.key,
        kind=kind,
        customer_id=customer.id,
        customer_name=customer.name,
        summary=_summary(kind, action, ctx, letter),
        invoices=numbers,
        amount_due=ctx.total_due,
        due_on=action.due_on,
        phone=None,
        email=customer.emails[0] if customer.emails else None,
        step=action.step,
        letter_path=letter,
    )


# --- agency hand-over -----------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-friendly form of the values found in contexts and history records."""
    if isinstance(value, Money):
        return {"amount": value.fixed(), "currency": value.currency}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in fields(value)}
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _cell(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


def _fees_by_invoice(ctx: NoticeContext) -> dict[str, Money]:
    result: dict[str, Money] = {}
    for charge in ctx.charges:
        if charge.component == "fee" and charge.invoice_id is not None:
            result[charge.invoice_id] = (
                result.get(charge.invoice_id, Money.zero(ctx.currency)) + charge.amount
            )
    return result


def handover_rows(ctx: NoticeContext, address: Sequence[str] = ()) -> list[dict[str, str]]:
    fees = _fees_by_invoice(ctx)
    zero = Money.zero(ctx.currency)
    customer = ctx.customer
    rows = []
    for invoice in ctx.invoices:
        rows.append(
            {
                "debtor_name": _cell(customer.name),
                "debtor_id": _cell(customer.id),
                "debtor_address": _cell(", ".join(address)),
                "debtor_country": _cell(customer.country or ""),
                "debtor_email": _cell(", ".join(customer.emails)),
                "invoice_number": _cell(invoice.number),
                "issue_date": invoice.issue_date.isoformat(),
                "due_date": invoice.due_date.isoformat(),
                "days_late": str(invoice.days_late),
                "total": invoice.total.fixed(),
                "balance": invoice.balance.fixed(),
                "interest": (invoice.interest or zero).fixed(),
                "compensation": (invoice.compensation or zero).fixed(),
                "fees": fees.get(invoice.id, zero).fixed(),
                "currency": invoice.balance.currency,
            }
        )
    return rows


def write_handover(
    directory: Path, ctx: NoticeContext, history: Sequence[Mapping[str, Any]], *, address: Sequence[str] = ()
) -> tuple[Path, Path]:
    """`<directory>/<key>.csv` (one row per invoice) and `<key>.json` (debtor, invoices, charges,
    totals, full reminder history). Same key, same files: a repeat overwrites, never duplicates."""
    directory = Path(directory)
    key = checked_key(ctx.reference)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HANDOVER_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(handover_rows(ctx, address))
    csv_path = atomic_write(directory / f"{key}.csv", buffer.getvalue().encode("utf-8"))

    customer = ctx.customer
    document = {
        "reference": ctx.reference,
        "prepared_on": ctx.today.isoformat(),
        "creditor": _plain(ctx.company),
        "debtor": {
            "id": customer.id,
            "name": customer.name,
            "emails": list(customer.emails),
            "country": customer.country,
            "kind": "b2b" if ctx.b2b else "b2c",
            "language": ctx.language,
            "address": list(address),
        },
        "currency": ctx.currency,
        "invoices": [_plain(invoice) for invoice in ctx.invoices],
        "charges": [_plain(charge) for charge in ctx.charges],
        "totals": {
            "balance": ctx.balance_due.fixed(),
            "charges": ctx.charges_total.fixed(),
            "total_due": ctx.total_due.fixed(),
            "statutory_compensation": ctx.statutory_compensation.fixed()
            if ctx.statutory_compensation
            else None,
        },
        "law": ctx.law,
        "history": [_plain(record) for record in history],
    }
    text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    json_path = atomic_write(directory / f"{key}.json", text.encode("utf-8"))
    return csv_path, json_path
