"""The policy model: the shipped examples, resolution per customer, business days, interest terms, lint."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from policies.config import (
    BusinessCalendar,
    BusinessDayRule,
    CustomerSettings,
    Policy,
)
from policies.lint import check_policy_text, lint_policy
from policies.model.errors import PolicyError
from policies.model.ledger import Customer, CustomerKind
from sync.channels.shipped import Channel
from sync.commands.policy_tools import policy_schema
from tests.support.paths import EXAMPLE_POLICIES
from tests.support.rules import RULEBOOK, load_policy, parse_policy

EXAMPLE_NAMES = ["fr-b2b", "uk-b2b", "de-b2b", "us-net30"]

MINIMAL = """\
version: 1
company: {name: X, country: FR, currency: EUR, holidays: FR}
ladder:
  steps:
    - {name: late, offset_days: 10, channel: email, template: late_1}
"""


def policy(extra: str = "", base: str = MINIMAL) -> Policy:
    return parse_policy(base + extra, "test.yaml")


@pytest.fixture(scope="module")
def fr() -> Policy:
    return load_policy(EXAMPLE_POLICIES / "fr-b2b.yaml")


# -- examples ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_load_and_lint_clean(name: str) -> None:
    loaded = load_policy(EXAMPLE_POLICIES / f"{name}.yaml")
    assert loaded.version == 1
    assert lint_policy(loaded, today=date(2026, 3, 1)) == []


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_examples_validate_against_the_json_schema(name: str) -> None:
    document = YAML(typ="safe").load((EXAMPLE_POLICIES / f"{name}.yaml").read_text())
    # the safe loader gives dates as date objects; JSON Schema validators work on JSON values
    document = _jsonable(document)
    jsonschema.validate(document, policy_schema())


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def test_schema_rejects_a_typo_and_documents_every_field() -> None:
    schema: dict[str, Any] = policy_schema()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"version": 1, "compnay": {}}, schema)
    undocumented = [
        f"{model}.{name}"
        for model, definition in [("Policy", schema), *schema["$defs"].items()]
        for name, prop in definition.get("properties", {}).items()
        if "description" not in prop
    ]
    assert undocumented == []


def test_fr_example_is_the_seed_ladder(fr: Policy) -> None:
    steps = [(s.offset_days, s.channel, s.template) for s in fr.ladder.steps]
    assert steps == [
        (-15, Channel.EMAIL, "pre_due"),
        (-11, Channel.LEDGER_EMAIL, "pre_due"),
        (0, Channel.CALL_TASK, "due_today"),
        (15, Channel.LETTER, "late_1"),
        (15, Channel.EMAIL, "late_1"),
        (30, Channel.EMAIL, "finance_manager"),
        (60, Channel.EMAIL, "owner"),
        (75, Channel.LETTER, "final_notice"),
        (90, Channel.AGENCY, "agency_handover"),
    ]
    late_letter = fr.ladder.steps[3]
    assert late_letter.charge == ("interest", "compensation")
    assert fr.ladder.steps[7].demand_days == 10
    assert fr.interest.statutory == "fr" and fr.interest.grace_days == 0
    assert fr.compensation.enabled
    assert fr.credit.default_limit == Decimal("10000")


def test_money_is_decimal_never_float(fr: Policy) -> None:
    assert fr.fees["formal-notice"].fixed == Decimal("8.50")
    assert isinstance(fr.exclusions.min_balance, Decimal)
    assert policy("credit: {default_limit: 2500}\n").credit.default_limit == Decimal(2500)
    with pytest.raises(PolicyError, match="write amounts as quoted strings"):
        policy("credit: {default_limit: 2500.5}\n")


def test_policy_is_immutable(fr: Policy) -> None:
    with pytest.raises(Exception, match="frozen"):
        fr.company.name = "other"  # type: ignore[misc]


# -- resolution -------------------------------------------------------------------------------------------

GROUPS = """\
credit: {default_limit: "1000"}
exclusions: {tags: [no-dunning]}
customers:
  groups:
    - name: key
      match: {tags: [key]}
      ladder: gentle
      credit_limit: "50000"
    - name: french
      match: {countries: [fr]}
      language: fr
    - name: everyone-else
      kind: b2c
  overrides:
    42: {credit_limit: "5000", language: en, paused_until: 2026-12-31}
    "7": {exclude: true, ladder: default}
