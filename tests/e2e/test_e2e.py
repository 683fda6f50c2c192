"""End to end, through both sandboxes, with time travel over 120 days (issue #4 acceptance).

One sync per simulated day against a QuickBooks (fr-b2b) and a Xero (uk-b2b) sandbox, relance
emails delivered to a real SMTP server (aiosmtpd), state on SQLite and on PostgreSQL. Along the way a
customer pays, an invoice is disputed and a customer is paused. At the end:
- every invoice received exactly its ladder steps, each once (no email, note or fee twice);
- fees posted equal the statutory calculation of #2 (cumulative interest + compensation once);
- paid, disputed and paused invoices stopped;
- every relance email arrived once at the SMTP server.
"""

from __future__ import annotations

import os
import socket
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from policies.interest import compute_interest
from policies.model.actions import ActionStatus
from policies.model.ledger import InvoiceStatus, settlements_by_invoice
from policies.model.money import Money
from sync.engine import run_sync
from sync.queries import set_dispute, set_pause
from sync.run_report import RunOptions
from tests.support.postgres import PG_ENV, PG_SKIP, fresh_postgres_database
from tests.support.sandboxes import build_workspace

START = date(2026, 1, 5)
DAYS = 120


class Inbox:
    """aiosmtpd handler keeping every message received."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Any:
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.sqlite'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    with fresh_postgres_database(base) as url:
        yield url


def _open_invoices(sandbox: Any) -> list[Any]:
    truth = sandbox.truth()
    return sorted((i for i in truth.invoices.values() if i.is_open), key=lambda i: i.due_date)


def test_time_travel_120_days(tmp_path: Path, smtp_server: Any, state_url: str) -> None:
    port, inbox = smtp_server
    email = (
        "email:\n  transport: smtp\n  from: credit@example.com\n"
        f"  smtp: {{host: 127.0.0.1, port: {port}, starttls: false}}\n"
    )
    built = build_workspace(
        tmp_path / "ws",
        today=START,
        customers=10,
        invoices=45,
        seed=11,
        state_url=state_url,
        email=email,
        history_days=75,
    )
    try:
        ws = built.open()
        names = list(built.sandboxes)
        # Pick the invoices the story is about: open invoices falling due inside the window.
        events: dict[str, dict[str, Any]] = {}
        for name in names:
            candidates = [
                i for i in _open_invoices(built.sandboxes[name]) if START < i.due_date < START + timedelta(40)
            ]
            assert len(candidates) >= 3, f"{name}: the seeded company needs invoices due in the window"
            paid, disputed, paused = candidates[0], candidates[1], candidates[-1]
            events[name] = {
                "paid": (paid, paid.due_date + timedelta(days=20)),  # paid 20 days late
                "disputed": (disputed, disputed.due_date + timedelta(days=5)),
                "paused": (
                    paused.customer_id,
                    paused.due_date - timedelta(days=20),
                    paused.due_date + timedelta(days=50),
                ),
            }

        day_of_action: dict[str, date] = {}  # action key -> the simulated day it was applied
        for offset in range(DAYS + 1):
            today = START + timedelta(days=offset)
            built.set_today(today)
            for name in names:
                story = events[name]
                invoice, pay_day = story["paid"]
                if today == pay_day:  # pays everything owed that day, fees on the invoice included
                    owed = built.sandboxes[name].truth().invoices[invoice.id].balance.amount
                    built.sandboxes[name].add_payment(invoice.id, owed, today)
                invoice, dispute_day = story["disputed"]
                if today == dispute_day:
                    set_dispute(
                        ws, invoice.id, until=None, reason="quality claim", clear=False, connection=name
                    )
                customer_id, pause_from, pause_until = story["paused"]
                if today == pause_from:
                    set_pause(ws, customer_id, until=pause_until, reason="restructuring", connection=name)
            runs = run_sync(ws, RunOptions(today=today))
            for run in runs:
                assert not run.errors, (today, run.errors)
            for record in ws.store.outbox.actions(status=ActionStatus.DONE):
                day_of_action.setdefault(record.key, today)

        store = ws.store
        for name in names:
            sandbox = built.sandboxes[name]
            policy = ws.policy_for(ws.connection(name))
            calendar = policy.business_calendar()
            snapshot = store.ledger.snapshot(name)
            done = store.outbox.actions(name, status=ActionStatus.DONE)
            left = store.outbox.actions(
                name, status=(ActionStatus.IN_FLIGHT, ActionStatus.UNCERTAIN, ActionStatus.FAILED)
            )
            assert not left, [(r.kind, r.status, r.error) for r in left]

            # 1. Each step at most once per invoice, and every step that fell due in the window was sent.
            steps_done: dict[str, Counter[str]] = defaultdict(Counter)
            for record in done:
                if (
                    record.kind in ("reminder", "task", "agency")
                    and record.step
                    and record.step != "credit-limit"
                ):
                    for invoice_id in record.invoice_ids:
                        steps_done[invoice_id][record.step] += 1
            for invoice_id, counter in steps_done.items():
                assert max(counter.values()) == 1, (name, invoice_id, counter)
            skipped_story = {events[name]["paid"][0].id, events[name]["disputed"][0].id}
            paused_customer = events[name]["paused"][0]
            checked = 0
            for invoice in snapshot.invoices.values():
                if invoice.id in skipped_story or invoice.customer_id == paused_customer:
                    continue
                if not invoice.is_open or invoice.is_relance_fee_invoice:
                    continue
                settings = policy.settings_for(snapshot.customers[invoice.customer_id])
                if settings.excluded or settings.paused_until:
                    continue
                if store.cases.disputes(name, START + timedelta(DAYS)).get(invoice.id, "none") != "none":
                    continue
                expected = set()
                for step in settings.ladder.steps:
                    day = calendar.adjust(
                        invoice.due_date + timedelta(days=step.offset_days), step.business_days
                    )
                    if START < day <= START + timedelta(DAYS) and invoice.balance.amount >= step.min_amount:
                        expected.add(step.name)
                sent = set(steps_done.get(invoice.id, {}))
                sent_in_window = {s for s in sent if "#" not in s}
                assert expected <= sent_in_window, (name, invoice.number, expected - sent_in_window)
                checked += 1
            assert checked >= 5, f"{name}: too few invoices checked ({checked})"

            # 2. Fees: the interest charged on an invoice is the statutory interest accrued to the
            #    last charging day (charges are cumulative); compensation once per invoice.
            terms = policy.interest_terms()
            assert terms is not None, f"{name}: the example policy charges interest"
            settlements = settlements_by_invoice(snapshot.payments.values(), snapshot.credit_notes.values())
            fees_by_invoice: dict[str, list[Any]] = defaultdict(list)
            for record in done:
                if record.kind == "fee":
                    fees_by_invoice[record.invoice_ids[0]].append(record)
            assert fees_by_invoice, f"{name}: no fee was posted in 120 days"
            for invoice_id, records in fees_by_invoice.items():
                invoice = snapshot.invoices[invoice_id]
                interest = sum(
                    (c.amount.amount for r in records for c in r.charges if c.component == "interest"),
                    Decimal(0),
                )
                compensations = [c for r in records for c in r.charges if c.component == "compensation"]
                assert len(compensations) <= 1, (name, invoice.number)
                last_day = max(day_of_action[r.key] for r in records)
                customer = snapshot.customers[invoice.customer_id]
                b2c = policy.settings_for(customer).kind.value == "b2c"
                expected_interest = compute_interest(
                    terms,
                    total=invoice.principal,
                    due=invoice.due_date,
                    until=last_day,
                    settlements=[s for s in settlements.get(invoice_id, []) if s.date <= last_day],
                    b2c=b2c,
                ).interest
                # Charged = accrued to the last charging day, except an increment below the policy's
                # minimum, which waits for a later step (rounding: a cent per posting at most).
                shortfall = expected_interest.amount - interest
                tolerance = Decimal("0.01") * len(records)
                assert -tolerance <= shortfall < terms.minimum + tolerance, (
                    name,
                    invoice.number,
                    interest,
                    expected_interest,
                )
            # the ledger holds exactly what the outbox says was charged
            fee_effects = [e for e in sandbox.effects() if e.kind in ("fee_line", "fee_invoice")]
            ledger_total = sum((e.amount or Decimal(0) for e in fee_effects), Decimal(0))
            outbox_total = sum(
                (
                    Money(sum((c.amount.amount for c in r.charges), Decimal(0)), r.currency).rounded().amount
                    for rs in fees_by_invoice.values()
                    for r in rs
                ),
                Decimal(0),
            )
            assert ledger_total == outbox_total, (name, ledger_total, outbox_total)
            assert len(fee_effects) == sum(len(rs) for rs in fees_by_invoice.values()), (
                name
            )  # one posting each

            # 3. Paid, disputed and paused invoices stopped.
            paid_invoice, pay_day = events[name]["paid"]
            disputed_invoice, dispute_day = events[name]["disputed"]
            pause_customer, pause_from, pause_until = events[name]["paused"]
            for record in done:
                day = day_of_action[record.key]
                if record.kind in ("reminder", "task", "agency", "fee") and record.step != "credit-limit":
                    if paid_invoice.id in record.invoice_ids:
                        assert day < pay_day, (name, "reminded after payment", record.step, day)
                    if disputed_invoice.id in record.invoice_ids:
                        assert day < dispute_day, (name, "reminded while disputed", record.step, day)
                    if record.customer_id == pause_customer:
                        assert not (pause_from <= day <= pause_until), (name, "reminded while paused", day)
            assert snapshot.invoices[paid_invoice.id].status is InvoiceStatus.PAID
            thanks = [r for r in done if r.kind == "thanks" and paid_invoice.id in r.invoice_ids]
            reminded = any(paid_invoice.id in r.invoice_ids and r.kind == "reminder" for r in done)
            assert len(thanks) == (1 if reminded else 0)

            # 4. Sandbox effects: no note or email twice for the same key.
            keyed = Counter(
                (e.kind, e.invoice_id, e.idempotency_key) for e in sandbox.effects() if e.idempotency_key
            )
            assert not [k for k, n in keyed.items() if n > 1], name
            notes = Counter((e.invoice_id, e.detail) for e in sandbox.effects() if e.kind == "note")
            assert max(notes.values(), default=1) == 1, name

        # 5. Every relance email reached the SMTP server exactly once.
        keys = Counter(message["X-Relance-Key"] for message in inbox.messages)
        assert inbox.messages, "no email reached the SMTP server"
        assert max(keys.values()) == 1
        emailed = {
            r.key for r in store.outbox.actions(status=ActionStatus.DONE) if r.outcome.get("message_id")
        }
        assert emailed == set(keys), (len(emailed), len(keys))
    finally:
        built.stop()
