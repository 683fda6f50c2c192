"""The whole policy file, its cross-checks, and the pure resolution helpers (settings per
customer, interest terms, statutory law)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails

from policies.config.charges import (
    CompensationSettings,
    CreditSettings,
    DiscountSettings,
    FeeDefinition,
    InterestSettings,
    RecurringFee,
)
from policies.config.company import BusinessCalendar, Company, calendar_for
from policies.config.customers import CustomerSelection, CustomerSettings
from policies.config.ladder import Ladder
from policies.config.values import (
    DEFAULT_LADDER,
    RULEBOOK,
    NonNegativeAmount,
    PolicyModel,
    PositiveDays,
    field_error,
    unknown_ladder_error,
)
from policies.interest import InterestTerms
from policies.interest import RateOverride as TermsRateOverride
from policies.jurisdiction import governing_law
from policies.laws import Law
from policies.model.errors import RelanceError
from policies.model.ledger import Customer
from policies.rates import OVERRIDE_SOURCE, RateRow
from policies.rulebook import Rulebook


class Exclusions(PolicyModel):
    min_balance: NonNegativeAmount = Field(Decimal(0), description="Do not chase balances below this.")
    tags: tuple[str, ...] = Field((), description="Never chase customers with any of these tags.")


class PaymentPlanSettings(PolicyModel):
    acceleration_days: PositiveDays | None = Field(
        None, description="The whole balance falls due when an instalment is this many days late."
    )


# ---------------------------------------------------------------------------------------------------------
# the policy


class Policy(PolicyModel):
    """A relance credit policy (policy.yaml)."""

    model_config = ConfigDict(title="relance policy")

    version: Literal[1] = Field(description="Policy format version; always 1.")
    company: Company = Field(description="The company whose receivables are chased.")
    customers: CustomerSelection = Field(
        default_factory=CustomerSelection, description="Groups and overrides."
    )
    credit: CreditSettings = Field(default_factory=CreditSettings, description="Credit limits.")
    interest: InterestSettings = Field(default_factory=InterestSettings, description="Late-payment interest.")
    compensation: CompensationSettings = Field(
        default_factory=CompensationSettings, description="Statutory fixed recovery compensation."
    )
    fees: dict[str, FeeDefinition] = Field({}, description="Named fees that ladder steps may charge.")
    recurring_fee: RecurringFee | None = Field(None, description="A fee charged again every N days.")
    discount: DiscountSettings | None = Field(None, description="Early-payment discount.")
    ladder: Ladder = Field(description="The default reminder ladder.")
    ladders: dict[str, Ladder] = Field({}, description="Named alternative ladders for groups and overrides.")
    exclusions: Exclusions = Field(default_factory=Exclusions, description="What is never chased.")
    payment_plans: PaymentPlanSettings = Field(
        default_factory=PaymentPlanSettings, description="Payment plan rules."
    )

    _settings_cache: dict[Customer, CustomerSettings] = PrivateAttr(default_factory=dict)
    _rulebook: Rulebook | None = PrivateAttr(None)
    _terms: tuple[InterestTerms | None] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _references(self) -> Policy:
        errors: list[InitErrorDetails] = []
        fee_names = sorted(self.fees)
        ladders: list[tuple[tuple[str | int, ...], Ladder]] = [(("ladder",), self.ladder)]
        ladders += [(("ladders", name), ladder) for name, ladder in self.ladders.items()]
        for prefix, ladder in ladders:
            for index, step in enumerate(ladder.steps):
                for position, item in enumerate(step.charge):
                    name = item.removeprefix("fee:")
                    if item.startswith("fee:") and name not in self.fees:
                        errors.append(
                            field_error(
                                (*prefix, "steps", index, "charge", position),
                                item,
                                "unknown_fee",
                                "unknown fee {name} (defined fees: {known})",
                                name=repr(name),
                                known=", ".join(fee_names) or "none",
                            )
                        )
        if DEFAULT_LADDER in self.ladders:
            errors.append(
                field_error(
                    ("ladders", DEFAULT_LADDER),
                    DEFAULT_LADDER,
                    "reserved_ladder",
                    "the name 'default' is reserved for the top-level `ladder`",
                )
            )
        known_ladders = [DEFAULT_LADDER, *sorted(self.ladders)]
        for index, group in enumerate(self.customers.groups):
            if group.ladder is not None and group.ladder not in known_ladders:
                errors.append(
                    unknown_ladder_error(
                        ("customers", "groups", index, "ladder"), group.ladder, known_ladders
                    )
                )
        for customer_id, override in self.customers.overrides.items():
            if override.ladder is not None and override.ladder not in known_ladders:
                errors.append(
                    unknown_ladder_error(
                        ("customers", "overrides", customer_id, "ladder"), override.ladder, known_ladders
                    )
                )
        names = [group.name for group in self.customers.groups]
        for index, name in enumerate(names):
            if name in names[:index]:
                errors.append(
                    field_error(
                        ("customers", "groups", index, "name"),
                        name,
                        "duplicate_group",
                        "group name {name} is used twice",
                        name=repr(name),
                    )
                )
        if self.recurring_fee is not None and self.recurring_fee.fee not in self.fees:
            errors.append(
                field_error(
                    ("recurring_fee", "fee"),
                    self.recurring_fee.fee,
                    "unknown_fee",
                    "unknown fee {name} (defined fees: {known})",
                    name=repr(self.recurring_fee.fee),
                    known=", ".join(fee_names) or "none",
                )
            )
        if errors:
            raise ValidationError.from_exception_data("Policy", errors)
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Policy:
        copied = super().model_copy(update=update, deep=deep)
        copied._settings_cache = {}  # resolutions of the original may not hold for the copy
        copied._terms = None
        return copied

    # -- resolution (pure) ---------------------------------------------------------------------------------

    def ladder_named(self, name: str) -> Ladder:
        return self.ladder if name == DEFAULT_LADDER else self.ladders[name]

    def settings_for(self, customer: Customer) -> CustomerSettings:
        """Resolve groups (first match wins) then the customer's own override. Cached per customer."""
        cached = self._settings_cache.get(customer)
        if cached is not None:
            return cached
        group = next((g for g in self.customers.groups if g.match.matches(customer)), None)
        layers = [layer for layer in (group, self.customers.overrides.get(customer.id)) if layer is not None]

        def pick(field: str) -> Any:
            for layer in reversed(layers):
                value = getattr(layer, field)
                if value is not None:
                    return value
            return None

        ladder_name = pick("ladder") or DEFAULT_LADDER
        limit = pick("credit_limit")
        excluded = bool(pick("exclude")) or bool(set(self.exclusions.tags).intersection(customer.tags))
        settings = CustomerSettings(
            group=group.name if group else None,
            ladder=self.ladder_named(ladder_name),
            ladder_name=ladder_name,
            credit_limit=limit if limit is not None else self.credit.default_limit,
            language=pick("language") or customer.language or self.company.language,
            kind=pick("kind") or customer.kind or self.company.default_customer_kind,
            excluded=excluded,
            paused_until=pick("paused_until"),
        )
        self._settings_cache[customer] = settings
        return settings

    @property
    def rulebook(self) -> Rulebook:
        """The laws, rate tables and channels this policy was validated against."""
        if self._rulebook is None:
            raise RelanceError(
                "this policy was validated without a rulebook (laws, rate tables, channels)",
                hint="load it with sync.rulebook.load_policy, or parse_policy(text, rulebook=...)",
            )
        return self._rulebook

    def bind(self, rulebook: Rulebook) -> Policy:
        """Attach the rulebook the policy was validated against (policies.loader does this)."""
        self._rulebook = rulebook
        self._terms = None
        return self

    def interest_terms(self) -> InterestTerms | None:
        """The interest settings as the interest engine takes them; None when the policy charges none."""
        if self._terms is None:
            self._terms = (resolve_interest(self.interest, self.rulebook),)
        return self._terms[0]

    def statutory_law(self) -> Law | None:
        """The law deciding the fixed compensation and the legal mentions: the one the interest
        section names, else the company country's (policies.jurisdiction)."""
        return governing_law(self.rulebook, self.interest.statutory, self.company.country)

    def business_calendar(self) -> BusinessCalendar:
        country, _, subdivision = (self.company.holidays or "").partition("-")
        return calendar_for(
            frozenset(day.number for day in self.company.business_days), country or None, subdivision or None
        )