ladders:
  gentle:
    steps:
      - {name: late, offset_days: 30, channel: email, template: late_1}
"""


def test_first_matching_group_wins_then_overrides() -> None:
    loaded = policy(GROUPS)
    key = loaded.settings_for(Customer("1", "Key FR", country="FR", tags=("key",)))
    assert key == CustomerSettings(
        group="key",
        ladder=loaded.ladders["gentle"],
        ladder_name="gentle",
        credit_limit=Decimal("50000"),
        language="en",  # company default (no language in group 'key'; customer has none)
        kind=CustomerKind.B2B,
        excluded=False,
        paused_until=None,
    )
    french = loaded.settings_for(Customer("42", "Dupont", country="FR", language="de"))
    assert (french.group, french.language, french.credit_limit) == ("french", "en", Decimal("5000"))
    assert french.paused_until == date(2026, 12, 31)
    assert french.ladder_name == "default" and french.ladder is loaded.ladder
    other = loaded.settings_for(Customer("9", "Smith", country="GB", language="de"))
    assert (other.group, other.kind, other.language, other.credit_limit) == (
        "everyone-else",
        CustomerKind.B2C,
        "de",
        Decimal("1000"),
    )


def test_exclusion_by_override_and_by_tag() -> None:
    loaded = policy(GROUPS)
    assert loaded.settings_for(Customer("7", "Excluded")).excluded
    assert loaded.settings_for(Customer("8", "Tagged", tags=("no-dunning",))).excluded
    assert not loaded.settings_for(Customer("8", "Tagged", tags=("other",))).excluded


def test_customer_kind_falls_back_to_customer_then_company() -> None:
    loaded = policy()
    assert loaded.settings_for(Customer("1", "A")).kind is CustomerKind.B2B
    assert loaded.settings_for(Customer("1", "A", kind=CustomerKind.B2C)).kind is CustomerKind.B2C
    assert policy().settings_for(Customer("1", "A")).credit_limit is None


def test_settings_are_cached_per_customer_value() -> None:
    loaded = policy(GROUPS)
    first = loaded.settings_for(Customer("1", "A", tags=("key",)))
    assert loaded.settings_for(Customer("1", "A", tags=("key",))) is first
    # same id, different data (tags changed in the ledger): resolved again
    assert loaded.settings_for(Customer("1", "A")).group == "everyone-else"


# -- cross-field rules ------------------------------------------------------------------------------------


def test_equal_offsets_are_allowed_but_not_descending() -> None:
    two_at_15 = MINIMAL.replace(
        "    - {name: late",
        "    - {name: letter, offset_days: 10, channel: letter, template: late_1}\n    - {name: late",
    )
    assert [s.name for s in policy(base=two_at_15).ladder.steps] == ["letter", "late"]


def test_no_interest_is_a_valid_choice() -> None:
    loaded = policy()
    assert not loaded.interest.enabled
    assert loaded.interest_terms() is None


def test_charge_must_name_a_known_kind() -> None:
    with pytest.raises(PolicyError, match=r"expected interest, compensation or fee:<name>, got 'fees'"):
        policy(base=MINIMAL.replace("template: late_1}", "template: late_1, charge: [fees]}"))


def test_send_window_must_be_ordered() -> None:
    with pytest.raises(PolicyError, match=r"company.send_window: end must be after start"):
        policy(
            base=MINIMAL.replace(
                "holidays: FR}", 'holidays: FR, send_window: {start: "18:00", end: "09:00"}}'
            )
        )


# -- interest terms ---------------------------------------------------------------------------------------


def test_interest_terms_statutory_and_contractual(fr: Policy) -> None:
    terms = fr.interest_terms()
    assert terms is not None
    assert (terms.law, terms.annual_rate, terms.minimum, terms.compounding) == (
        "fr",
        None,
        Decimal("1.00"),
        False,
    )
    us = load_policy(EXAMPLE_POLICIES / "us-net30.yaml").interest_terms()
    assert us is not None
    assert (us.law, us.monthly_rate, us.grace_days, us.cap_percent) == (
        None,
        Decimal("1.5"),
        5,
        Decimal("25"),
    )
    assert us.contractual_rate == Decimal("18.0")


def test_interest_rate_overrides_reach_the_engine() -> None:
    loaded = policy('interest:\n  statutory: eu\n  rates: [{from: 2026-07-01, rate: "2.00", source: ECB}]\n')
    terms = loaded.interest_terms()
    assert terms is not None
    (override,) = terms.rate_overrides
    assert (override.row.effective_from, override.row.rate, override.row.source) == (
        date(2026, 7, 1),
        Decimal("2.00"),
        "ECB",
    )


# -- business calendar ------------------------------------------------------------------------------------


def test_business_calendar_uses_public_holidays(fr: Policy) -> None:
    calendar = fr.business_calendar()
    assert not calendar.is_business_day(date(2026, 7, 14))  # Fête nationale (a Tuesday)
    assert not calendar.is_business_day(date(2026, 5, 2))  # Saturday
    assert calendar.is_business_day(date(2026, 7, 15))
    # 1 May 2026 is a Friday holiday: next business day is Monday 4 May, previous is Thursday 30 April
    assert calendar.adjust(date(2026, 5, 1), BusinessDayRule.NEXT) == date(2026, 5, 4)
    assert calendar.adjust(date(2026, 5, 1), BusinessDayRule.PREVIOUS) == date(2026, 4, 30)
    assert calendar.adjust(date(2026, 5, 1), BusinessDayRule.NONE) == date(2026, 5, 1)
    assert calendar.adjust(date(2026, 7, 15), BusinessDayRule.NEXT) == date(2026, 7, 15)


def test_holiday_subdivisions() -> None:
    bavaria = load_policy(EXAMPLE_POLICIES / "de-b2b.yaml").business_calendar()
    assert bavaria == BusinessCalendar(frozenset(range(5)), "DE", "BY")
    assert not bavaria.is_business_day(date(2026, 1, 6))  # Heilige Drei Könige, Bavaria only
    berlin = BusinessCalendar(frozenset(range(5)), "DE", "BE")
    assert berlin.is_business_day(date(2026, 1, 6))


def test_no_holidays_and_custom_week() -> None:
    loaded = policy(
        base=MINIMAL.replace("holidays: FR}", "holidays: none, business_days: [sun, mon, tue, wed, thu]}")
    )
    calendar = loaded.business_calendar()
    assert calendar.is_business_day(date(2026, 7, 14))  # no holidays
    assert calendar.is_business_day(date(2026, 5, 3))  # a Sunday
    assert not calendar.is_business_day(date(2026, 5, 1))  # a Friday


# -- lint -------------------------------------------------------------------------------------------------


def _messages(extra: str, base: str = MINIMAL, today: date = date(2026, 3, 1)) -> list[tuple[str, str]]:
    return [(w.path, w.message) for w in lint_policy(policy(extra, base), today=today)]


def test_lint_fr_contractual_rate_below_three_times_legal_rate() -> None:
    (warning,) = _messages('interest: {annual_rate: "7.50"}\n')
    assert warning[0] == "interest.annual_rate"
    assert "below 3x the taux d'intérêt légal of 2026 H1 (2.62 %, so at least 7.86 %)" in warning[1]
    assert _messages('interest: {annual_rate: "7.86"}\n') == []
    # 2025 H2: taux légal 2.76, floor 8.28; a monthly rate of 0.65 is 7.8 a year
    (monthly,) = _messages('interest: {monthly_rate: "0.65"}\n', today=date(2025, 9, 1))
    assert monthly[0] == "interest.monthly_rate" and "8.28" in monthly[1]
    # not French: no such rule
    assert (
        _messages('interest: {annual_rate: "1"}\n', base=MINIMAL.replace("country: FR", "country: US")) == []
    )


def test_lint_payment_terms_over_sixty_days() -> None:
    base = MINIMAL.replace("holidays: FR}", "holidays: FR, payment_terms_days: 90}")
    ((path, message),) = _messages("", base=base)
    assert path == "company.payment_terms_days" and "90 days exceed 60 days (C. com. L441-10" in message
    early = MINIMAL.replace(
        "    - {name: late",
        "    - {name: early, offset_days: -75, channel: email, template: t}\n    - {name: late",
    )
    ((path, message),) = _messages("", base=early)
    assert path == "ladder.steps[0].offset_days" and "75 days before the due date" in message


def test_lint_b2c_group_charged_compensation() -> None:
    charging = MINIMAL.replace("template: late_1}", "template: late_1, charge: [compensation]}")
    extra = "customers:\n  groups:\n    - {name: consumers, match: {tags: [b2c]}, kind: b2c}\n"
    assert _messages(extra, base=charging) == [
        (
            "customers.groups[0]",
            "group 'consumers' is B2C but its ladder 'default' charges compensation: the fixed recovery "
            "compensation is B2B only and will not be charged",
        )
    ]
    override = 'customers:\n  overrides:\n    "5": {kind: b2c}\n'
    assert [path for path, _ in _messages(override, base=charging)] == ["customers.overrides.5"]
    assert _messages(extra + "compensation: {enabled: false}\n", base=charging)[0][1].startswith(
        "step 'late' charges compensation but `compensation.enabled` is false"
    )


def test_lint_useful_extras() -> None:
    assert _messages('fees:\n  admin: {fixed: "5"}\n') == [
        ("fees.admin", "fee 'admin' is not charged by any ladder step")
    ]
    only_before = MINIMAL.replace("offset_days: 10", "offset_days: -3")
    assert _messages("", base=only_before) == [
        ("ladder.steps", "ladder 'default' has no step after the due date: late invoices are never chased")
    ]
    interest_without_rate = MINIMAL.replace("template: late_1}", "template: late_1, charge: [interest]}")
    assert _messages("", base=interest_without_rate)[0][0] == "ladder.steps[0].charge"
    unused = "ladders:\n  spare: {steps: [{name: a, offset_days: 5, channel: email, template: t}]}\n"
    assert _messages(unused) == [("ladders.spare", "ladder 'spare' is not used by any group or override")]
    shadowed = "customers:\n  groups:\n    - {name: all}\n    - {name: never, match: {tags: [x]}}\n"
    assert _messages(shadowed)[0][0] == "customers.groups[1]"


def test_check_report_puts_warnings_on_their_lines() -> None:
    text = MINIMAL + 'interest:\n  annual_rate: "5"\n'
    report = check_policy_text(text, "p.yaml", today=date(2026, 3, 1), rulebook=RULEBOOK)
    assert report.ok
    assert report.lines()[0] == "p.yaml: ok (1 warning(s))"
    assert report.lines()[1].startswith("warning: p.yaml:7: interest.annual_rate: 5 % a year is below")


def test_a_copy_does_not_reuse_the_originals_resolutions(fr: Policy) -> None:
    customer = Customer("77", "Copy test")
    assert fr.settings_for(customer).ladder_name == "default"
    gentle_by_default = fr.model_copy(update={"ladder": fr.ladders["gentle"]})
    assert gentle_by_default.settings_for(customer).ladder.steps[0].offset_days == -7
