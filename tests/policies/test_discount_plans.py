"""Early-payment discount credit notes and payment plans (policies/discount.py, payment_plans.py)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from policies.discount import discount_offer, discount_taken
from policies.model.actions import ActionKind, DoneAction
from policies.model.ledger import Customer, Instalment, Invoice, InvoiceStatus, Settlement
from policies.model.money import Money
from policies.payment_plans import PaymentPlan, equal_instalments, evaluate_plan
from policies.planning import plan_day
from tests.support.planning import POLICY_YAML, as_history, merge
from tests.support.rules import parse_policy

ISSUE = date(2024, 3, 1)
POLICY = parse_policy(
    POLICY_YAML.replace("exclusions:", "payment_plans: {acceleration_days: 15}\nexclusions:")
)


def invoice(
    invoice_id: str = "i1",
    total: str = "1000.00",
    balance: str | None = None,
    due: date = ISSUE + timedelta(days=30),
) -> Invoice:
    return Invoice(
        invoice_id,
        f"F-{invoice_id}",
        "c1",
        ISSUE,
        due,
        "EUR",
        Money.of(total, "EUR"),
        Money.of(balance if balance is not None else total, "EUR"),
        InvoiceStatus.OPEN,
    )


def plan(today: date, invoices: list[Invoice], **kwargs):
    return plan_day(
        policy=POLICY, today=today, customers={"c1": Customer("c1", "Acme")}, invoices=invoices, **kwargs
    )


# ------------------------------------------------------------------------------------------------ discount


def test_discount_offer_until_the_deadline_only():
    offer = discount_offer(invoice(), Decimal("2"), 10, ISSUE + timedelta(days=10))
    assert (
        offer is not None and offer.amount == Money.of("20.00", "EUR") and offer.pay == Money.of("980", "EUR")
    )
    assert discount_offer(invoice(), Decimal("2"), 10, ISSUE + timedelta(days=11)) is None
    assert discount_offer(invoice(balance="500"), Decimal("2"), 10, ISSUE) is None


def test_discount_taken_within_window_and_one_minor_unit():
    inv = invoice(balance="20.00")
    inside = [Settlement(ISSUE + timedelta(days=9), Decimal("979.99"))]
    assert discount_taken(inv, inside, Decimal("2"), 10) == Money.of("20.00", "EUR")
    late = [Settlement(ISSUE + timedelta(days=11), Decimal("980.00"))]
    assert discount_taken(inv, late, Decimal("2"), 10) is None
    short = [Settlement(ISSUE + timedelta(days=2), Decimal("900.00"))]
    assert discount_taken(invoice(balance="100.00"), short, Decimal("2"), 10) is None


def test_planner_proposes_one_credit_note_instead_of_reminders():
    inv = invoice(balance="20.00")
    settlements = {"i1": [Settlement(ISSUE + timedelta(days=5), Decimal("980.00"))]}
    today = ISSUE + timedelta(days=20)
    result = plan(today, [inv], settlements=settlements)
    (note,) = result.actions
    assert note.kind is ActionKind.CREDIT_NOTE and note.total == Money.of("20.00", "EUR")
    assert "early-payment discount" in note.reason
    again = plan(today + timedelta(days=30), [inv], settlements=settlements, history=as_history(result))
    assert again.actions == () and again.superseded == ()


# ------------------------------------------------------------------------------------------------ plans


def test_equal_instalments_add_up_exactly():
    parts = equal_instalments(Money.of("1000.00", "EUR"), 3, date(2024, 1, 31))
    assert [p.amount for p in parts] == [Decimal("333.33"), Decimal("333.33"), Decimal("333.34")]
    assert [p.due_date for p in parts] == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]


PLAN = PaymentPlan(
    "P1",
    "c1",
    ("i1", "i2"),
    (Instalment(date(2024, 5, 1), Decimal("500")), Instalment(date(2024, 6, 1), Decimal("500"))),
)
PLAN_INVOICES = [invoice("i1", "600"), invoice("i2", "400")]


def test_evaluate_plan_allocates_payments_in_order_and_accelerates():
    state = evaluate_plan(PLAN, Decimal("700"), date(2024, 5, 10), acceleration_days=15)
    assert [i.paid for i in state.instalments] == [Decimal("300"), Decimal("0")]
    assert state.active and state.missed(date(2024, 5, 10))[0].index == 1
    accelerated = evaluate_plan(PLAN, Decimal("700"), date(2024, 5, 16), acceleration_days=15)
    assert accelerated.accelerated_on == date(2024, 5, 16) and not accelerated.active
    assert evaluate_plan(PLAN, Decimal("0"), date(2024, 9, 1), acceleration_days=15).completed


def test_active_plan_stops_the_ladder_on_its_invoices():
    result = plan(date(2024, 4, 20), PLAN_INVOICES, payment_plans={"P1": PLAN})
    assert result.actions == () and result.superseded == ()
    assert all("payment plan P1" in skip.reason for skip in result.skipped)


def test_missed_instalment_is_dunned_on_its_own_once():
    today = date(2024, 5, 2)
    result = plan(today, PLAN_INVOICES, payment_plans={"P1": PLAN})
    (task,) = [a for a in result.actions if a.kind is ActionKind.TASK]
    assert task.instalment == 1 and task.step == "call" and task.invoice_ids == ("i1", "i2")
    assert "instalment 1 of 2 of payment plan P1" in task.reason
    assert not [a for a in result.actions if a.kind is ActionKind.FEE]
    history = as_history(result)
    assert plan(today, PLAN_INVOICES, payment_plans={"P1": PLAN}, history=history).actions == ()
    # paying the instalment stops its dunning
    paid = [invoice("i1", "600", balance="100"), invoice("i2", "400")]
    assert plan(date(2024, 5, 14), paid, payment_plans={"P1": PLAN}, history=history).actions == ()


def test_acceleration_resumes_the_ladder_from_the_acceleration_date():
    history = as_history(plan(date(2024, 5, 1), PLAN_INVOICES, payment_plans={"P1": PLAN}))
    accelerated_on = date(2024, 5, 16)
    result = plan(accelerated_on, PLAN_INVOICES, payment_plans={"P1": PLAN}, history=history)
    notices = [
        a for a in result.actions if a.kind in (ActionKind.REMINDER, ActionKind.TASK) and a.instalment is None
    ]
    assert [(a.step, a.invoice_ids) for a in notices] == [("call", ("i1", "i2"))]
    assert "acceleration clause" in notices[0].reason
    later = plan(
        accelerated_on + timedelta(days=15),
        PLAN_INVOICES,
        payment_plans={"P1": PLAN},
        history=merge(history, as_history(result)),
    )
    assert sorted(a.step for a in later.actions if a.kind is ActionKind.REMINDER) == ["email", "letter"]


def test_plan_instalment_history_is_per_instalment():
    done = {"i1": [DoneAction("k", ActionKind.TASK, ("i1", "i2"), "call", 1)]}
    result = plan(
        date(2024, 6, 2),
        [invoice("i1", "600", balance="100"), invoice("i2", "400")],
        payment_plans={"P1": PLAN},
        history=done,
    )
    assert [(a.step, a.instalment) for a in result.actions if a.kind is ActionKind.TASK] == [("call", 2)]
