"""Broken policies: every problem reads "file:line: field.path: what was expected", never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.model.errors import PolicyError, RelanceError
from tests.support.paths import BROKEN_POLICIES
from tests.support.rules import load_policy, parse_policy

# file -> (line, field path, words the message must contain). Lines counted in the files themselves.
EXPECTED: dict[str, tuple[str, str, str]] = {
    "offset_ten": ("23", "ladder.steps[1].offset_days", "expected whole days, got 'ten'"),
    "unknown_channel": (
        "24",
        "ladder.steps[1].channel",
        "expected one of: ledger_email, email, call_task, letter, agency, got 'sms'",
    ),
    "typo_key": (
        "28",
        "ladder.steps[2].ofset_days",
        "unknown field 'ofset_days' (did you mean 'offset_days'?)",
    ),
    "float_money": ("12", "fees.late-letter.fixed", "write amounts as quoted strings, e.g. '40.00'"),
    "missing_currency": ("3", "company.currency", "required, but missing"),
    "unknown_fee": ("26", "ladder.steps[1].charge[2]", "unknown fee 'admin' (defined fees: late-letter)"),
    "duplicate_step": ("27", "ladder.steps[2].name", "step name 'late' is used twice"),
    "two_interest_modes": ("9", "interest", "choose one of statutory, annual_rate, monthly_rate"),
    "bad_date": (
        "15",
        "customers.overrides.42.paused_until",
        "expected a date like 2026-12-31, got '2026-02-30'",
    ),
    "unknown_ladder": (
        "15",
        "customers.overrides.42.ladder",
        "unknown ladder 'gentel' (known: default, gentle)",
    ),
    "bad_timezone": ("7", "company.timezone", "unknown time zone 'Europe/Pariss'"),
    "steps_out_of_order": ("28", "ladder.steps[2].offset_days", "steps must be in offset order"),
    "bad_holidays": ("8", "company.holidays", "unknown holiday country 'XX'"),
    "unknown_section": ("9", "interst", "unknown field 'interst' (did you mean 'interest'?)"),
    "bad_currency": ("6", "company.currency", "expected a three-letter currency code"),
}


def test_every_broken_file_has_an_expectation() -> None:
    names = {path.stem for path in BROKEN_POLICIES.glob("*.yaml")}
    assert len(names) >= 10
    assert set(EXPECTED) | {"yaml_syntax", "empty", "top_level_list"} == names


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_policy_names_file_line_and_path(name: str) -> None:
    line, path, words = EXPECTED[name]
    source = BROKEN_POLICIES / f"{name}.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy(source)
    assert len(caught.value.problems) == 1, caught.value.problems
    problem = caught.value.problems[0]
    assert problem.startswith(f"{source}:{line}: {path}: "), problem
    assert words in problem
    assert "Traceback" not in problem and "pydantic" not in problem.lower()


def test_yaml_syntax_error_gives_line_and_column() -> None:
    source = BROKEN_POLICIES / "yaml_syntax.yaml"
    with pytest.raises(PolicyError) as caught:
        load_policy(source)
    assert caught.value.problems == [
        f"{source}:13:1: YAML syntax error: expected ',' or '}}', but got '<scalar>' "
        "(while parsing a flow mapping started on line 12)"
    ]


def test_empty_file_and_wrong_top_level() -> None:
    with pytest.raises(PolicyError, match=r"empty\.yaml:1: the file is empty"):
        load_policy(BROKEN_POLICIES / "empty.yaml")
    with pytest.raises(PolicyError, match=r"top_level_list\.yaml:1: expected a mapping .* got a list"):
        load_policy(BROKEN_POLICIES / "top_level_list.yaml")


def test_missing_file_points_at_relance_yaml(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "policy.yaml")
    assert caught.value.problems == [
        f"{tmp_path / 'policy.yaml'}: file not found (check the `policy:` path in relance.yaml)"
    ]
    assert isinstance(caught.value, RelanceError)


def test_all_problems_are_reported_in_line_order() -> None:
    text = """version: 1
company:
  name: X
  country: FR
  currency: EUR
  timezone: Nowhere/City
ladder:
  steps:
    - {name: a, offset_days: soon, channel: email, template: t}
    - {name: b, offset_days: 3, channel: fax, template: t}
"""
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    assert [problem.split(": ")[0:2] for problem in caught.value.problems] == [
        ["p.yaml:6", "company.timezone"],
        ["p.yaml:9", "ladder.steps[0].offset_days"],
        ["p.yaml:10", "ladder.steps[1].channel"],
    ]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        (
            "credit: {default_limit: 'lots'}",
            "p.yaml:8: credit.default_limit: expected an amount like '40.00', got 'lots'",
        ),
        (
            "credit: {include_drafts: maybe}",
            "p.yaml:8: credit.include_drafts: expected true or false, got 'maybe'",
        ),
        (
            "credit: {on_breach: shout}",
            "p.yaml:8: credit.on_breach: expected one of: alert, call_task, hold, got 'shout'",
        ),
        ("credit: [1, 2]", "p.yaml:8: credit: expected a mapping (key: value), got a list"),
        (
            "payment_plans: {acceleration_days: 0}",
            "p.yaml:8: payment_plans.acceleration_days: must be at least 1, got 0",
        ),
        (
            "interest: {statutory: be}",
            "p.yaml:8: interest.statutory: expected one of: fr, de, uk, eu, got 'be'",
        ),
        (
            "recurring_fee: {fee: admin, every_days: 30}",
            "p.yaml:8: recurring_fee.fee: unknown fee 'admin' (defined fees: none)",
        ),
        ("exclusions: {min_balance: true}", "p.yaml:8: exclusions.min_balance: expected an amount, got true"),
        ("version: 2", "p.yaml:8: version: expected one of: 1, got 2"),
        (
            "ladders: {default: {steps: [{name: a, offset_days: 1, channel: email, template: t}]}}",
            "p.yaml:8: ladders.default: the name 'default' is reserved for the top-level `ladder`",
        ),
        (
            "x: !!python/object:os.system ls",
            "p.yaml:8: x: YAML tags like tag:yaml.org,2002:python/object:os.system are not supported",
        ),
    ],
)
def test_messages_speak_the_users_language(snippet: str, expected: str) -> None:
    text = (
        "company: {name: X, country: FR, currency: EUR}\n"
        "ladder:\n"
        "  steps:\n"
        "    - name: a\n"
        "      offset_days: 1\n"
        "      channel: email\n"
        "      template: t\n"
        f"{snippet}\n"
    )
    if not snippet.startswith("version"):
        text = "version: 1\n" + text
        expected = expected.replace("p.yaml:8:", "p.yaml:9:")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    assert caught.value.problems == [expected]


def test_typo_does_not_also_report_the_missing_field() -> None:
    text = "version: 1\ncompany: {name: X, country: FR, curency: EUR}\nladder: {steps: []}\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, "p.yaml")
    assert caught.value.problems == [
        "p.yaml:2: company.curency: unknown field 'curency' (did you mean 'currency'?)",
        "p.yaml:3: ladder.steps: expected at least one item",
    ]
