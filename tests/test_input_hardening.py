"""Regression tests for the bad inputs bench/fuzz.py found: exact messages and behaviours behind the
fuzz properties (policy YAML, policy bounds, ledger values, email headers)."""

from __future__ import annotations

import logging
import sys
from datetime import datetime
from decimal import Decimal
from email import policy as email_policy
from email.parser import BytesParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is not an installed package
from bench.fuzz import QUICKBOOKS_TEMPLATES, XERO_TEMPLATES, example_texts, plan_small_ledger
from connectors.quickbooks.mapping import map_records as map_quickbooks
from connectors.values import AMOUNT_LIMIT, address_problem, checked_amount, header_safe_name
from connectors.xero.mapping import map_records as map_xero
from policies.model.errors import PolicyError, RelanceError
from support.rules import parse_policy
from sync.channels.render import RenderedNotice
from sync.channels.transports import compose_email

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


# --- ledger values ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [Decimal("1E+400"), Decimal(10**30), AMOUNT_LIMIT, -AMOUNT_LIMIT, 10**12, Decimal("-1e12")]
)
def test_checked_amount_refuses_what_cannot_be_money(value: Decimal | int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        checked_amount(value, "EUR", "Total")


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), "12", 1.5, True, None])
def test_checked_amount_refuses_non_amounts(value: object) -> None:
    with pytest.raises(ValueError, match="Total"):
        checked_amount(value, "EUR", "Total")  # type: ignore[arg-type]


@pytest.mark.parametrize("currency", ["EUR", "JPY", "BHD", None])
def test_checked_amount_keeps_usable_amounts(currency: str | None) -> None:
    assert checked_amount(Decimal("999999999999.999"), currency) == Decimal("999999999999.999")
    assert checked_amount(-5, currency) == Decimal(-5)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Dupont\r\nBcc: x@evil.example", "Dupont Bcc: x@evil.example"),
        ("Dupont\u2028SARL", "Dupont SARL"),
        ("Dupont\x85\x00\tSARL\n", "Dupont SARL"),
        ("  Dupont  SARL ", "  Dupont  SARL "),  # nothing folded: left exactly as the ledger has it
        ("Dupont \u202eSARL\u202c", "Dupont \u202eSARL\u202c"),  # format characters are legitimate
    ],
)
def test_header_safe_name_folds_line_breaks(name: str, expected: str) -> None:
    assert header_safe_name(name) == expected


def test_header_safe_name_refuses_a_name_of_control_characters() -> None:
    with pytest.raises(ValueError, match="empty"):
        header_safe_name("\x00\r\n")


@pytest.mark.parametrize(
    ("address", "usable"),
    [
        ("compta@dupont.example", True),
        ("first.last+tag@sub.dupont.example", True),
        ("zoë@bâtiment.example", True),
        ("a@b.example\r\nBcc: victim@evil.example", False),
        ("a b@dupont.example", False),
        ("a@dupont.example\u2028", False),
        ("a\x00b@dupont.example", False),
        ("Dupont <a@dupont.example>", False),
        ("no-at-sign", False),
        ("a@@dupont.example", False),
        (".a@dupont.example", False),
        ("a@", False),
    ],
)
def test_address_problem(address: str, usable: bool) -> None:
    assert (address_problem(address) is None) is usable


def test_quickbooks_customer_keeps_its_good_addresses_and_reports_the_bad_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = dict(QUICKBOOKS_TEMPLATES["customer"])
    raw["DisplayName"] = "Dupont\nSARL"
    raw["PrimaryEmailAddr"] = {
        "Address": "a@dupont.example, evil@x.example\r\nBcc: v@evil.example; b@dupont.example"
    }
    with caplog.at_level(logging.WARNING, logger="relance.connectors"):
        records, quarantined = map_quickbooks("customer", [raw])
    assert not quarantined
    assert records[0].name == "Dupont SARL"
    assert records[0].emails == ("a@dupont.example", "b@dupont.example")
    assert "Customer 58" in caplog.text and "whitespace or a control character" in caplog.text


def test_xero_contact_keeps_its_good_addresses_and_reports_the_bad_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    raw = dict(XERO_TEMPLATES["customer"])
    raw["Name"] = "Dupont\u2029SARL"
    raw["EmailAddress"] = "compta@dupont.example\x85Bcc: victim@evil.example"
    with caplog.at_level(logging.WARNING, logger="relance.connectors"):
        records, _, quarantined = map_xero("customer", [raw])
    assert not quarantined
    assert records[0].name == "Dupont SARL"
    assert records[0].emails == ("ana@dupont.example",)  # the contact person's address survives
    assert "c0a1b2c3-0000-4000-8000-000000000001" in caplog.text


@pytest.mark.parametrize(
    ("mapper", "template", "field"),
    [
        (lambda rows: map_quickbooks("invoice", rows)[1], QUICKBOOKS_TEMPLATES["invoice"], "Balance"),
        (lambda rows: map_xero("invoice", rows)[2], XERO_TEMPLATES["invoice"], "AmountDue"),
    ],
    ids=["quickbooks", "xero"],
)
def test_a_huge_balance_quarantines_only_its_record(mapper: object, template: dict, field: str) -> None:
    bad = {**template, field: Decimal("1E+400")}
    quarantined = mapper([template, bad, template])  # type: ignore[operator]
    assert len(quarantined) == 1
    assert field in quarantined[0].reason and "out of range" in quarantined[0].reason


# --- email headers ---------------------------------------------------------------------------------------

LINE_ENDINGS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x7f"]


@pytest.mark.parametrize("separator", LINE_ENDINGS)
def test_every_line_ending_in_a_subject_is_refused(separator: str) -> None:
    notice = RenderedNotice(f"Overdue{separator}Bcc: victim@evil.example", "t\n", "<p>t</p>\n")
    with pytest.raises(RelanceError, match="control character"):
        compose_email(notice, sender="a@exemple.example", to=["c@dupont.example"], message_id_key="k1")


@pytest.mark.parametrize("separator", ["\u2028", "\x85"])
def test_a_line_ending_in_a_display_name_is_refused(separator: str) -> None:
    notice = RenderedNotice("Overdue", "t\n", "<p>t</p>\n")
    with pytest.raises(RelanceError):
        compose_email(
            notice,
            sender="a@exemple.example",
            to=[f"Dupont{separator}Bcc: v@evil.example <c@dupont.example>"],
            message_id_key="k1",
        )


def test_sent_messages_carry_content_language() -> None:
    notice = RenderedNotice("Relance", "Bonjour\n", "<p>Bonjour</p>\n", language="fr")
    message = compose_email(
        notice,
        sender="a@exemple.example",
        to=["c@dupont.example"],
        message_id_key="k1",
        date=datetime(2026, 2, 1, 9, 0),
    )
    parsed = BytesParser(policy=email_policy.default).parsebytes(message.as_bytes(policy=email_policy.SMTP))
    assert parsed["Content-Language"] == "fr"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert all(part["Content-Language"] is None for part in parsed.iter_parts())  # once, at the top
