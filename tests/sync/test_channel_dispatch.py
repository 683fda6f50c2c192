"""Delivering notices through their channel plugins (sync/channels/sender.py): e-mails rendered and
written, a task when there is no address, letters and agency files keyed by the action, what a
crash leaves (verified from the outbox file, or uncertain over SMTP), unknown channels."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connectors.base import Page, WriteStatus
from policies.model.actions import ActionKind, PlannedAction
from policies.model.details import CreditLimitDetails, NoticeDetails, NoticeLine
from policies.model.errors import RelanceError
from policies.model.ledger import Customer, CustomerKind, Invoice, InvoiceStatus
from policies.model.money import Money
from sync.channels.context import CompanyInfo
from sync.channels.sender import ChannelDispatch, RunKit
from sync.rulebook import channel_plugins
from sync.store import Store, open_store

CONN = "acme"
TODAY = date(2026, 3, 2)
WITH_EMAIL = Customer(
    id="C1", name="Dupont SARL", emails=("ap@dupont.example",), language="fr", kind=CustomerKind.B2B
)
NO_EMAIL = Customer(id="C2", name="Martin SA", language="fr", kind=CustomerKind.B2B)


def invoice(invoice_id: str, customer_id: str) -> Invoice:
    return Invoice(
        id=invoice_id,
        number=f"F-{invoice_id}",
        customer_id=customer_id,
        issue_date=date(2026, 1, 1),
        due_date=date(2026, 1, 31),
        currency="EUR",
        total=Money.of("1200.00", "EUR"),
        balance=Money.of("1200.00", "EUR"),
        status=InvoiceStatus.OPEN,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    opened.ledger.upsert_records(CONN, Page("customer", (WITH_EMAIL, NO_EMAIL)))
    opened.ledger.upsert_records(CONN, Page("invoice", (invoice("I1", "C1"), invoice("I2", "C2"))))
    try:
        yield opened
    finally:
        opened.close()


def dispatch(store: Store, tmp_path: Path, email: dict[str, Any] | None = None) -> ChannelDispatch:
    settings = email or {
        "transport": "file",
        "file_dir": str(tmp_path / "outbox" / "emails"),
        "from": "credit@exemple.example",
    }
    kit = RunKit(
        connection=CONN,
        store=store,
        outbox_dir=tmp_path / "outbox",
        template_dirs=(),
        email_settings=lambda: dict(settings),
    )
    return ChannelDispatch(
        kit, channel_plugins(), lambda: CompanyInfo(name="Exemple SAS", country="FR", law="fr"), TODAY
    )


def action(
    channel: str,
    *,
    customer: str = "C1",
    invoice_id: str = "I1",
    key: str = "k" * 32,
    kind: ActionKind = ActionKind.REMINDER,
) -> PlannedAction:
    return PlannedAction(
        key=key,
        kind=kind,
        customer_id=customer,
        currency="EUR",
        invoice_ids=(invoice_id,),
        reason="D+15 step 'late-letter'",
        step="late-letter",
        channel=channel,
        template="late_1",
        due_on=TODAY,
        details=NoticeDetails(
            ladder="default",
            offset_days=15,
            language="fr",
            balance=Decimal("1200.00"),
            invoices=(NoticeLine(id=invoice_id, number=f"F-{invoice_id}", days_late=30),),
        ),
    )


def test_an_email_is_rendered_and_written_once_per_key(store: Store, tmp_path: Path) -> None:
    channels = dispatch(store, tmp_path)
    outcome = channels.deliver(action("email"), store.ledger.view(CONN))
    assert outcome.status is WriteStatus.DONE and outcome.detail["to"] == ["ap@dupont.example"]
    [eml] = (tmp_path / "outbox" / "emails").glob("*.eml")
    text = eml.read_text(encoding="utf-8")
    assert "ap@dupont.example" in text and "F-I1" in text
    # after a crash: the file transport can tell the message went out
    settled = channels.settle(action("email"), store.ledger.view(CONN))
    assert settled is not None and settled.status is WriteStatus.DONE


def test_an_interrupted_email_not_written_is_sent_normally(store: Store, tmp_path: Path) -> None:
    assert dispatch(store, tmp_path).settle(action("email"), store.ledger.view(CONN)) is None


def test_over_smtp_an_interrupted_email_is_uncertain(store: Store, tmp_path: Path) -> None:
    smtp = {"transport": "smtp", "smtp": {"host": "127.0.0.1", "port": 9}}
    settled = dispatch(store, tmp_path, smtp).settle(action("email"), store.ledger.view(CONN))
    assert settled is not None and settled.status is WriteStatus.UNCERTAIN
    assert "relance resolve" in (settled.error or "")


def test_no_address_becomes_a_task(store: Store, tmp_path: Path) -> None:
    outcome = dispatch(store, tmp_path).deliver(
        action("email", customer="C2", invoice_id="I2"), store.ledger.view(CONN)
    )
    assert outcome.status is WriteStatus.DONE and outcome.detail["fallback"] == "task"
    [task] = store.tasks.records(CONN)
    assert task.customer_id == "C2"


def test_a_letter_is_written_and_tasked_once_whatever_the_repeats(store: Store, tmp_path: Path) -> None:
    channels = dispatch(store, tmp_path)
    letter = action("letter")
    channels.deliver(letter, store.ledger.view(CONN))
    channels.settle(letter, store.ledger.view(CONN))  # a crash after the effect: repeated, harmless
    assert [p.name for p in (tmp_path / "outbox" / "letters").iterdir()] == [f"{letter.key}.txt"]
    assert len(store.tasks.records(CONN)) == 1


def test_an_agency_hand_over_writes_its_files_and_a_task(store: Store, tmp_path: Path) -> None:
    handover = replace(action("agency", kind=ActionKind.AGENCY), template="agency_handover")
    outcome = dispatch(store, tmp_path).deliver(handover, store.ledger.view(CONN))
    assert Path(outcome.detail["csv"]).exists() and Path(outcome.detail["json"]).exists()
    assert [t.kind for t in store.tasks.records(CONN)] == ["agency"]


def test_a_credit_limit_call_and_a_credit_alert(store: Store, tmp_path: Path) -> None:
    channels = dispatch(store, tmp_path)
    details = CreditLimitDetails(
        limit=Decimal("1000.00"),
        exposure=Decimal("1200.00"),
        over=Decimal("200.00"),
        on_breach="call_task",
        episode="1000.00@2026-W10",
    )
    call = replace(
        action("call_task", kind=ActionKind.TASK),
        step="credit-limit",
        details=details,
        template="credit_limit_call",
    )
    channels.deliver(call, store.ledger.view(CONN))
    [task] = store.tasks.records(CONN)
    assert "credit limit 1000.00 EUR exceeded by 200.00" in task.title
    alert = replace(call, kind=ActionKind.CREDIT_ALERT, channel=None, key="a" * 32)
    assert channels.deliver(alert, store.ledger.view(CONN)).detail == {"recorded": True}


def test_an_uninstalled_channel_is_a_clear_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(RelanceError, match="channel 'pigeon' is not installed"):
        dispatch(store, tmp_path).deliver(action("pigeon"), store.ledger.view(CONN))
    with pytest.raises(RelanceError, match="delivered by the ledger"):
        dispatch(store, tmp_path).deliver(action("ledger_email"), store.ledger.view(CONN))
