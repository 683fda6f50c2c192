"""Bad policy files: every mutated policy text is either valid or rejected with 'file:line: ...' problems,
never another exception. Generators and checks live in tests/support/fuzz/policies.py (`python -m
bench.fuzz` runs 1,000)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from policies.model.errors import PolicyError
from tests.support.fuzz.gaps import tolerating_known_gaps
from tests.support.fuzz.policies import (
    PROBLEM_LINE,
    SOURCE,
    check_policy,
    example_texts,
    plan_small_ledger,
    policy_texts,
)
from tests.support.rules import parse_policy

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("name", sorted(example_texts()))
def test_every_shipped_example_is_valid(name: str) -> None:
    """The fuzzer's seeds: if an example stopped parsing, every mutation would test nothing."""
    assert check_policy(example_texts()[name]) == "valid"


@given(policy_texts())
@FUZZ
def test_fuzzed_policy_is_valid_or_rejected_with_file_and_line(text: str) -> None:
    tolerating_known_gaps(lambda: check_policy(text))


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("currency: EUR ", "currency: 12.5 ", "company.currency"),
        ("country: FR ", "cuntry: FR ", "cuntry"),
        ("grace_days: 0 ", "grace_days: -5 ", "interest.grace_days"),
        ('default_limit: "10000"', "default_limit: .nan", "credit.default_limit"),
        ('default_limit: "10000"', "default_limit: 1e400", "credit.default_limit"),
        ("lookback_days: 365", "lookback_days: [[[]]]", "credit.suggestion.lookback_days"),
        ("on_breach: alert", "on_breach: \u202ealert", "credit.on_breach"),
        ("  timezone: Europe/Paris", "\ttimezone: Europe/Paris", ""),  # tab indentation
        ("  timezone: Europe/Paris", "    timezone: Europe/Paris", ""),  # broken indentation
        ('  send_window: {start: "09:00", end: "18:00"}', '  send_window: {start: "09:00"', ""),
    ],
)
def test_typical_mistakes_name_line_and_field(old: str, new: str, field: str) -> None:
    """Hand-picked mutations of the French example: the message names the mutated line (or the next
    one, where YAML notices the damage) and the field. The fuzz test checks the shape; these the content."""
    original = example_texts()["fr-b2b.yaml"]
    assert old in original
    text = original.replace(old, new, 1)
    line = original[: original.index(old)].count("\n") + 1
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source=SOURCE)
    matches = [PROBLEM_LINE.match(problem) for problem in caught.value.problems]
    assert all(matches), caught.value.problems
    assert any(int(m["line"]) in (line, line + 1) and field in m["message"] for m in matches if m), (
        line,
        caught.value.problems,
    )


@pytest.mark.parametrize("variant", ["bom", "crlf", "bom+crlf"])
def test_bom_and_crlf_do_not_change_the_verdict(variant: str) -> None:
    text = example_texts()["fr-b2b.yaml"]
    if "crlf" in variant:
        text = text.replace("\n", "\r\n")
    if "bom" in variant:
        text = "\ufeff" + text
    assert check_policy(text) == "valid"


def test_control_character_is_reported_with_its_line() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("version: 1\ncompany:\n  name: Ex\x7fample\n", source=SOURCE)
    for problem in caught.value.problems:
        found = PROBLEM_LINE.match(problem)
        assert found and found["line"] == "3", problem


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("grace_days: 0 ", "grace_days: 99999999999999999999999999999 "),
        ("offset_days: 90", "offset_days: 99999999999"),
        ("lookback_days: 365", "lookback_days: 999999999999999"),
    ],
)
def test_a_policy_that_parses_also_plans(old: str, new: str) -> None:
    text = example_texts()["fr-b2b.yaml"].replace(old, new, 1)
    try:
        policy = parse_policy(text, source=SOURCE)
    except PolicyError:
        return  # rejecting the value with a file:line message is the other acceptable fix
    plan_small_ledger(policy)


@pytest.mark.parametrize("text", ["version: 1\n{a: {b: 1}}: 2\n", "version: 1\n? {a: [1]}\n: 2\n"])
def test_complex_mapping_key_is_rejected_cleanly(text: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source=SOURCE)
    assert all(PROBLEM_LINE.match(problem) for problem in caught.value.problems), caught.value.problems
