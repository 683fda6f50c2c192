"""Credit limits (policies/credit.py): exposure, breaches and their actions, limit suggestions."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from policies.config import CustomerSettings
from policies.credit import check_limit, exposure_by_customer, suggest_limit
from policies.model.actions import ActionKind
from policies.model.ledger import Customer, Invoice, InvoiceStatus, Settlement
from policies.model.money import Money
from policies.planning import plan_day
from policies.planning.credit_limits import breach_action
from tests.support.planning import POLICY_YAML
from tests.support.rules import parse_policy

TODAY = date(2024, 6, 1)


def invoice(
    invoice_id: str,
    amount: str,
    *,
    customer_id: str = "c1",
    currency: str = "EUR",
    status: InvoiceStatus = InvoiceStatus.OPEN,
    due: date = TODAY + timedelta(days=10),
    balance: str | None = None,
    issue: date | None = None,
) -> Invoice:
    return Invoice(
        invoice_id,
        f"F-{invoice_id}",
        customer_id,
        issue or due - timedelta(days=30),
        due,
        currency,
        Money.of(amount, currency),
        Money.of(balance if balance is not None else amount, currency),
        status,
    )


def test_exposure_counts_open_balances_in_company_currency_and_reports_others():
    invoices = [
        invoice("a", "600"),
        invoice("b", "500", balance="200"),
        invoice("p", "900", balance="0", status=InvoiceStatus.PAID),
        invoice("d", "700", status=InvoiceStatus.DRAFT),
        invoice("v", "800", status=InvoiceStatus.VOID),
        invoice("u", "1000", currency="USD"),
    ]
    exposure = exposure_by_customer(invoices, "EUR")["c1"]
    assert exposure.total == Money.of("800", "EUR")
    assert exposure.invoice_ids == ("a", "b")
    assert exposure.other_currencies == {"USD": Decimal("1000")}
    with_drafts = exposure_by_customer(invoices, "EUR", include_drafts=True)["c1"]
    assert with_drafts.total == Money.of("1500", "EUR")


def test_breach_only_above_the_limit():
    exposure = exposure_by_customer([invoice("a", "1000")], "EUR")["c1"]
    assert check_limit(exposure, Money.of("1000", "EUR"), "alert") is None
    assert check_limit(exposure, None, "alert") is None
    breach = check_limit(exposure, Money.of("999.99", "EUR"), "hold")
    assert breach is not None and breach.action == "hold"
    assert "exceeded by EUR 0.01" in breach.reason


def test_breach_actions_are_keyed_per_customer_limit_and_week():
    exposure = exposure_by_customer([invoice("a", "1000")], "EUR")["c1"]
    call = check_limit(exposure, Money.of("500", "EUR"), "call_task")
    assert call is not None
    monday, sunday, next_monday = date(2024, 6, 3), date(2024, 6, 9), date(2024, 6, 10)
    task = breach_action(call, monday)
    assert task.kind is ActionKind.TASK and task.channel == "call_task"
    assert breach_action(call, sunday).key == task.key
    assert breach_action(call, next_monday).key != task.key
    alert = check_limit(exposure, Money.of("500", "EUR"), "alert")
    assert alert is not None and breach_action(alert, monday).kind is ActionKind.CREDIT_ALERT


def test_planner_reports_breaches_with_call_task():
    policy = parse_policy(
        POLICY_YAML.replace(
            'credit: {default_limit: "100000"}', 'credit: {default_limit: "1000", on_breach: call_task}'
        )
    )
    customers = {"c1": Customer("c1", "Big"), "c2": Customer("c2", "Small")}
    invoices = [invoice("a", "800"), invoice("b", "400"), invoice("c", "900", customer_id="c2")]
    result = plan_day(policy=policy, today=TODAY, customers=customers, invoices=invoices)
    assert [b.customer_id for b in result.credit] == ["c1"]
    (task,) = [a for a in result.actions if a.kind is ActionKind.TASK]
    assert task.customer_id == "c1" and task.invoice_ids == ("a", "b") and task.step == "credit-limit"


def _settings(limit: str | None) -> CustomerSettings:
    policy = parse_policy(POLICY_YAML)
    base = policy.settings_for(Customer("c1", "x"))
    return CustomerSettings(
        base.group,
        base.ladder,
        base.ladder_name,
        Decimal(limit) if limit else None,
        base.language,
        base.kind,
        False,
        None,
    )


def _paid(invoice_id: str, due: date, paid_on: date) -> tuple[Invoice, Settlement]:
    inv = invoice(invoice_id, "100", due=due, balance="0", status=InvoiceStatus.PAID)
    return inv, Settlement(paid_on, Decimal("100"))


def test_suggestion_raises_the_limit_for_customers_who_pay_on_time():
    pairs = [
        _paid(str(n), TODAY - timedelta(days=30 * n), TODAY - timedelta(days=30 * n + 2)) for n in range(1, 5)
    ]
    invoices = [inv for inv, _ in pairs]
    settlements = {inv.id: [s] for inv, s in pairs}
    suggestion = suggest_limit(Customer("c1", "x"), invoices, settlements, _settings("10000"), TODAY)
    assert suggestion is not None
    assert suggestion.suggested == Money.of("12000.00", "EUR") and suggestion.changes
    assert "4 of 4 invoices paid on or before their due date" in suggestion.reasons[0]


def test_suggestion_lowers_the_limit_after_a_late_payment():
    pairs = [
        _paid(str(n), TODAY - timedelta(days=60 * n), TODAY - timedelta(days=60 * n)) for n in range(1, 4)
    ]
    pairs.append(_paid("late", TODAY - timedelta(days=100), TODAY - timedelta(days=55)))
    settlements = {inv.id: [s] for inv, s in pairs}
    suggestion = suggest_limit(
        Customer("c1", "x"), [i for i, _ in pairs], settlements, _settings("10000"), TODAY
    )
    assert suggestion is not None and suggestion.suggested == Money.of("7000.00", "EUR")
    assert "F-late" in suggestion.reasons[0] and "45 days" in suggestion.reasons[0]


def test_suggestion_keeps_the_limit_without_enough_history_or_limit():
    inv, settlement = _paid("1", TODAY - timedelta(days=10), TODAY - timedelta(days=12))
    suggestion = suggest_limit(Customer("c1", "x"), [inv], {"1": [settlement]}, _settings("10000"), TODAY)
    assert suggestion is not None and not suggestion.changes
    assert suggest_limit(Customer("c1", "x"), [inv], {"1": [settlement]}, _settings(None), TODAY) is None


def test_planner_suggestions_only_list_changes():
    policy = parse_policy(
        POLICY_YAML.replace(
            'credit: {default_limit: "100000"}',
            'credit: {default_limit: "1000", suggestion: {enabled: true}}',
        )
    )
    late = invoice("late", "100", due=TODAY - timedelta(days=40))
    result = plan_day(
        policy=policy,
        today=TODAY,
        customers={"c1": Customer("c1", "x"), "c2": Customer("c2", "y")},
        invoices=[late, invoice("ok", "50", customer_id="c2")],
    )
    assert [(s.customer_id, s.suggested) for s in result.suggestions] == [("c1", Money.of("700.00", "EUR"))]
