"""Worked examples of late-payment interest and compensation, law by law.

Each expected figure is computed by hand in the comment: principal x rate x days / 365, act/365,
days from the day after the due date through the payment date inclusive, rounded once at the end.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from click.testing import CliRunner

from policies.interest import InterestTerms, compensation, compute_interest
from policies.model.errors import RelanceError
from policies.model.ledger import Settlement
from policies.model.money import Money
from sync.cli import cli
from tests.support.rules import RULEBOOK
from tests.support.rules import terms as interest_terms

FR = interest_terms(law="fr")


def pay(day: date, amount: str) -> Settlement:
    return Settlement(day, Decimal(amount))


def run(terms: InterestTerms, amount: str, currency: str, due: date, until: date,
        settlements: list[Settlement] | None = None, b2c: bool = False):
    return compute_interest(terms, total=Money.of(amount, currency), due=due, until=until,
                            settlements=settlements or [], b2c=b2c)


# --- FR (C. com. L441-10, D441-5: ECB MRO + 10 points, half-year fixing, EUR 40) ---------------------

ISSUE_EXAMPLE_JSON = {
    "law": "fr", "currency": "EUR", "principal": "1200.00", "interest": "64.93", "compensation": "40.00",
    "total": "104.93",
    "segments": [
        # ECB MRO on 1 Jan 2024 = 4.50 (press release 14 Sep 2023) -> 14.50; 1200 x 14.50% x 91/365
        {"start": "2024-04-01", "end": "2024-06-30", "days": 91, "principal": "1200.00",
         "annual_rate": "14.50", "interest": "43.380822"},
        # ECB MRO on 1 Jul 2024 = 4.25 (press release 6 Jun 2024) -> 14.25; 1200 x 14.25% x 46/365
        {"start": "2024-07-01", "end": "2024-08-15", "days": 46, "principal": "1200.00",
         "annual_rate": "14.25", "interest": "21.550685"},
    ],
    "warnings": [],
}


def test_fr_issue_example() -> None:
    result = run(FR, "1200.00", "EUR", date(2024, 3, 31), date(2024, 8, 15))
    assert result.to_json() == ISSUE_EXAMPLE_JSON
    assert result.total == Money.of("104.93", "EUR")


def test_fr_partial_payment_keeps_day_p_at_the_old_principal() -> None:
    # 200 paid on 2024-05-01: 1 Apr-1 May (31 d) on 1200 @14.50 = 14.778082;
    # 2 May-30 Jun (60 d) on 1000 @14.50 = 23.835616; 1 Jul-15 Aug (46 d) on 1000 @14.25 = 17.958904
    # total 56.572602 -> 56.57
    result = run(FR, "1200.00", "EUR", date(2024, 3, 31), date(2024, 8, 15),
                 [pay(date(2024, 5, 1), "200.00")])
    assert [(s.start, s.end, s.days, s.principal) for s in result.segments] == [
        (date(2024, 4, 1), date(2024, 5, 1), 31, Decimal("1200.00")),
        (date(2024, 5, 2), date(2024, 6, 30), 60, Decimal("1000.00")),
        (date(2024, 7, 1), date(2024, 8, 15), 46, Decimal("1000.00")),
    ]
    assert result.interest == Money.of("56.57", "EUR")
    assert result.compensation == Money.of("40.00", "EUR")


def test_fr_leap_year_still_counts_365() -> None:
    # 2024 is a leap year: 1 Jan-30 Jun = 182 days; 1000 x 14.50% x 182/365 = 72.301370 -> 72.30
    result = run(FR, "1000.00", "EUR", date(2023, 12, 31), date(2024, 6, 30))
    assert result.segments[0].days == 182
    assert result.interest == Money.of("72.30", "EUR")


def test_fr_full_payment_stops_interest_before_as_of() -> None:
    # Paid in full on 2024-04-10: 10 days on 1200 @14.50 = 4.767123 -> 4.77; nothing after.
    result = run(FR, "1200.00", "EUR", date(2024, 3, 31), date(2024, 12, 31),
                 [pay(date(2024, 4, 10), "1200.00")])
    assert result.interest == Money.of("4.77", "EUR")
    assert result.segments[-1].end == date(2024, 4, 10)


def test_fr_consumer_gets_the_taux_legal_and_no_compensation() -> None:
    # Taux légal (autres cas) 2024 S1 5.07, S2 4.92: 1200 x 5.07% x 91/365 + 1200 x 4.92% x 46/365
    # = 15.168 + 7.440986 = 22.608986 -> 22.61
    result = run(FR, "1200.00", "EUR", date(2024, 3, 31), date(2024, 8, 15), b2c=True)
    assert [s.annual_rate for s in result.segments] == [Decimal("5.07"), Decimal("4.92")]
    assert result.interest == Money.of("22.61", "EUR")
    assert result.compensation.is_zero()
    assert any("1231-6" in warning for warning in result.warnings)


# --- EU (Directive 2011/7 art. 2-3: ECB MRO + 8 points) ---------------------------------------------


def test_eu_same_invoice() -> None:
    # 1200 x 12.50% x 91/365 = 37.397260; 1200 x 12.25% x 46/365 = 18.526027; 55.923287 -> 55.92
    result = run(interest_terms(law="eu"), "1200.00", "EUR", date(2024, 3, 31), date(2024, 8, 15))
    assert [s.annual_rate for s in result.segments] == [Decimal("12.50"), Decimal("12.25")]
    assert result.interest == Money.of("55.92", "EUR")
    assert result.compensation == Money.of("40.00", "EUR")


def test_eu_zero_rate_years_form_one_segment() -> None:
    # ECB MRO 0.00 on every fixing 1 Jul 2016 - 1 Jul 2022: one 8.00 segment across half-years.
    result = run(interest_terms(law="eu"), "1000.00", "EUR", date(2020, 12, 31), date(2022, 12, 31))
    assert len(result.segments) == 1
    assert result.segments[0].annual_rate == Decimal("8.00")
    assert result.segments[0].days == 730
    # 1000 x 8% x 730/365 = 160.00
    assert result.interest == Money.of("160.00", "EUR")


def test_eu_consumer_gets_nothing_with_a_reason() -> None:
    result = run(interest_terms(law="eu"), "1200.00", "EUR", date(2024, 3, 31), date(2024, 8, 15), b2c=True)
    assert result.interest.is_zero() and result.compensation.is_zero()
    assert any("2011/7" in warning for warning in result.warnings)


# --- DE (BGB § 288 Abs. 2 / Abs. 1, § 247: Basiszinssatz + 9 / + 5) ----------------------------------


def test_de_delay_across_1_january_2023() -> None:
    # Basiszinssatz -0.88 until 31 Dec 2022, 1.62 from 1 Jan 2023 (Bundesbank).
    # 16-31 Dec 2022: 10000 x 8.12% x 16/365 = 35.594521; 1-31 Jan 2023: 10000 x 10.62% x 31/365 = 90.197260
    # total 125.791781 -> 125.79; EUR 40 (§ 288 Abs. 5)
    result = run(interest_terms(law="de"), "10000.00", "EUR", date(2022, 12, 15), date(2023, 1, 31))
    assert [(s.days, s.annual_rate) for s in result.segments] == [
        (16, Decimal("8.12")), (31, Decimal("10.62")),
    ]
    assert result.interest == Money.of("125.79", "EUR")
    assert result.compensation == Money.of("40.00", "EUR")


def test_de_consumer_is_base_plus_five_without_compensation() -> None:
    # 10000 x 4.12% x 16/365 + 10000 x 6.62% x 31/365 = 74.284932 -> 74.28
    result = run(interest_terms(law="de"), "10000.00", "EUR", date(2022, 12, 15), date(2023, 1, 31), b2c=True)
    assert [s.annual_rate for s in result.segments] == [Decimal("4.12"), Decimal("6.62")]
    assert result.interest == Money.of("74.28", "EUR")
    assert result.compensation.is_zero()


# --- UK (Late Payment of Commercial Debts (Interest) Act 1998; SI 2002/1675) -------------------------


def test_uk_debt_starting_just_before_a_reference_date() -> None:
    # Due 30 Dec 2023: interest starts 31 Dec 2023, in H2 2023 -> reference date 30 Jun 2023,
    # Bank Rate 5.00 -> 13.00 fixed for the whole debt, although Bank Rate was 5.25 on 31 Dec 2023.
    # 31 Dec 2023 - 31 Mar 2024 = 92 days: 5000 x 13% x 92/365 = 163.835616 -> 163.84; GBP 70 (< 10,000)
    result = run(interest_terms(law="uk"), "5000.00", "GBP", date(2023, 12, 30), date(2024, 3, 31))
    assert [(s.days, s.annual_rate) for s in result.segments] == [(92, Decimal("13.00"))]
    assert result.interest == Money.of("163.84", "GBP")
    assert result.compensation == Money.of("70.00", "GBP")


def test_uk_debt_starting_on_1_january_uses_31_december() -> None:
    # Due 31 Dec 2023: interest starts 1 Jan 2024 -> reference 31 Dec 2023, Bank Rate 5.25 -> 13.25.
    # 91 days: 5000 x 13.25% x 91/365 = 165.171233 -> 165.17
    result = run(interest_terms(law="uk"), "5000.00", "GBP", date(2023, 12, 31), date(2024, 3, 31))
    assert result.segments[0].annual_rate == Decimal("13.25")
    assert result.interest == Money.of("165.17", "GBP")


def test_uk_partial_payment_keeps_the_fixed_rate() -> None:
    # 2000 paid 31 Jan 2024: 32 days on 5000 + 60 days on 3000, all at 13.00
    # = 56.986301 + 64.109589 = 121.095890 -> 121.10
    result = run(interest_terms(law="uk"), "5000.00", "GBP", date(2023, 12, 30), date(2024, 3, 31),
                 [pay(date(2024, 1, 31), "2000.00")])
    assert [(s.days, s.principal, s.annual_rate) for s in result.segments] == [
        (32, Decimal("5000.00"), Decimal("13.00")), (60, Decimal("3000.00"), Decimal("13.00")),
    ]
    assert result.interest == Money.of("121.10", "GBP")


def test_uk_consumer_gets_nothing_with_a_reason() -> None:
    result = run(interest_terms(law="uk"), "5000.00", "GBP", date(2023, 12, 30), date(2024, 3, 31), b2c=True)
    assert result.interest.is_zero() and result.compensation.is_zero() and not result.segments
    assert any("business debts only" in warning for warning in result.warnings)


@pytest.mark.parametrize(
    ("amount", "expected"),
    [("999.99", "40"), ("1000.00", "70"), ("9999.99", "70"), ("10000.00", "100"), ("250000", "100")],
)
def test_uk_compensation_bands(amount: str, expected: str) -> None:
    # Act s. 5A: GBP 40 under 1,000; 70 from 1,000 under 10,000; 100 from 10,000.
    assert compensation(RULEBOOK.law("uk"), Money.of(amount, "GBP"), False) == Money.of(expected, "GBP")


# --- common rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize("law", ["fr", "de", "uk", "eu"])
def test_paid_on_the_due_date_owes_nothing(law: str) -> None:
    currency = "GBP" if law == "uk" else "EUR"
    result = run(interest_terms(law=law), "1200.00", currency, date(2024, 3, 31), date(2024, 8, 15),
                 [pay(date(2024, 3, 31), "1200.00")])
    assert result.interest.is_zero() and result.compensation.is_zero() and not result.segments
    assert result.to_json()["total"] == "0.00"


def test_as_of_on_the_due_date_owes_nothing() -> None:
    result = run(FR, "1200.00", "EUR", date(2024, 3, 31), date(2024, 3, 31))
    assert result.total.is_zero()


def test_payment_before_due_reduces_the_starting_principal() -> None:
    result = run(FR, "1200.00", "EUR", date(2024, 3, 31), date(2024, 8, 15),
                 [pay(date(2024, 3, 1), "600.00")])
    assert result.principal == Money.of("600.00", "EUR")
    # half of the issue example's exact 64.931507 = 32.465753 -> 32.47
    assert result.interest == Money.of("32.47", "EUR")


def test_compensation_function() -> None:
    assert compensation(RULEBOOK.law("fr"), Money.of("10", "EUR"), False) == Money.of("40", "EUR")
    assert compensation(RULEBOOK.law("de"), Money.of("10", "EUR"), True).is_zero()
    assert compensation(RULEBOOK.law("eu"), Money.of("10", "EUR"), False, late=False).is_zero()
    assert compensation(None, Money.of("10", "EUR"), False).is_zero()
    assert compensation(RULEBOOK.law("fr"), Money.of("10", "USD"), False) == Money.zero("USD")


def test_foreign_currency_gets_no_fixed_compensation_and_says_why() -> None:
    result = run(FR, "1200.00", "USD", date(2024, 3, 31), date(2024, 8, 15))
    assert result.interest == Money.of("64.93", "USD")
    assert result.compensation == Money.zero("USD")
    assert any("in euros" in warning for warning in result.warnings)


# --- unknown rates ------------------------------------------------------------------------------------


def test_unknown_half_year_carries_forward_with_a_warning() -> None:
    result = run(FR, "1000.00", "EUR", date(2026, 6, 30), date(2026, 7, 31))
    assert result.segments[0].annual_rate == Decimal("12.15")
    assert len(result.warnings) == 1
    assert "ecb_mro" in result.warnings[0] and "2026 H2" in result.warnings[0]


def test_unknown_half_year_is_an_error_when_the_policy_says_so() -> None:
    terms = interest_terms(law="fr", unknown_rate="error")
    with pytest.raises(RelanceError) as raised:
        run(terms, "1000.00", "EUR", date(2026, 6, 30), date(2026, 7, 31))
    assert "2026 H2" in raised.value.message
    assert raised.value.hint is not None and "interest.rates" in raised.value.hint


def test_policy_rate_override_fills_the_gap() -> None:
    terms = interest_terms(law="fr", unknown_rate="error",
                          rate_overrides=({"from": "2026-07-01", "rate": "1.90", "source": "test"},))
    result = run(terms, "1000.00", "EUR", date(2026, 6, 30), date(2026, 7, 31))
    assert result.segments[0].annual_rate == Decimal("11.90")
    assert result.warnings == ()


def test_uk_unknown_reference_date_warns() -> None:
    result = run(interest_terms(law="uk"), "500.00", "GBP", date(2026, 7, 1), date(2026, 8, 1))
    assert any("boe_bank_rate" in warning and "2026 H2" in warning for warning in result.warnings)


# --- contractual rates and policy knobs ---------------------------------------------------------------


def test_contractual_annual_rate_is_constant_and_applies_to_consumers() -> None:
    terms = interest_terms(annual_rate="12.00")
    result = run(terms, "1000.00", "EUR", date(2024, 3, 31), date(2024, 8, 15), b2c=True)
    # 137 days at 12%: 1000 x 12% x 137/365 = 45.041096 -> 45.04; no law -> no compensation
    assert [(s.days, s.annual_rate) for s in result.segments] == [(137, Decimal("12.00"))]
    assert result.interest == Money.of("45.04", "EUR")
    assert result.compensation.is_zero()


def test_monthly_rate_is_twelve_times_act_365() -> None:
    # 1.5%/month -> 18%/year; 30 days on 1000 = 14.794521 -> 14.79 (US net-30 style, no compensation)
    result = run(interest_terms(monthly_rate="1.5"), "1000.00", "USD", date(2024, 3, 31), date(2024, 4, 30))
    assert result.segments[0].annual_rate == Decimal("18.0")
    assert result.to_json()["segments"][0]["annual_rate"] == "18.00"
    assert result.interest == Money.of("14.79", "USD")


def test_contractual_rate_with_a_law_keeps_the_statutory_compensation() -> None:
    result = run(interest_terms(law="fr", annual_rate="20"), "1200.00", "EUR", date(2024, 3, 31),
                 date(2024, 4, 30))
    assert result.segments[0].annual_rate == Decimal("20")
    assert result.compensation == Money.of("40", "EUR")


def test_grace_days() -> None:
    terms = interest_terms(law="fr", grace_days=10)
    due, until = date(2024, 3, 31), date(2024, 8, 15)
    within = run(terms, "1200.00", "EUR", due, until, [pay(date(2024, 4, 10), "1200")])
    assert within.total.is_zero() and "grace" in within.warnings[0]
    # Paid on day 11: interest still runs from the day after the due date (11 days).
    after = run(terms, "1200.00", "EUR", due, until, [pay(date(2024, 4, 11), "1200")])
    assert after.segments[0].start == date(2024, 4, 1) and after.segments[0].days == 11
    # 1200 x 14.50% x 11/365 = 5.243836 -> 5.24
    assert after.interest == Money.of("5.24", "EUR")
    assert after.compensation == Money.of("40", "EUR")


def test_minimum_drops_small_interest() -> None:
    terms = interest_terms(law="fr", minimum="5.00")
    small = run(terms, "1200.00", "EUR", date(2024, 3, 31), date(2024, 4, 10))  # 4.77
    assert small.interest.is_zero()
    assert small.compensation == Money.of("40", "EUR")
    assert any("minimum" in warning for warning in small.warnings)
    bigger = run(terms, "1200.00", "EUR", date(2024, 3, 31), date(2024, 4, 11))  # 5.24
    assert bigger.interest == Money.of("5.24", "EUR")


def test_cap_takes_the_smaller_of_amount_and_percent() -> None:
    by_amount = run(interest_terms(law="fr", cap_amount="50"), "1200.00", "EUR", date(2024, 3, 31),
                    date(2024, 8, 15))
    assert by_amount.interest == Money.of("50.00", "EUR")
    by_percent = run(interest_terms(law="fr", cap_amount="50", cap_percent="2"), "1200.00", "EUR",
                     date(2024, 3, 31), date(2024, 8, 15))
    assert by_percent.interest == Money.of("24.00", "EUR")
    assert any("capped" in warning for warning in by_percent.warnings)


def test_compounding_capitalises_a_full_year() -> None:
    # 10% on 1000 from 1 Jan 2023: year 1 (365 d) = 100; from 1 Jan 2024 the base is 1100:
    # 1100 x 10% x 366/365 = 110.301370; total 210.301370 -> 210.30 (simple interest: 200.27)
    simple = run(interest_terms(annual_rate="10"), "1000.00", "EUR", date(2022, 12, 31), date(2024, 12, 31))
    compound = run(interest_terms(annual_rate="10", compounding=True), "1000.00", "EUR",
                   date(2022, 12, 31), date(2024, 12, 31))
    assert simple.interest == Money.of("200.27", "EUR")
    assert compound.interest == Money.of("210.30", "EUR")
    assert [s.principal for s in compound.segments] == [Decimal("1000.00"), Decimal("1100.00")]


def test_terms_validation() -> None:
    with pytest.raises(RelanceError):
        interest_terms(annual_rate="10", monthly_rate="1")
    with pytest.raises(RelanceError):
        interest_terms(law="xx")
    with pytest.raises(RelanceError):
        interest_terms(unknown_rate="ignore")
    assert interest_terms(law="fr", minimum="1.5").minimum == Decimal("1.5")
    hash(interest_terms(law="fr", rate_overrides=({"from": "2026-07-01", "rate": "2"},)))


# --- CLI ----------------------------------------------------------------------------------------------


def test_cli_json_is_exactly_the_issue_example() -> None:
    result = CliRunner().invoke(cli, [
        "interest", "--law", "fr", "--amount", "1200.00", "--currency", "EUR", "--due", "2024-03-31",
        "--paid", "2024-08-15", "--json",
    ])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == ISSUE_EXAMPLE_JSON


def test_cli_readable_breakdown_with_payments() -> None:
    result = CliRunner().invoke(cli, [
        "interest", "--law", "fr", "--amount", "1200.00", "--due", "2024-03-31", "--as-of", "2024-08-15",
        "--payment", "2024-05-01:200.00",
    ])
    assert result.exit_code == 0, result.output
    assert "EUR 56.57" in result.output and "EUR 96.57" in result.output
    assert "23.835616" in result.output


def test_cli_uk_defaults_to_gbp() -> None:
    result = CliRunner().invoke(cli, [
        "interest", "--law", "uk", "--amount", "5000", "--due", "2023-12-30", "--paid", "2024-03-31",
        "--json",
    ])
    data = json.loads(result.output)
    assert (data["currency"], data["interest"], data["compensation"]) == ("GBP", "163.84", "70.00")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--due", "2024-02-30", "--paid", "2024-08-15"], "--due"),
        (["--due", "2024-03-31", "--paid", "tomorrow"], "--paid"),
        (["--due", "2024-03-31", "--paid", "2024-08-15", "--amount", "12,00x"], "--amount"),
        (["--due", "2024-03-31", "--paid", "2024-08-15", "--payment", "2024-05-01"], "DATE:AMOUNT"),
        (["--due", "2024-03-31", "--paid", "2024-08-15", "--payment", "2024-05-01:abc"], "--payment"),
        (["--due", "2024-03-31"], "exactly one of --paid"),
        (["--due", "2024-03-31", "--paid", "2024-08-15", "--as-of", "2024-08-15"], "exactly one of --paid"),
        (["--due", "2024-03-31", "--paid", "2024-08-15", "--currency", "EURO"], "ISO 4217"),
    ],
)
def test_cli_bad_input_is_a_usage_error_without_traceback(args: list[str], message: str) -> None:
    base = ["interest", "--law", "fr", "--amount", "1200.00"]
    if "--amount" in args:
        base = ["interest", "--law", "fr"]
    result = CliRunner().invoke(cli, [*base, *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
