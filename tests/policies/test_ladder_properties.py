"""Hypothesis properties of the ladder (issue #2 acceptance: never a step twice for the same history)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.ladder import CompiledLadder, StepSpec, choose
from policies.model.actions import ActionKind, DoneAction
from policies.model.ledger import Customer, Invoice, InvoiceStatus
from policies.model.money import Money
from policies.planning import plan_day
from tests.support.planning import POLICY_YAML, as_history, merge
from tests.support.rules import parse_policy

POLICY = parse_policy(POLICY_YAML)
LADDER = CompiledLadder.from_config("default", POLICY.ladder)
OFFSETS = {step.name: step.offset_days for step in LADDER.steps}
NOTICES = (ActionKind.REMINDER, ActionKind.TASK, ActionKind.AGENCY)
START = date(2024, 1, 1)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

invoice_specs = st.lists(
    st.tuples(
        st.integers(min_value=-20, max_value=100),  # due date, days after START
        st.sampled_from(["40.00", "120.00", "1200.00", "9999.99"]),  # balance
        st.sampled_from(["c1", "c2"]),
    ),
    min_size=1,
    max_size=4,
)


def build(specs: list[tuple[int, str, str]]) -> list[Invoice]:
    return [
        Invoice(
            f"i{n}",
            f"F-{n}",
            customer,
            START,
            START + timedelta(days=due),
            "EUR",
            Money.of(amount, "EUR"),
            Money.of(amount, "EUR"),
            InvoiceStatus.OPEN,
        )
        for n, (due, amount, customer) in enumerate(specs)
    ]


CUSTOMERS = {"c1": Customer("c1", "One"), "c2": Customer("c2", "Two")}


def plan(today: date, invoices: list[Invoice], history: dict[str, list[DoneAction]]):
    return plan_day(policy=POLICY, today=today, customers=CUSTOMERS, invoices=invoices, history=history)


def steps_sent(history: dict[str, list[DoneAction]], invoice_id: str) -> list[str]:
    return [d.step for d in history.get(invoice_id, ()) if d.kind in NOTICES and d.step]


@FAST
@given(invoice_specs, st.integers(min_value=0, max_value=150), st.integers(min_value=0, max_value=30))
def test_feeding_the_plan_back_never_proposes_a_step_again(specs, first_day, later):
    invoices = build(specs)
    today = START + timedelta(days=first_day)
    history = as_history(plan(today, invoices, {}))
    for day in (today, today + timedelta(days=later)):
        again = plan(day, invoices, history)
        for action in again.actions:
            if action.kind in NOTICES:
                for invoice_id in action.invoice_ids:
                    assert action.step not in steps_sent(history, invoice_id)
        for action in again.superseded:
            assert action.step not in steps_sent(history, action.invoice_ids[0])
        history = merge(history, as_history(again))
    if later == 0:
        assert plan(today, invoices, history).actions == ()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(invoice_specs, st.sets(st.integers(min_value=0, max_value=119), max_size=40))
def test_daily_replay_sends_each_step_at_most_once_and_only_after_its_offset(specs, skipped_days):
    """120 days, the daemon down on some days: each step at most once per invoice, never early, charges
    never decrease and what is charged never exceeds what has accrued."""
    invoices = build(specs)
    by_id = {invoice.id: invoice for invoice in invoices}
    history: dict[str, list[DoneAction]] = {}
    charged: dict[str, list] = {}
    for offset in range(120):
        if offset in skipped_days:
            continue
        today = START + timedelta(days=offset)
        result = plan(today, invoices, history)
        for action in result.actions:
            if action.kind in NOTICES:
                for invoice_id in action.invoice_ids:
                    assert action.step not in steps_sent(history, invoice_id)
                    assert today >= by_id[invoice_id].due_date + timedelta(days=OFFSETS[action.step])
            if action.kind is ActionKind.FEE:
                for charge in action.charges:
                    assert charge.amount.amount > 0
                    if charge.component == "interest":
                        charged.setdefault(action.invoice_ids[0], []).append((today, charge.amount.amount))
        history = merge(history, as_history(result, on=today))
    from policies.interest import compute_interest

    terms = POLICY.interest_terms()
    for invoice_id, items in charged.items():
        invoice = by_id[invoice_id]
        running = sum(amount for _, amount in items)
        last_day = items[-1][0]
        accrued = compute_interest(
            terms, total=invoice.total, due=invoice.due_date, until=last_day, settlements=(), b2c=False
        ).interest.amount
        assert running == accrued  # cumulative: what is charged is exactly what has accrued, never more


@FAST
@given(
    st.lists(st.integers(min_value=-30, max_value=120), min_size=1, max_size=7, unique=True),
    st.integers(min_value=-60, max_value=300),
    st.sets(st.integers(min_value=0, max_value=6)),
)
def test_choose_proposes_only_one_tier_beyond_what_was_done(offsets, today, done_indexes):
    steps = [
        StepSpec(f"s{i}", i, offset, "email", None, Decimal(0), (), "none")
        for i, offset in enumerate(sorted(offsets))
    ]
    ladder = CompiledLadder("p", steps)
    due = date(2024, 1, 1).toordinal()
    done = {i for i in done_indexes if i < len(steps)}
    positions = ladder.due_positions(due, due + today)
    choice = choose(positions, done, ladder.tier)
    assert not set(choice.chosen) & done and not set(choice.superseded) & done
    assert len({ladder.tier(p) for p in choice.chosen}) <= 1
    for position in choice.chosen:
        assert steps[position].offset_days <= today
        assert all(steps[position].offset_days >= steps[d].offset_days for d in done)
        assert all(steps[position].offset_days > steps[s].offset_days for s in choice.superseded)
