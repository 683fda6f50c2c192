"""The planning engine (policies/planning/): the ladder rules of issue #2 section 4, one by one."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from policies.model.actions import ActionKind, Charge, DoneAction, PlannedAction
from policies.model.details import DiscountTerms, FeeDetails, NoticeDetails
from policies.model.ledger import Customer, CustomerKind, Invoice, InvoiceStatus, Settlement
from policies.model.money import Money
from policies.planning import Plan, plan_day
from sync.cli import cli
from tests.support.paths import EXAMPLE_POLICIES
from tests.support.planning import POLICY_YAML, as_history, merge
from tests.support.rules import parse_policy

FR_B2B = EXAMPLE_POLICIES / "fr-b2b.yaml"

RECURRING_YAML = POLICY_YAML.replace(
    'discount: {percent: "2", within_days: 10}', "recurring_fee: {fee: admin, every_days: 30}"
)

DUE = date(2024, 3, 31)


@pytest.fixture(scope="module")
def policy():
    return parse_policy(POLICY_YAML, "test-policy.yaml")


def customer(customer_id: str = "c1", **kwargs) -> Customer:
    return Customer(customer_id, kwargs.pop("name", f"Customer {customer_id}"), **kwargs)


def invoice(
    invoice_id: str = "i1",
    *,
    customer_id: str = "c1",
    due: date = DUE,
    total: str = "1200.00",
    balance: str | None = None,
    status: InvoiceStatus = InvoiceStatus.OPEN,
    currency: str = "EUR",
    issue: date | None = None,
) -> Invoice:
    return Invoice(
        invoice_id,
        f"F-{invoice_id}",
        customer_id,
        issue or due - timedelta(days=30),
        due,
        currency,
        Money.of(total, currency),
        Money.of(balance if balance is not None else total, currency),
        status,
    )


def plan(
    policy, today: date, invoices: list[Invoice], customers: list[Customer] | None = None, **kwargs
) -> Plan:
    people = {c.id: c for c in (customers or [customer(i.customer_id) for i in invoices])}
    return plan_day(policy=policy, today=today, customers=people, invoices=invoices, **kwargs)


def kinds(result: Plan, kind: ActionKind) -> list[PlannedAction]:
    return [a for a in result.actions if a.kind is kind]


# ----------------------------------------------------------------------------------------------- the ladder


def test_reason_names_step_lateness_balance_dispute_and_history(policy):
    result = plan(policy, DUE + timedelta(days=31), [invoice("118")])
    (notice,) = kinds(result, ActionKind.REMINDER)
    assert notice.step == "finance"
    assert notice.reason.startswith(
        "D+30 step 'finance': invoice F-118 is 31 days late, balance EUR 1,200.00; "
        "no dispute; step never sent"
    )


def test_pre_due_step_on_its_day_and_nothing_before(policy):
    assert plan(policy, DUE - timedelta(days=16), [invoice()]).actions == ()
    result = plan(policy, DUE - timedelta(days=15), [invoice()])
    (notice,) = kinds(result, ActionKind.REMINDER)
    assert (notice.step, notice.channel, notice.template) == ("before-due", "email", "pre_due")
    assert notice.due_on == DUE - timedelta(days=15)
    assert "is due in 15 days" in notice.reason
    assert result.superseded == ()


def test_gap_proposes_most_advanced_step_only_and_supersedes_the_rest(policy):
    result = plan(policy, DUE + timedelta(days=40), [invoice()])
    notices = [
        a for a in result.actions if a.kind in (ActionKind.REMINDER, ActionKind.TASK, ActionKind.AGENCY)
    ]
    assert [n.step for n in notices] == ["finance"]
    assert sorted(a.step for a in result.superseded) == ["before-due", "call", "email", "letter"]
    assert all(a.kind is ActionKind.SUPERSEDED for a in result.superseded)
    assert "supersedes" in notices[0].reason


def test_steps_sharing_an_offset_go_out_together(policy):
    result = plan(
        policy, DUE + timedelta(days=15), [invoice()], history=as_history(plan(policy, DUE, [invoice()]))
    )
    assert sorted(a.step for a in kinds(result, ActionKind.REMINDER)) == ["email", "letter"]
    assert result.superseded == ()


def test_replanning_with_the_plan_as_history_proposes_nothing_again(policy):
    today = DUE + timedelta(days=16)
    first = plan(policy, today, [invoice()])
    again = plan(policy, today, [invoice()], history=as_history(first))
    assert again.actions == () and again.superseded == ()


def test_never_back_down_the_ladder(policy):
    # 'finance' already done; the D+15 steps were never recorded: superseded, not sent.
    done = {"i1": [DoneAction("k", ActionKind.REMINDER, ("i1",), "finance", on=DUE + timedelta(days=30))]}
    result = plan(policy, DUE + timedelta(days=40), [invoice()], history=done)
    assert kinds(result, ActionKind.REMINDER) == []
    assert sorted(a.step for a in result.superseded) == ["before-due", "call", "email", "letter"]


def test_step_min_amount_skips_small_balances(policy):
    small = invoice(balance="100.00")
    result = plan(policy, DUE + timedelta(days=95), [small])
    notices = [a for a in result.actions if a.kind in (ActionKind.REMINDER, ActionKind.AGENCY)]
    assert [n.step for n in notices] == ["final"]
    assert "agency" not in {a.step for a in result.superseded}
    big = plan(policy, DUE + timedelta(days=95), [invoice()])
    assert [a.step for a in kinds(big, ActionKind.AGENCY)] == ["agency"]


def test_business_day_adjustment_moves_a_weekend_step():
    policy = parse_policy(
        POLICY_YAML.replace("sat, sun]", "]").replace(
            "{name: call, offset_days: 0, channel: call_task, template: due_today, business_days: none}",
            "{name: call, offset_days: 0, channel: call_task, template: due_today, business_days: next}",
        )
    )
    due = date(2024, 6, 1)  # a Saturday
    assert kinds(plan(policy, due, [invoice(due=due)]), ActionKind.TASK) == []
    (task,) = kinds(plan(policy, date(2024, 6, 3), [invoice(due=due)]), ActionKind.TASK)
    assert task.due_on == date(2024, 6, 3)


# ---------------------------------------------------------------------------------- what is never chased


@pytest.mark.parametrize("status", [InvoiceStatus.PAID, InvoiceStatus.VOID, InvoiceStatus.DRAFT])
def test_nothing_for_paid_void_or_draft_invoices(policy, status):
    balance = "0" if status is InvoiceStatus.PAID else None
    result = plan(policy, DUE + timedelta(days=31), [invoice(status=status, balance=balance)])
    assert result.actions == () and result.superseded == ()


def test_pre_due_steps_vanish_once_paid(policy):
    paid = invoice(balance="0.00")
    assert plan(policy, DUE - timedelta(days=15), [paid]).actions == ()


def test_disputed_invoice_is_skipped_until_the_dispute_ends(policy):
    today = DUE + timedelta(days=31)
    open_ended = plan(policy, today, [invoice()], disputes={"i1": None})
    assert open_ended.actions == () and "disputed" in open_ended.skipped[0].reason
    until = plan(policy, today, [invoice()], disputes={"i1": today})
    assert until.actions == ()
    ended = plan(policy, today, [invoice()], disputes={"i1": today - timedelta(days=1)})
    assert [a.step for a in kinds(ended, ActionKind.REMINDER)] == ["finance"]


def test_paused_and_excluded_customers_are_skipped(policy):
    today = DUE + timedelta(days=31)
    store_pause = plan(policy, today, [invoice()], pauses={"c1": today + timedelta(days=3)})
    assert store_pause.actions == () and "paused until" in store_pause.skipped[0].reason
    assert plan(policy, today, [invoice()], pauses={"c1": today - timedelta(days=1)}).actions != ()
    policy_pause = plan(policy, today, [invoice(customer_id="paused")])
    assert policy_pause.actions == () and "2024-06-30" in policy_pause.skipped[0].reason
    excluded = plan(policy, today, [invoice(customer_id="out")])
    assert excluded.actions == () and "excluded" in excluded.skipped[0].reason
    tagged = plan(policy, today, [invoice()], [customer(tags=("no-dunning",))])
    assert tagged.actions == () and "no-dunning" in tagged.skipped[0].reason


def test_balance_below_minimum_is_skipped(policy):
    result = plan(policy, DUE + timedelta(days=31), [invoice(balance="9.99")])
    assert result.actions == () and "below the minimum" in result.skipped[0].reason


# ------------------------------------------------------------------------------------------------ notices


def test_one_notice_per_customer_currency_and_step_with_a_note_and_fee_per_invoice(policy):
    invoices = [invoice("b"), invoice("a"), invoice("u", currency="USD"), invoice("x", customer_id="c2")]
    result = plan(
        policy,
        DUE + timedelta(days=15),
        invoices,
        history=as_history(plan(policy, DUE + timedelta(days=14), invoices)),
    )
    letters = [a for a in kinds(result, ActionKind.REMINDER) if a.step == "letter"]
    assert sorted(a.invoice_ids for a in letters) == [("a", "b"), ("u",), ("x",)]
    grouped = next(a for a in letters if a.invoice_ids == ("a", "b"))
    assert "2 invoices, EUR 2,400.00 in all" in grouped.reason
    assert isinstance(grouped.details, NoticeDetails)
    assert [line.id for line in grouped.details.invoices] == ["a", "b"]
    fees = [a for a in kinds(result, ActionKind.FEE) if a.step == "letter"]
    assert sorted(a.invoice_ids for a in fees) == [("a",), ("b",), ("u",), ("x",)]
    notes = [
        a for a in kinds(result, ActionKind.NOTE) if getattr(a.details, "notice_key", None) == grouped.key
    ]
    assert sorted(a.invoice_ids for a in notes) == [("a",), ("b",)]
    assert len({a.key for a in result.actions}) == len(result.actions)


def test_keys_are_deterministic_and_depend_on_the_connection(policy):
    invoices = [invoice("a"), invoice("b")]
    today = DUE + timedelta(days=31)
    first = plan(policy, today, invoices)
    second = plan(policy, today, list(reversed(invoices)))
    assert [a.key for a in first.actions] == [a.key for a in second.actions]
    other = plan(policy, today, invoices, connection="qbo-2")
    assert not {a.key for a in first.actions} & {a.key for a in other.actions}


# ------------------------------------------------------------------------------------------------ charges


def test_charges_are_cumulative_and_compensation_is_charged_once(policy):
    invoices = [invoice()]
    day15 = plan(policy, DUE + timedelta(days=15), invoices, history=as_history(plan(policy, DUE, invoices)))
    (fee15,) = kinds(day15, ActionKind.FEE)
    components = {c.component: c.amount for c in fee15.charges}
    # FR statutory 2024 S1: ECB 4.50 + 10 = 14.50 %; 1200 x 14.5 % x 15 / 365 = 7.15
    assert components == {"interest": Money.of("7.15", "EUR"), "compensation": Money.of("40.00", "EUR")}
    history = merge(as_history(plan(policy, DUE, invoices)), as_history(day15))
    day30 = plan(policy, DUE + timedelta(days=30), invoices, history=history)
    (fee30,) = kinds(day30, ActionKind.FEE)
    # accrued 30 days = 14.30; 7.15 already charged -> 7.15 more, and no second compensation
    assert [(c.component, c.amount) for c in fee30.charges] == [("interest", Money.of("7.15", "EUR"))]
    assert "already charged" in fee30.reason
    again = plan(policy, DUE + timedelta(days=30), invoices, history=merge(history, as_history(day30)))
    assert kinds(again, ActionKind.FEE) == []


def test_gap_rolls_superseded_interest_and_compensation_into_the_step_proposed(policy):
    result = plan(policy, DUE + timedelta(days=30), [invoice()])
    (fee,) = kinds(result, ActionKind.FEE)
    assert {c.component for c in fee.charges} == {"interest", "compensation"}


def test_b2c_customers_get_no_compensation(policy):
    result = plan(
        policy,
        DUE + timedelta(days=15),
        [invoice()],
        [customer(kind=CustomerKind.B2C)],
        history=as_history(plan(policy, DUE, [invoice()])),
    )
    for fee in kinds(result, ActionKind.FEE):
        assert "compensation" not in {c.component for c in fee.charges}


def test_named_fee_once_per_step(policy):
    today = DUE + timedelta(days=75)
    history = as_history(plan(policy, DUE + timedelta(days=74), [invoice()]))
    (fee,) = kinds(plan(policy, today, [invoice()], history=history), ActionKind.FEE)
    assert Charge("fee", Money.of("8.50", "EUR"), "notice") in fee.charges
    # the fee was posted but the notice never went out: the notice is proposed again, the fee is not
    fee_only = merge(
        history,
        {
            "i1": [
                DoneAction(
                    "other",
                    ActionKind.FEE,
                    ("i1",),
                    "final",
                    None,
                    (Charge("fee", Money.of("8.50", "EUR"), "notice"),),
                    today,
                )
            ]
        },
    )
    retry = plan(policy, today, [invoice()], history=fee_only)
    assert [a.step for a in kinds(retry, ActionKind.REMINDER)] == ["final"]
    assert all(c.component != "fee" for a in kinds(retry, ActionKind.FEE) for c in a.charges)


def test_recurring_fee_every_n_days_after_the_first_charge():
    policy = parse_policy(RECURRING_YAML)
    first_charge = DUE + timedelta(days=15)
    history = {
        "i1": [
            DoneAction("r", ActionKind.REMINDER, ("i1",), "letter", on=first_charge),
            DoneAction("e", ActionKind.REMINDER, ("i1",), "email", on=first_charge),
            DoneAction(
                "f",
                ActionKind.FEE,
                ("i1",),
                "letter",
                None,
                (Charge("compensation", Money.of("40", "EUR")),),
                first_charge,
            ),
            DoneAction("fm", ActionKind.REMINDER, ("i1",), "finance", on=DUE + timedelta(days=30)),
        ]
    }
    before = plan(policy, first_charge + timedelta(days=29), [invoice()], history=history)
    assert not [a for a in kinds(before, ActionKind.FEE) if a.step == "recurring:admin"]
    due = plan(policy, first_charge + timedelta(days=30), [invoice()], history=history)
    (recurring,) = [a for a in kinds(due, ActionKind.FEE) if a.step == "recurring:admin"]
    assert recurring.charges == (Charge("fee", Money.of("5.00", "EUR"), "admin"),)
    assert isinstance(recurring.details, FeeDetails) and recurring.details.period == 1
    done = merge(history, as_history(due))
    assert not [
        a
        for a in kinds(
            plan(policy, first_charge + timedelta(days=31), [invoice()], history=done), ActionKind.FEE
        )
        if a.step == "recurring:admin"
    ]
    later = plan(policy, first_charge + timedelta(days=60), [invoice()], history=done)
    recurring_later = [a for a in kinds(later, ActionKind.FEE) if a.step == "recurring:admin"]
    assert [getattr(a.details, "period", None) for a in recurring_later] == [2]


# ------------------------------------------------------------------------------------------------ thanks


def test_thanks_once_when_a_reminded_invoice_is_paid(policy):
    history = as_history(plan(policy, DUE - timedelta(days=15), [invoice()]))
    paid = invoice(balance="0", status=InvoiceStatus.PAID)
    result = plan(policy, DUE - timedelta(days=5), [paid], history=history)
    (thanks,) = kinds(result, ActionKind.THANKS)
    assert thanks.invoice_ids == ("i1",)
    assert (
        kinds(plan(policy, DUE, [paid], history=merge(history, as_history(result))), ActionKind.THANKS) == []
    )
    assert kinds(plan(policy, DUE, [paid]), ActionKind.THANKS) == []  # never reminded: no thanks


def test_pre_due_notice_carries_the_discount_offer_while_open(policy):
    inv = invoice(due=date(2024, 3, 25), issue=date(2024, 3, 1))
    result = plan(policy, date(2024, 3, 10), [inv])
    (notice,) = kinds(result, ActionKind.REMINDER)
    assert isinstance(notice.details, NoticeDetails)
    assert notice.details.invoices[0].discount == DiscountTerms(
        percent=Decimal("2"), amount=Decimal("24.00"), deadline=date(2024, 3, 11), pay=Decimal("1176.00")
    )
    late = plan(policy, date(2024, 3, 12), [invoice(due=date(2024, 3, 27), issue=date(2024, 3, 1))])
    late_notice = kinds(late, ActionKind.REMINDER)[0].details
    assert isinstance(late_notice, NoticeDetails) and late_notice.invoices[0].discount is None


# ------------------------------------------------------------------------------------------------ the CLI


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "invoices.json"
    path.write_text(json.dumps(data))
    return path


SAMPLE = [
    {
        "id": "118",
        "number": "F-2024-118",
        "customer": {
            "id": "42",
            "name": "Acme SARL",
            "kind": "b2b",
            "country": "FR",
            "tags": [],
            "emails": ["ap@acme.fr"],
            "language": "fr",
        },
        "issue_date": "2024-03-01",
        "due_date": "2024-03-31",
        "currency": "EUR",
        "total": "1200.00",
        "balance": "1200.00",
        "status": "open",
        "payments": [],
    }
]


def test_cli_plan_prints_actions_with_reasons(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "plan",
            "--invoices",
            str(_write(tmp_path, SAMPLE)),
            "--policy",
            str(FR_B2B),
            "--today",
            "2024-05-01",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "finance-manager" in result.output and "F-2024-118" in result.output
    assert "superseded" in result.output


def test_cli_plan_json_lists_actions(tmp_path):
    result = CliRunner().invoke(
        cli,
        [
            "plan",
            "--invoices",
            str(_write(tmp_path, SAMPLE)),
            "--policy",
            str(FR_B2B),
            "--today",
            "2024-05-01",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    actions = json.loads(result.output)
    reminder = next(a for a in actions if a["kind"] == "reminder")
    assert reminder["step"] == "finance-manager" and reminder["invoice_ids"] == ["118"]
    fee = next(a for a in actions if a["kind"] == "fee")
    assert {c["component"] for c in fee["charges"]} == {"interest", "compensation"}
    assert {a["kind"] for a in actions} >= {"reminder", "fee", "note", "superseded"}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda item: item.update(due_date="2024-02-30"), "item 1: [1].due_date: expected a date"),
        (lambda item: item.update(total=12.5), "item 1: [1].total: write amounts as strings"),
        (lambda item: item["customer"].pop("id"), "item 1: [1].customer.id: missing"),
        (lambda item: item.update(status="late"), "item 1: [1].status: expected open, paid"),
    ],
)
def test_cli_plan_bad_invoice_names_item_and_field(tmp_path, mutate, expected):
    broken = json.loads(json.dumps(SAMPLE[0]))
    broken["id"] = "119"
    mutate(broken)
    path = _write(tmp_path, [SAMPLE[0], broken])
    result = CliRunner().invoke(
        cli, ["plan", "--invoices", str(path), "--policy", str(FR_B2B), "--today", "2024-05-01"]
    )
    assert result.exit_code != 0
    assert expected in str(result.exception)
    assert len(str(result.exception).splitlines()) == 1


def test_plan_from_json_rejects_non_json(tmp_path):
    from policies.model.errors import RelanceError
    from sync.commands.planning import plan_from_json
    from tests.support.rules import load_policy

    with pytest.raises(RelanceError, match=r"invoices.json:1: not valid JSON"):
        plan_from_json("[{", load_policy(FR_B2B), date(2024, 5, 1))


def test_settlements_reduce_interest_principal(policy):
    inv = invoice(balance="600.00")
    paid_half = {"i1": [Settlement(DUE, Decimal("600.00"))]}
    result = plan(policy, DUE + timedelta(days=30), [inv], settlements=paid_half)
    (fee,) = kinds(result, ActionKind.FEE)
    interest = next(c.amount for c in fee.charges if c.component == "interest")
    assert interest == Money.of("7.15", "EUR")  # 600 x 14.5 % x 30 / 365
