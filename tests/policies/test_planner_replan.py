"""Re-planning the same day must give the same actions: what sync relies on when it re-checks the
ledger before applying (issue #4 section 2). Regressions found through the Xero sandbox."""

from __future__ import annotations

from datetime import date, timedelta

from policies.model.actions import ActionKind, DoneAction, PlannedAction
from policies.model.ledger import Customer, Invoice, InvoiceLine, InvoiceStatus
from policies.model.money import Money
from policies.planning import Plan, plan_day
from tests.support.planning import POLICY_YAML
from tests.support.rules import parse_policy

TODAY = date(2024, 5, 20)


def _invoice(number: str, due: date, amount: str = "1200.00", lines: tuple[InvoiceLine, ...] = ()) -> Invoice:
    return Invoice(
        id=number,
        number=number,
        customer_id="c1",
        issue_date=due - timedelta(days=30),
        due_date=due,
        currency="EUR",
        total=Money.of(amount, "EUR"),
        balance=Money.of(amount, "EUR"),
        status=InvoiceStatus.OPEN,
        lines=lines,
    )


def _as_done(action: PlannedAction) -> DoneAction:
    return DoneAction(
        action.key,
        action.kind,
        action.invoice_ids,
        action.step,
        action.instalment,
        action.charges,
        action.due_on,
    )


def _plan(invoices: list[Invoice], history: dict[str, list[DoneAction]] | None = None) -> Plan:
    policy = parse_policy(POLICY_YAML)
    return plan_day(
        policy=policy,
        today=TODAY,
        customers={"c1": Customer("c1", "Client SA", ("a@b.fr",))},
        invoices=invoices,
        history=history or {},
    )


def test_replanning_after_recording_superseded_steps_keeps_the_rolled_charges() -> None:
    # 50 days late, nothing ever sent: 'letter' (interest + compensation) is superseded by 'finance'.
    invoice = _invoice("F-1", TODAY - timedelta(days=50))
    first = _plan([invoice])
    assert [a.step for a in first.superseded], "the gap must supersede earlier steps"
    history: dict[str, list[DoneAction]] = {"F-1": [_as_done(a) for a in first.superseded]}
    second = _plan([invoice], history)
    assert {a.key for a in second.actions} == {a.key for a in first.actions}
    fee_first = next(a for a in first.actions if a.kind is ActionKind.FEE)
    fee_second = next(a for a in second.actions if a.kind is ActionKind.FEE)
    assert {c.component for c in fee_first.charges} == {"interest", "compensation"}
    assert fee_second.charges == fee_first.charges


def test_relance_fee_invoices_are_not_chased_on_their_own() -> None:
    fee_invoice = _invoice(
        "FEE-1",
        TODAY - timedelta(days=40),
        "40.00",
        (InvoiceLine("fixed recovery compensation — F-1", Money.of("40", "EUR").amount, True),),
    )
    ordinary = _invoice(
        "F-2", TODAY - timedelta(days=40), "40.00", (InvoiceLine("consulting", Money.of("40", "EUR").amount),)
    )
    plan = _plan([fee_invoice, ordinary])
    chased = {i for a in plan.actions for i in a.invoice_ids}
    assert "FEE-1" not in chased
    assert "F-2" in chased
    assert any("fee invoice created by relance" in s.reason for s in plan.skipped)


def test_interest_is_never_charged_on_relance_fee_lines() -> None:
    # QuickBooks keeps the fee on the invoice: total 1,240 = 1,200 debt + 40 compensation line.
    due = TODAY - timedelta(days=40)
    plain = _invoice("F-3", due)
    with_fee = Invoice(
        id="F-3",
        number="F-3",
        customer_id="c1",
        issue_date=plain.issue_date,
        due_date=due,
        currency="EUR",
        total=Money.of("1240.00", "EUR"),
        balance=Money.of("1240.00", "EUR"),
        status=InvoiceStatus.OPEN,
        lines=(
            InvoiceLine("services", Money.of("1200", "EUR").amount),
            InvoiceLine("compensation", Money.of("40", "EUR").amount, True),
        ),
    )
    assert with_fee.principal == Money.of("1200.00", "EUR")

    def interest(invoice: Invoice) -> Money:
        plan = _plan([invoice])
        fee = next(a for a in plan.actions if a.kind is ActionKind.FEE)
        return next(c.amount for c in fee.charges if c.component == "interest")

    assert interest(with_fee) == interest(plain)


def test_fees_relance_posted_do_not_count_towards_credit_exposure() -> None:
    from policies.credit import exposure_by_customer

    debt = _invoice("F-4", TODAY + timedelta(days=10), "900.00")
    with_fee_line = Invoice(
        id="F-5",
        number="F-5",
        customer_id="c1",
        issue_date=debt.issue_date,
        due_date=debt.due_date,
        currency="EUR",
        total=Money.of("140.00", "EUR"),
        balance=Money.of("140.00", "EUR"),
        status=InvoiceStatus.OPEN,
        lines=(
            InvoiceLine("services", Money.of("100", "EUR").amount),
            InvoiceLine("compensation", Money.of("40", "EUR").amount, True),
        ),
    )
    fee_invoice = _invoice(
        "FEE-2", TODAY, "40.00", (InvoiceLine("interest", Money.of("40", "EUR").amount, True),)
    )
    exposure = exposure_by_customer([debt, with_fee_line, fee_invoice], "EUR")
    assert exposure["c1"].total == Money.of("1000.00", "EUR")
