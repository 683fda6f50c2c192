"""Which late-payment law governs, and the fixed recovery compensation it owes: the one place the
country -> law map, the EU member list and the compensation rule live (planner, notices and lint
all ask here)."""

from __future__ import annotations

from decimal import Decimal

from policies.laws import Law
from policies.model.money import Money
from policies.rulebook import Rulebook

# EU member states (Directive 2011/7/EU applies; art. 3(5): B2B terms at most 60 days unless agreed).
EU_MEMBERS = frozenset(
    {"AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU"}
    | {"IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK"}
)


_CURRENCY_WORDS = {"EUR": "euros", "GBP": "pounds sterling"}


def law_for_country(rulebook: Rulebook, country: str | None) -> Law | None:
    """The law a company of `country` falls under: a law naming the country, else for an EU member
    the EU default law (the directive), else none."""
    code = (country or "").upper()
    if not code:
        return None
    for law in rulebook.laws.values():
        if code in law.countries:
            return law
    if code in EU_MEMBERS:
        return next((law for law in rulebook.laws.values() if law.eu_default), None)
    return None


def governing_law(rulebook: Rulebook, statutory: str | None, country: str | None) -> Law | None:
    """The law named by the policy (`interest.statutory`), else the one of the company's country:
    a contractual rate in France still owes the statutory EUR 40."""
    if statutory:
        return rulebook.law(statutory)
    return law_for_country(rulebook, country)


def statutory_compensation(law: Law | None, principal: Money, b2c: bool) -> tuple[Money, tuple[str, ...]]:
    """Fixed recovery compensation for one late invoice of `principal`, with the reason when none is
    owed although a law applies. Consumers never owe it; a law fixes it in its own currency, and an
    invoice in another currency gets none (converting is a business decision, not ours)."""
    zero = Money.zero(principal.currency)
    if law is None or b2c or principal.amount <= 0:
        return zero, ()
    if principal.currency != law.compensation_currency:
        fixed_in = _CURRENCY_WORDS.get(law.compensation_currency, law.compensation_currency)
        return zero, (
            f"no fixed compensation: {law.title} sets it in {fixed_in} and the invoice is in "
            f"{principal.currency}",
        )
    return Money(compensation_amount(law, principal.amount), principal.currency), ()


def compensation_amount(law: Law, debt: Decimal) -> Decimal:
    for tier in law.compensation:
        if tier.below is None or debt < tier.below:
            return tier.amount
    return Decimal(0)
