"""Regression tests for the bad policy inputs the fuzzer found (tests/support/fuzz/policies.py): exact
messages and behaviours behind the fuzz properties (policy YAML, policy bounds)."""

from __future__ import annotations

import pytest

from policies.model.errors import PolicyError
from tests.support.fuzz.policies import example_texts, plan_small_ledger
from tests.support.rules import parse_policy

FR = example_texts()["fr-b2b.yaml"]

# --- policy YAML -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("version: 1\n{a: {b: 1}}: 2\n", 2),
        ("version: 1\n? {a: [1]}\n: 2\n", 2),
        ("version: 1\ncompany:\n  [name]: x\n", 3),
        ("version: 1\ncompany:\n  {name: x}: y\n", 3),
    ],
)
def test_a_mapping_or_list_as_key_is_named_with_its_line(text: str, line: int) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="p.yaml")
    assert caught.value.problems == [
        f"p.yaml:{line}: keys must be plain names (text or numbers), not a mapping or a list"
    ]


@pytest.mark.parametrize(
    ("character", "name"),
    [
        ("\x7f", "DEL"),
        ("\x00", "NUL"),
        ("\x0c", "FORM FEED"),
        ("\ud800", "lone surrogate"),
        ("\x1b", "ESCAPE"),
    ],
)
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_an_unacceptable_character_is_one_line_with_its_line_number(
    character: str, name: str, newline: str
) -> None:
    text = newline.join(["version: 1", "company:", f"  name: Ex{character}ample", ""])
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="p.yaml")
    code = f"U+{ord(character):04X}"
    assert caught.value.problems == [f"p.yaml:3: unacceptable character {code} ({name}); remove it"]


def test_an_unacceptable_character_after_a_bom_keeps_its_line() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("\ufeffversion: 1\n\ncompany: x\x7f\n", source="p.yaml")
    assert caught.value.problems[0].startswith("p.yaml:3: unacceptable character U+007F (DEL)")


# --- policy bounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "grace_days: 0 ",
            "grace_days: 99999999999999999999999999999 ",
            "interest.grace_days: must be at most 36500 days, got 99999999999999999999999999999",
        ),
        (
            "offset_days: 90",
            "offset_days: 3651",
            "ladder.steps[8].offset_days: must be at most 3650 days, got 3651",
        ),
        (
            "offset_days: -15",
            "offset_days: -3651",
            "ladder.steps[0].offset_days: must be at least -3650 days, got -3651",
        ),
        (
            "lookback_days: 365",
            "lookback_days: 999999999999999",
            "credit.suggestion.lookback_days: must be at most 36500 days, got 999999999999999",
        ),
        (
            "acceleration_days: 15",
            "acceleration_days: 0",
            "payment_plans.acceleration_days: must be at least 1, got 0",
        ),
        (
            'default_limit: "10000"',
            "default_limit: 10000000000000",
            "credit.default_limit: must be less than 1000000000000, got 10000000000000",
        ),
        (
            'raise_percent: "20"',
            'raise_percent: "101"',
            "credit.suggestion.raise_percent: must be at most 100",
        ),
        ('percent: "2"', 'percent: "250"', "discount.percent: must be at most 100"),
    ],
)
def test_out_of_range_numbers_are_refused_with_the_bound(old: str, new: str, problem: str) -> None:
    assert old in FR
    with pytest.raises(PolicyError) as caught:
        parse_policy(FR.replace(old, new, 1), source="p.yaml")
    assert any(problem in text for text in caught.value.problems), caught.value.problems


def test_a_huge_value_is_shortened_in_the_message() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(FR.replace('default_limit: "10000"', 'default_limit: "' + "9" * 400 + '"', 1), "p.yaml")
    (problem,) = caught.value.problems
    assert problem.endswith("... (402 characters)") and len(problem) < 160, problem


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("grace_days: 0 ", "grace_days: 36500 "),
        ("offset_days: 90", "offset_days: 3650"),
        ("lookback_days: 365", "lookback_days: 36500"),
        ("acceleration_days: 15", "acceleration_days: 36500"),
        ('default_limit: "10000"', 'default_limit: "999999999999.99"'),
    ],
)
def test_the_largest_accepted_values_still_plan(old: str, new: str) -> None:
    policy = parse_policy(FR.replace(old, new, 1), source="p.yaml")
    plan_small_ledger(policy)  # no OverflowError out of date arithmetic
