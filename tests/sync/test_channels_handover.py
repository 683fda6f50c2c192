"""Call tasks, letters and agency hand-over files."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest

from policies.model.actions import ActionKind, Charge, PlannedAction
from policies.model.errors import RelanceError
from policies.model.ledger import Customer, CustomerKind, Invoice, InvoiceStatus
from policies.model.money import Money
from sync.channels.context import CompanyInfo, NoticeContext, build_context
from sync.channels.handover import HANDOVER_COLUMNS, task_entry, write_handover
from tests.support.details import typed

KEY = "0123456789abcdef0123456789abcdef"
TODAY = date(2026, 5, 11)
COMPANY = CompanyInfo(
    name="Exemple SAS",
    email="compta@exemple.fr",
    phone="+33 1 23 45 67 89",
    address_lines=("12 rue de la Paix", "75002 Paris"),
    legal_mentions=("SIREN 123 456 789",),
    bank_details="IBAN FR76 3000 1007 9412 3456 7890 185",
    country="FR",
    language="fr",
    law="fr",
)
INVOICES = {
    "I1": Invoice(
        id="I1",
        number="F-2026-001",
        customer_id="C1",
        issue_date=date(2026, 1, 10),
        due_date=date(2026, 2, 10),
        currency="EUR",
        total=Money.of("1200", "EUR"),
        balance=Money.of("1200", "EUR"),
        status=InvoiceStatus.OPEN,
    ),
    "I2": Invoice(
        id="I2",
        number="F-2026-002",
        customer_id="C1",
        issue_date=date(2026, 1, 12),
        due_date=date(2026, 2, 12),
        currency="EUR",
        total=Money.of("345.50", "EUR"),
        balance=Money.of("300", "EUR"),
        status=InvoiceStatus.OPEN,
    ),
}


def customer(name: str = "Dupont & Fils") -> Customer:
    return Customer(
        id="C1", name=name, emails=("ap@dupont.example",), language="fr", country="FR", kind=CustomerKind.B2B
    )


def action(
    channel: str, template: str, *, kind: ActionKind = ActionKind.TASK, **extra: object
) -> PlannedAction:
    return PlannedAction(
        key=KEY,
        kind=kind,
        customer_id="C1",
        currency="EUR",
        invoice_ids=("I1", "I2"),
        reason="test",
        step=(step := str(extra.pop("step", "call"))),
        channel=channel,
        template=template,
        due_on=TODAY,
        details=typed(kind, step, {**({} if step == "credit-limit" else {"language": "fr"}), **extra}),
    )


FEES = [
    PlannedAction(
        key="f" * 32,
        kind=ActionKind.FEE,
        customer_id="C1",
        currency="EUR",
        invoice_ids=("I1",),
        reason="fee",
        charges=(
            Charge("interest", Money.of("49.71", "EUR"), "interest"),
            Charge("compensation", Money.of("40", "EUR"), "compensation"),
            Charge("fee", Money.of("15", "EUR"), "late-letter"),
        ),
    ),
    PlannedAction(
        key="e" * 32,
        kind=ActionKind.FEE,
        customer_id="C1",
        currency="EUR",
        invoice_ids=("I2",),
        reason="fee",
        charges=(Charge("interest", Money.of("12.10", "EUR"), "interest"),),
    ),
    PlannedAction(  # another customer's invoice: not part of this notice
        key="d" * 32,
        kind=ActionKind.FEE,
        customer_id="C1",
        currency="EUR",
        invoice_ids=("I9",),
        reason="fee",
        charges=(Charge("interest", Money.of("99", "EUR"), "interest"),),
    ),
]


def context(planned: PlannedAction, name: str = "Dupont & Fils") -> NoticeContext:
    return build_context(planned, customer(name), INVOICES, COMPANY, TODAY, fees=FEES)


def test_call_task_entry() -> None:
    planned = action("call_task", "due_today", step="call-d0")
    entry = task_entry(planned, customer(), INVOICES, context(planned))
    assert entry.kind == "call" and entry.key == KEY
    assert entry.invoices == ("F-2026-001", "F-2026-002")
    assert entry.amount_due == Money.of("1616.81", "EUR")  # 1500 balances + 116.81 charges (I9 excluded)
    assert entry.email == "ap@dupont.example" and entry.due_on == TODAY and entry.letter_path is None
    assert (
        "Call Dupont & Fils" in entry.summary and "€1,616.81" in entry.summary and "call-d0" in entry.summary
    )
    as_dict = entry.as_dict()
    assert json.loads(json.dumps(as_dict))["amount_due"] == "1616.81"


def test_letter_is_rendered_to_the_outbox_once(tmp_path: Path) -> None:
    planned = action("letter", "late_1", kind=ActionKind.REMINDER, step="late-letter")
    entry = task_entry(planned, customer(), INVOICES, context(planned), outbox=tmp_path)
    assert entry.kind == "letter"
    assert entry.letter_path == tmp_path / "letters" / f"{KEY}.txt"
    text = entry.letter_path.read_text(encoding="utf-8")
    assert text.startswith("Exemple SAS\n12 rue de la Paix\n75002 Paris\n")
    assert "11 mai 2026" in text
    assert "Objet\u00a0: Relance : les factures F-2026-001, F-2026-002 impayées" in text
    assert "indemnité forfaitaire pour frais de recouvrement de 40 €" in text
    assert str(entry.letter_path) in entry.summary
    again = task_entry(planned, customer(), INVOICES, context(planned), outbox=tmp_path)
    assert again == entry
    assert [path.name for path in (tmp_path / "letters").iterdir()] == [f"{KEY}.txt"]


def test_letter_without_outbox_is_a_clear_error() -> None:
    planned = action("letter", "late_1", kind=ActionKind.REMINDER)
    with pytest.raises(RelanceError, match="outbox"):
        task_entry(planned, customer(), INVOICES, context(planned))


def test_credit_limit_call() -> None:
    planned = action(
        "call_task",
        "credit_limit_call",
        step="credit-limit",
        limit="5000.00",
        exposure="6500.00",
        over="1500.00",
    )
    entry = task_entry(planned, customer(), INVOICES, context(planned))
    assert entry.kind == "credit_call"
    assert "credit limit 5000.00 EUR exceeded by 1500.00" in entry.summary


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_handover_files(tmp_path: Path) -> None:
    planned = action("agency", "agency_handover", kind=ActionKind.AGENCY, step="agency")
    ctx = context(planned)
    history = [
        {
            "key": "a" * 32,
            "kind": "reminder",
            "step": "late-letter",
            "status": "done",
            "at": date(2026, 2, 25),
            "invoice_ids": ["I1", "I2"],
        },
        {
            "key": "b" * 32,
            "kind": "reminder",
            "step": "final-notice",
            "status": "done",
            "at": date(2026, 4, 26),
        },
    ]
    csv_path, json_path = write_handover(tmp_path / "agency", ctx, history, address=("1 rue X", "69001 Lyon"))
    assert (csv_path.name, json_path.name) == (f"{KEY}.csv", f"{KEY}.json")

    rows = read_csv(csv_path)
    assert list(rows[0]) == list(HANDOVER_COLUMNS)
    assert [row["invoice_number"] for row in rows] == ["F-2026-001", "F-2026-002"]
    first, second = rows
    assert first["debtor_name"] == "Dupont & Fils" and first["debtor_id"] == "C1"
    assert first["debtor_address"] == "1 rue X, 69001 Lyon" and first["debtor_email"] == "ap@dupont.example"
    assert (first["issue_date"], first["due_date"], first["days_late"]) == ("2026-01-10", "2026-02-10", "90")
    assert (first["total"], first["balance"], first["interest"], first["compensation"], first["fees"]) == (
        "1200.00",
        "1200.00",
        "49.71",
        "40.00",
        "15.00",
    )
    assert (second["balance"], second["interest"], second["compensation"], second["currency"]) == (
        "300.00",
        "12.10",
        "0.00",
        "EUR",
    )

    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert document["reference"] == KEY and document["prepared_on"] == "2026-05-11"
    assert document["debtor"]["name"] == "Dupont & Fils" and document["debtor"]["kind"] == "b2b"
    assert document["creditor"]["name"] == "Exemple SAS"
    assert [invoice["number"] for invoice in document["invoices"]] == ["F-2026-001", "F-2026-002"]
    assert document["invoices"][0]["balance"] == {"amount": "1200.00", "currency": "EUR"}
    assert {charge["component"] for charge in document["charges"]} == {"interest", "compensation", "fee"}
    assert document["totals"] == {
        "balance": "1500.00",
        "charges": "116.81",
        "total_due": "1616.81",
        "statutory_compensation": "40.00",
    }
    assert [record["step"] for record in document["history"]] == ["late-letter", "final-notice"]
    assert document["history"][0]["at"] == "2026-02-25"


def test_handover_rewrites_the_same_files(tmp_path: Path) -> None:
    planned = action("agency", "agency_handover", kind=ActionKind.AGENCY, step="agency")
    first = write_handover(tmp_path, context(planned), [])
    second = write_handover(tmp_path, context(planned), [{"key": "x", "status": "done"}])
    assert first == second
    assert sorted(path.name for path in tmp_path.iterdir()) == [f"{KEY}.csv", f"{KEY}.json"]
    assert json.loads(second[1].read_text(encoding="utf-8"))["history"] == [{"key": "x", "status": "done"}]


def test_handover_csv_cannot_carry_a_spreadsheet_formula(tmp_path: Path) -> None:
    planned = action("agency", "agency_handover", kind=ActionKind.AGENCY)
    evil = '=HYPERLINK("http://evil.example","click")'
    csv_path, json_path = write_handover(tmp_path, context(planned, name=evil), [])
    assert read_csv(csv_path)[0]["debtor_name"] == "'" + evil
    assert json.loads(json_path.read_text(encoding="utf-8"))["debtor"]["name"] == evil  # data stays exact
