"""The applier on its own (sync/apply.py): a recording in-memory connector, the real state store and
real channels writing to a temporary outbox. Claim before the effect, record after; fees as lines
or fee invoices by `fee_mode`; notes after their notice; what a raised call, the day limit and a
crash leave behind."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connectors.base import (
    Capabilities,
    ConnectorError,
    Cursor,
    DayLimitReached,
    FeeInvoice,
    FeeLine,
    LedgerEmail,
    Note,
    Page,
    PullStream,
    Verification,
    WriteRequest,
    WriteResult,
    WriteStatus,
)
from policies.config import Policy
from policies.model.actions import ActionKind, ActionStatus, Charge, PlannedAction
from policies.model.details import NoteDetails, NoticeDetails, NoticeLine
from policies.model.ledger import Customer, CustomerKind, Invoice, InvoiceStatus
from policies.model.money import Money
from sync.apply import Applier, Target
from sync.channels.context import CompanyInfo
from sync.channels.sender import ChannelDispatch, RunKit
from sync.rulebook import channel_plugins
from sync.run_report import ConnectionRun, RunOptions
from sync.store import Store, open_store
from tests.support.paths import REPO
from tests.support.rules import RULEBOOK, load_policy

CONN = "acme"
TODAY = date(2026, 3, 2)
EXAMPLES = REPO / "examples" / "policies"
QBO_LIKE = Capabilities(
    fee_line_on_invoice=True,
    fee_invoice=True,
    ledger_email=True,
    ledger_email_idempotent=False,
    notes=True,
    credit_notes=True,
    write_batch_size=30,
)


@dataclass
class RecordingConnector:
    """A Connector that records every write; `fail_with` makes the next write() raise."""

    capabilities: Capabilities = QBO_LIKE
    name: str = CONN
    ledger: str = "fake"
    writes: list[WriteRequest] = field(default_factory=list)
    fail_with: Exception | None = None
    verdicts: dict[str, Verification] = field(default_factory=dict)

    def pull(self, cursor: Cursor | None, *, history_from: date) -> PullStream:
        raise NotImplementedError

    def write(self, requests: Sequence[WriteRequest]) -> list[WriteResult]:
        if self.fail_with is not None:
            error, self.fail_with = self.fail_with, None
            raise error
        self.writes.extend(requests)
        return [WriteResult(r.key, WriteStatus.DONE, ledger_id=f"L-{r.key[:6]}") for r in requests]

    def verify(self, request: WriteRequest, *, since: datetime) -> Verification:
        return self.verdicts.get(request.key, Verification.UNKNOWN)

    def close(self) -> None:
        pass


CUSTOMER = Customer(id="C1", name="Dupont SARL", emails=("ap@dupont.example",), kind=CustomerKind.B2B)
INVOICE = Invoice(
    id="I1",
    number="F-001",
    customer_id="C1",
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
    opened.ledger.upsert_records(CONN, Page("customer", (CUSTOMER,)))
    opened.ledger.upsert_records(CONN, Page("invoice", (INVOICE,)))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def policy() -> Policy:
    return load_policy(EXAMPLES / "fr-b2b.yaml")


def applier(
    store: Store,
    policy: Policy,
    connector: RecordingConnector,
    tmp_path: Path,
    *,
    fee_mode: str = "line",
    options: RunOptions | None = None,
    clock: object = None,
) -> Applier:
    kit = RunKit(
        connection=CONN,
        store=store,
        outbox_dir=tmp_path / "outbox",
        template_dirs=(),
        email_settings=lambda: {"transport": "file", "file_dir": str(tmp_path / "outbox" / "emails")},
    )
    dispatch = ChannelDispatch(
        kit, channel_plugins(), lambda: CompanyInfo(name="Exemple SAS", country="FR", law="fr"), TODAY
    )
    return Applier(
        store=store,
        connector=connector,  # structurally a Connector
        target=Target(CONN, fee_mode),
        policy=policy,
        today=TODAY,
        channels=dispatch,
        report=ConnectionRun(CONN, "fake"),
        options=options or RunOptions(),
        clock=clock,  # type: ignore[arg-type]
    )


def fee(key: str = "fee1") -> PlannedAction:
    return PlannedAction(
        key=key,
        kind=ActionKind.FEE,
        customer_id="C1",
        currency="EUR",
        invoice_ids=("I1",),
        reason="late-letter: interest and compensation",
        step="late-letter",
        charges=(
            Charge("interest", Money.of("12.34", "EUR"), "interest to 2026-03-02"),
            Charge("compensation", Money.of("40", "EUR"), "fixed recovery compensation"),
        ),
        due_on=TODAY,
    )


def notice(key: str = "notice1", channel: str = "email") -> PlannedAction:
    return PlannedAction(
        key=key,
        kind=ActionKind.REMINDER,
        customer_id="C1",
        currency="EUR",
        invoice_ids=("I1",),
        reason="D+15 step 'late-letter'",
        step="late-letter",
        channel=channel,
        template="late_1",
        due_on=TODAY,
        details=NoticeDetails(
            ladder="default",
            offset_days=15,
            customer_name="Dupont SARL",
            language="fr",
            balance=Decimal("1200.00"),
            invoices=(NoticeLine(id="I1", number="F-001", due_date=date(2026, 1, 31), days_late=30),),
        ),
    )


def note(parent: PlannedAction, key: str = "note1") -> PlannedAction:
    return PlannedAction(
        key=key,
        kind=ActionKind.NOTE,
        customer_id="C1",
        currency="EUR",
        invoice_ids=("I1",),
        reason=f"note on the invoice: relance {parent.channel} '{parent.step}'",
        step=parent.step,
        channel=parent.channel,
        due_on=TODAY,
        details=NoteDetails(notice_key=parent.key, notice_kind=parent.kind),
    )


def status(store: Store, key: str) -> ActionStatus:
    record = store.outbox.action(key)
    assert record is not None
    return record.status


def test_a_fee_goes_on_the_invoice_in_fee_mode_line(store: Store, policy: Policy, tmp_path: Path) -> None:
    connector = RecordingConnector()
    run = applier(store, policy, connector, tmp_path, fee_mode="line")
    store.outbox.record_planned(CONN, [fee()])
    run.apply([fee()])
    [request] = connector.writes
    assert isinstance(request, FeeLine) and request.invoice_id == "I1" and request.amount == Decimal("52.34")
    assert status(store, "fee1") is ActionStatus.DONE
    assert run.report.applied == 1 and run.report.fees_total == {"EUR": Decimal("52.34")}


def test_a_fee_becomes_a_fee_invoice_in_fee_mode_invoice(
    store: Store, policy: Policy, tmp_path: Path
) -> None:
    connector = RecordingConnector()  # the ledger could take a line: the connection says no
    run = applier(store, policy, connector, tmp_path, fee_mode="invoice")
    store.outbox.record_planned(CONN, [fee()])
    run.apply([fee()])
    [request] = connector.writes
    assert isinstance(request, FeeInvoice) and request.reference == "F-001"
    assert [amount for _, amount in request.lines] == [Decimal("12.34"), Decimal("40.00")]


def test_a_ledger_that_takes_no_fee_lines_gets_fee_invoices(
    store: Store, policy: Policy, tmp_path: Path
) -> None:
    connector = RecordingConnector(capabilities=replace(QBO_LIKE, fee_line_on_invoice=False))
    run = applier(store, policy, connector, tmp_path, fee_mode="line")
    store.outbox.record_planned(CONN, [fee()])
    run.apply([fee()])
    assert isinstance(connector.writes[0], FeeInvoice)


def test_a_note_waits_for_its_notice_and_follows_it(store: Store, policy: Policy, tmp_path: Path) -> None:
    connector = RecordingConnector()
    run = applier(store, policy, connector, tmp_path)
    letter, its_note = notice(), note(notice())
    store.outbox.record_planned(CONN, [its_note])
    run.apply([its_note])  # the notice was never planned: the note must not go alone
    assert connector.writes == [] and status(store, "note1") is ActionStatus.PLANNED
    store.outbox.record_planned(CONN, [letter])
    run.apply([letter, its_note])
    assert status(store, "notice1") is ActionStatus.DONE
    assert [type(r) for r in connector.writes] == [Note]
    assert list((tmp_path / "outbox" / "emails").glob("*.eml"))  # the notice went out first


def test_claim_happens_before_the_effect_and_a_done_action_is_not_redone(
    store: Store, policy: Policy, tmp_path: Path
) -> None:
    connector = RecordingConnector()
    run = applier(store, policy, connector, tmp_path)
    store.outbox.record_planned(CONN, [fee()])
    run.apply([fee()])
    run.apply([fee()])
    assert len(connector.writes) == 1
    record = store.outbox.action("fee1")
    assert record is not None and record.attempts == 1 and record.outcome["applied_on"] == "2026-03-02"


def test_a_raised_call_is_uncertain_for_unsafe_requests_and_failed_for_idempotent_ones(
    store: Store, policy: Policy, tmp_path: Path
) -> None:
    connector = RecordingConnector(fail_with=ConnectorError("connection reset"))
    run = applier(store, policy, connector, tmp_path)
    email, charge = notice("send1", channel="ledger_email"), fee()
    store.outbox.record_planned(CONN, [email, charge])
    run.apply([email, charge])
    assert status(store, "send1") is ActionStatus.UNCERTAIN  # QBO's invoice send has no idempotency
    assert status(store, "fee1") is ActionStatus.FAILED  # same key next time: safe to retry
    assert run.report.uncertain == 1 and run.report.failed == 1


def test_the_day_limit_releases_what_it_claimed(store: Store, policy: Policy, tmp_path: Path) -> None:
    connector = RecordingConnector(fail_with=DayLimitReached("day limit", reset_at=None))
    run = applier(store, policy, connector, tmp_path)
    store.outbox.record_planned(CONN, [fee()])
    with pytest.raises(DayLimitReached):
        run.apply([fee()])
    assert status(store, "fee1") is ActionStatus.PLANNED


def test_a_ledger_email_carries_the_delivery_baseline(store: Store, policy: Policy, tmp_path: Path) -> None:
    connector = RecordingConnector()
    run = applier(store, policy, connector, tmp_path)
    email = notice("send1", channel="ledger_email")
    store.outbox.record_planned(CONN, [email])
    run.apply([email])
    [request] = connector.writes
    assert isinstance(request, LedgerEmail) and request.to == "ap@dupont.example"
    record = store.outbox.action("send1")
    assert record is not None and isinstance(record.details, NoticeDetails)
    assert record.details.previous_delivery == (("I1", None),)  # recorded before the send


def test_after_a_crash_a_send_is_verified_before_any_resend(
    store: Store, policy: Policy, tmp_path: Path
) -> None:
    email = notice("send1", channel="ledger_email")
    store.outbox.record_planned(CONN, [email])
    assert store.outbox.claim("send1")  # the killed run claimed it, then died
    unknown = RecordingConnector()
    run = applier(store, policy, unknown, tmp_path)
    run.settle_in_flight()
    assert unknown.writes == [] and status(store, "send1") is ActionStatus.UNCERTAIN

    store.outbox.record_planned(CONN, [notice("send2", channel="ledger_email")])
    assert store.outbox.claim("send2")
    happened = RecordingConnector(verdicts={"send2:I1": Verification.HAPPENED})
    applier(store, policy, happened, tmp_path).settle_in_flight()
    assert happened.writes == [] and status(store, "send2") is ActionStatus.DONE

    store.outbox.record_planned(CONN, [notice("send3", channel="ledger_email")])
    assert store.outbox.claim("send3")
    not_sent = RecordingConnector(verdicts={"send3:I1": Verification.NOT_HAPPENED})
    applier(store, policy, not_sent, tmp_path).settle_in_flight()
    assert [r.key for r in not_sent.writes] == ["send3:I1"]  # provably not sent: sent now, once
    assert status(store, "send3") is ActionStatus.DONE


def test_stale_planned_actions_are_cancelled_but_a_sent_notice_keeps_its_fee(
    store: Store, policy: Policy, tmp_path: Path
) -> None:
    connector = RecordingConnector()
    run = applier(store, policy, connector, tmp_path)
    letter, later_step = notice(), replace(fee("fee2"), step="final-notice")
    store.outbox.record_planned(CONN, [letter, fee(), later_step])
    run.apply([letter])  # the notice went out; then the run died before its fee
    kept = run.cancel_stale([])  # today's fresh plan no longer proposes the step (it is done)
    assert [a.key for a in kept] == ["fee1"]  # fee1 is this step's: it still goes with its notice
    assert status(store, "fee2") is ActionStatus.SUPERSEDED and run.report.cancelled == 1


class Fixed:
    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        return self.moment


def test_unattended_runs_defer_emails_outside_the_send_window(
    store: Store, policy: Policy, tmp_path: Path
) -> None:
    night = Fixed(datetime(2026, 3, 2, 22, 30, tzinfo=UTC))  # 23:30 in Paris; window 09:00-18:00
    run = applier(
        store,
        policy,
        RecordingConnector(),
        tmp_path,
        options=RunOptions(respect_send_window=True),
        clock=night,
    )
    store.outbox.record_planned(CONN, [notice(), fee()])
    run.apply([notice(), fee()])
    assert status(store, "notice1") is ActionStatus.PLANNED and run.report.deferred == 1
    assert status(store, "fee1") is ActionStatus.DONE  # not an e-mail: it goes on
    day = Fixed(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    later = applier(
        store, policy, RecordingConnector(), tmp_path, options=RunOptions(respect_send_window=True), clock=day
    )
    later.apply([notice()])
    assert status(store, "notice1") is ActionStatus.DONE


def test_the_rulebook_marks_which_channels_are_emails() -> None:
    assert {name for name, spec in RULEBOOK.channels.items() if spec.email} == {"email", "ledger_email"}