def resolve_interest(settings: InterestSettings, rulebook: Rulebook) -> InterestTerms | None:
    """Validated interest settings -> the engine's terms, with the law and its rate tables. None when
    the settings charge no interest."""
    if not settings.enabled:
        return None
    law = rulebook.law(settings.statutory) if settings.statutory else None
    return InterestTerms(
        law=law.code if law is not None else None,
        regime=law,
        tables=rulebook.tables_of(law) if law is not None else (),
        annual_rate=settings.annual_rate,
        monthly_rate=settings.monthly_rate,
        grace_days=settings.grace_days,
        minimum=settings.minimum,
        cap_amount=settings.cap.amount,
        cap_percent=settings.cap.percent_of_principal,
        compounding=settings.compounding,
        unknown_rate=settings.unknown_rate.value,
        rate_overrides=tuple(
            TermsRateOverride(RateRow(r.from_, r.rate, r.source or OVERRIDE_SOURCE), r.table)
            for r in settings.rates
        ),
    )


def interest_terms(
    rulebook: Rulebook,
    *,
    law: str | None = None,
    annual_rate: object = None,
    monthly_rate: object = None,
    grace_days: int = 0,
    minimum: object = "0",
    cap_amount: object = None,
    cap_percent: object = None,
    compounding: bool = False,
    unknown_rate: str = "warn",
    rate_overrides: tuple[Mapping[str, Any], ...] = (),
) -> InterestTerms:
    """Interest terms from keyword values, validated as the policy's `interest:` section is (the one
    place they are checked): `relance interest` and library callers use this. `law` may come with a
    contractual rate: the rate is charged, the law decides the fixed compensation. RelanceError when
    a value is invalid or nothing is charged."""
    contractual = annual_rate is not None or monthly_rate is not None
    data: dict[str, Any] = {
        "statutory": None if contractual else law,
        "annual_rate": annual_rate,
        "monthly_rate": monthly_rate,
        "grace_days": grace_days,
        "minimum": minimum,
        "cap": {"amount": cap_amount, "percent_of_principal": cap_percent},
        "compounding": compounding,
        "unknown_rate": unknown_rate,
        "rates": [dict(row) for row in rate_overrides],
    }
    try:
        settings = InterestSettings.model_validate(data, context={RULEBOOK: rulebook})
    except ValidationError as error:
        problems = "; ".join(
            f"interest.{'.'.join(str(p) for p in d['loc'])}: {d['msg']}".replace("interest.: ", "interest: ")
            for d in error.errors(include_url=False)
        )
        raise RelanceError(problems) from None
    terms = resolve_interest(settings, rulebook)
    if terms is None:
        raise RelanceError("interest: set statutory, annual_rate or monthly_rate")
    if contractual and law is not None:
        regime = rulebook.law(law)
        terms = replace(terms, law=regime.code, regime=regime, tables=rulebook.tables_of(regime))
    return terms
