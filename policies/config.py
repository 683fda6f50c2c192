"""The credit policy (policy.yaml) as pydantic v2 models, plus pure resolution helpers.

Every model forbids unknown keys so that a typo is an error, not a silently ignored setting. Money and
rates are Decimal: YAML strings or integers are accepted, YAML floats are refused because they have
already lost precision by the time we see them. Cross-references (fees named by ladder steps, ladders
named by overrides) are checked by `Policy` and reported at the path of the offending value.

`policies.loader.parse_policy` turns YAML text into a `Policy` with file:line error messages.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, time, timedelta
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Literal

import holidays as holidays_lib
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from policies.interest import InterestTerms
from policies.interest import RateOverride as TermsRateOverride
from policies.jurisdiction import governing_law
from policies.laws import Law
from policies.model.errors import RelanceError
from policies.model.ledger import Customer, CustomerKind
from policies.rates import OVERRIDE_SOURCE, RateRow
from policies.rulebook import Rulebook

DEFAULT_LADDER = "default"  # the name under which `ladder` (the top-level one) is known

# ---------------------------------------------------------------------------------------------------------
# Value types


class BusinessDayRule(StrEnum):
    NEXT = "next"
    PREVIOUS = "previous"
    NONE = "none"


class BreachAction(StrEnum):
    ALERT = "alert"
    CALL_TASK = "call_task"
    HOLD = "hold"


class UnknownRate(StrEnum):
    WARN = "warn"
    ERROR = "error"


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def number(self) -> int:
        """Monday = 0, as `date.weekday()`."""
        return list(Weekday).index(self)


def _decimal(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError(
            "decimal_bool", "expected an amount, got {value}", {"value": str(value).lower()}
        )
    if isinstance(value, float):
        raise PydanticCustomError(
            "decimal_float",
            "write amounts as quoted strings, e.g. '40.00' (got {value}; YAML numbers with a decimal "
            "point are binary floats and lose precision)",
            {"value": repr(value)},
        )
    if isinstance(value, str):
        cleaned = value.strip().replace("_", "").replace(",", "")
        if not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)", cleaned):
            raise PydanticCustomError(
                "decimal_text", "expected an amount like '40.00', got {value}", {"value": repr(value)}
            )
        return Decimal(cleaned)
    return value


_DECIMAL_SCHEMA = {"type": ["string", "integer"], "pattern": r"^[+-]?(\d+(\.\d*)?|\.\d+)$"}
# Bounds keep every date and amount the engine derives from a policy computable (a day count of 10**20
# would parse, then overflow date arithmetic while planning): generous for any real policy.
AMOUNT_LIMIT = 10**12  # amounts in the company currency stay below this
MAX_OFFSET_DAYS = 3650  # a ladder step at most ten years before or after the due date
MAX_DAYS = 36500  # any other day count: at most a hundred years
# An amount in the company currency: quoted string ("40.00") or integer; never a float.
Amount = Annotated[
    Decimal,
    BeforeValidator(_decimal),
    Field(gt=-AMOUNT_LIMIT, lt=AMOUNT_LIMIT),
    WithJsonSchema(_DECIMAL_SCHEMA),
]
NonNegativeAmount = Annotated[
    Decimal, BeforeValidator(_decimal), Field(ge=0, lt=AMOUNT_LIMIT), WithJsonSchema(_DECIMAL_SCHEMA)
]
Percent = Annotated[Decimal, BeforeValidator(_decimal), Field(ge=0, le=100), WithJsonSchema(_DECIMAL_SCHEMA)]
Rate = Annotated[  # a reference rate in percent: may be negative (ECB deposit rate 2014-2022)
    Decimal, BeforeValidator(_decimal), Field(ge=-100, le=100), WithJsonSchema(_DECIMAL_SCHEMA)
]
Days = Annotated[int, Field(ge=-MAX_OFFSET_DAYS, le=MAX_OFFSET_DAYS)]
# "HH:MM" in the schema: JSON Schema's "time" format would demand seconds and a UTC offset.
ClockTime = Annotated[time, WithJsonSchema({"type": "string", "pattern": r"^\d{1,2}:\d{2}(:\d{2})?$"})]
PositiveDays = Annotated[int, Field(ge=1, le=MAX_DAYS)]
NonNegativeDays = Annotated[int, Field(ge=0, le=MAX_DAYS)]


def _language(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.fullmatch(r"[a-z]{2}", value):
        raise PydanticCustomError(
            "language",
            "expected a two-letter language code like 'fr' or 'en', got {value}",
            {"value": repr(value)},
        )
    return value


Language = Annotated[str, BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)]

RULEBOOK = "rulebook"  # validation context key: the Rulebook of laws, tables, channels a policy may name
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def _registered(value: Any, info: ValidationInfo, what: str) -> Any:
    """A law, rate table or channel name: one the context's rulebook registers (any well-formed
    name when validated without one; such a policy is not bound and cannot compute)."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise PydanticCustomError(f"{what}_name", "expected a {what} name, got {value}",
                                  {"what": what, "value": repr(value)})
    rulebook = (info.context or {}).get(RULEBOOK)
    if rulebook is not None:
        known = {"law": rulebook.laws, "table": rulebook.tables, "channel": rulebook.channels}[what]
        if value not in known:
            raise PydanticCustomError(
                f"unknown_{what}", "expected one of: {known}, got {value}",
                {"known": ", ".join(known), "value": repr(value)},
            )
    return value


def _law_name(value: Any, info: ValidationInfo) -> Any:
    return _registered(value, info, "law")


def _table_name(value: Any, info: ValidationInfo) -> Any:
    return _registered(value, info, "table")


def _channel_name(value: Any, info: ValidationInfo) -> Any:
    return _registered(value, info, "channel")


# Names of registered laws, rate tables and channels (relance.laws / relance.channels entry points);
# the JSON Schema lists the registered ones (sync.commands.policy_tools adds the enums).
LawName = Annotated[str, BeforeValidator(_law_name), WithJsonSchema({"type": "string", "x-registry": "law"})]
TableName = Annotated[
    str, BeforeValidator(_table_name), WithJsonSchema({"type": "string", "x-registry": "table"})
]
ChannelName = Annotated[
    str, BeforeValidator(_channel_name), WithJsonSchema({"type": "string", "x-registry": "channel"})
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, use_enum_values=False)


# ---------------------------------------------------------------------------------------------------------
# company


class SendWindow(_Model):
    """Hours (company time zone) during which e-mails may be sent."""

    start: ClockTime = Field(time(9, 0), description='Earliest sending time, "HH:MM" (quote it).')
    end: ClockTime = Field(time(18, 0), description='Latest sending time, "HH:MM" (quote it).')

    @model_validator(mode="after")
    def _ordered(self) -> SendWindow:
        if self.end <= self.start:
            raise PydanticCustomError("send_window", "end must be after start")
        return self


class Company(_Model):
    """Who is chasing: the company whose ledger relance works on."""

    name: str = Field(description="Company name, as shown on notices.")
    country: str = Field(description="ISO 3166-1 alpha-2 country code, e.g. FR.")
    currency: str = Field(description="ISO 4217 currency code of amounts in this policy, e.g. EUR.")
    timezone: str = Field("UTC", description="IANA time zone, e.g. Europe/Paris.")
    language: Language = Field("en", description="Default notice language (ISO 639-1), e.g. fr.")
    business_days: tuple[Weekday, ...] = Field(
        (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI),
        description="Working days, e.g. [mon, tue, wed, thu, fri].",
    )
    holidays: str | None = Field(
        None,
        description='Public holidays: a `holidays` package country code ("FR"), optionally with a '
        'subdivision ("DE-BY"); "none" or omitted for no holidays.',
    )
    send_window: SendWindow = Field(default_factory=SendWindow, description="Sending hours.")
    default_customer_kind: CustomerKind = Field(
        CustomerKind.B2B, description="Kind of customers the ledger does not classify: b2b or b2c."
    )
    payment_terms_days: NonNegativeDays | None = Field(
        None, description="Usual payment terms in days after issue (used by the demo and the linter)."
    )

    @field_validator("country", mode="before")
    @classmethod
    def _country(cls, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"[A-Za-z]{2}", value):
            return value.upper()
        raise PydanticCustomError(
            "country", "expected a two-letter country code like FR, got {value}", {"value": repr(value)}
        )

    @field_validator("currency", mode="before")
    @classmethod
    def _currency(cls, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"[A-Z]{3}", value):
            return value
        raise PydanticCustomError(
            "currency",
            "expected a three-letter currency code in capitals like EUR, got {value}",
            {"value": repr(value)},
        )

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "timezone", "unknown time zone {value} (expected e.g. Europe/Paris)", {"value": repr(value)}
            ) from None
        return value

    @field_validator("language", mode="after")
    @classmethod
    def _language(cls, value: str) -> str:
        return _language(value) or value

    @field_validator("holidays", mode="before")
    @classmethod
    def _holidays(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "")):
            return None
        if not isinstance(value, str):
            raise PydanticCustomError("holidays", "expected a country code like FR or DE-BY", {})
        country, _, subdivision = value.strip().partition("-")
        supported = holidays_lib.list_supported_countries()
        if country.upper() not in supported:
            raise PydanticCustomError(
                "holidays",
                "unknown holiday country {value} (expected e.g. FR, GB, DE-BY, US, or none)",
                {"value": repr(value)},
            )
        if subdivision and subdivision.upper() not in {s.upper() for s in supported[country.upper()]}:
            raise PydanticCustomError(
                "holidays",
                "unknown subdivision {value} for {country} (known: {known})",
                {
                    "value": repr(subdivision),
                    "country": country.upper(),
                    "known": ", ".join(supported[country.upper()][:20]),
                },
            )
        return f"{country.upper()}-{subdivision.upper()}" if subdivision else country.upper()

    @field_validator("business_days")
    @classmethod
    def _some_days(cls, value: tuple[Weekday, ...]) -> tuple[Weekday, ...]:
        if not value:
            raise PydanticCustomError("business_days", "expected at least one working day", {})
        return value


# ---------------------------------------------------------------------------------------------------------
# customers


class GroupMatch(_Model):
    """Which customers a group takes. Every criterion given must match; within a list, any value does.
    An empty match takes every customer (a catch-all group, put it last)."""

    tags: tuple[str, ...] = Field((), description="Customer has any of these tags.")
    countries: tuple[str, ...] = Field((), description="Customer country is one of these (alpha-2).")
    ids: tuple[str, ...] = Field((), description="Customer ledger id is one of these.")

    @field_validator("ids", "tags", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        return (
            [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
            if isinstance(value, list | tuple)
            else value
        )

    @field_validator("countries")
    @classmethod
    def _upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.upper() for v in value)

    def matches(self, customer: Customer) -> bool:
        if self.ids and customer.id not in self.ids:
            return False
        if self.countries and (customer.country or "").upper() not in self.countries:
            return False
        return not (self.tags and not set(self.tags).intersection(customer.tags))


class CustomerOverride(_Model):
    """Settings for one customer (by ledger id) or one group; anything omitted keeps the default."""

    ladder: str | None = Field(None, description="Name of a ladder under `ladders` (or 'default').")
    credit_limit: NonNegativeAmount | None = Field(None, description="Credit limit in company currency.")
    language: Language | None = Field(None, description="Notice language (ISO 639-1).")
    kind: CustomerKind | None = Field(None, description="b2b or b2c (B2C never gets B2B statutory charges).")
    exclude: bool | None = Field(None, description="true: never chase this customer.")
    paused_until: date | None = Field(None, description="No reminders until this date (inclusive).")

    @field_validator("language", mode="after")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        return _language(value)


class CustomerGroup(CustomerOverride):
    """A named set of customers sharing settings. The first matching group wins."""

    name: str = Field(description="Group name (shown in reasons and reports).")
    match: GroupMatch = Field(default_factory=GroupMatch, description="Which customers belong here.")


class CustomerSelection(_Model):
    groups: tuple[CustomerGroup, ...] = Field((), description="Customer groups; first match wins.")
    overrides: dict[str, CustomerOverride] = Field(
        {}, description='Per-customer settings by ledger id (quote the id: "42").'
    )

    @field_validator("overrides", mode="before")
    @classmethod
    def _string_ids(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k) if isinstance(k, int) else k: v for k, v in value.items()}
        return value


# ---------------------------------------------------------------------------------------------------------
# credit, interest, compensation, fees, discount


class LimitSuggestion(_Model):
    """Suggest credit limits from payment history (a suggestion with reasons; never applied silently)."""

    enabled: bool = Field(False, description="Produce limit suggestions.")
    lookback_days: PositiveDays = Field(365, description="History window, in days.")
    raise_percent: Percent = Field(Decimal(20), description="Raise by this % for good payers.")
    lower_percent: Percent = Field(Decimal(30), description="Lower by this % after late payments.")
    on_time_ratio: NonNegativeAmount = Field(
        Decimal("0.9"), le=1, description="Share of invoices paid on time to count as a good payer (0-1)."
    )
    late_days: PositiveDays = Field(30, description="A payment this many days late triggers a lower limit.")


class CreditSettings(_Model):
    default_limit: NonNegativeAmount | None = Field(
        None, description="Default credit limit in company currency; omit for no limit."
    )
    include_drafts: bool = Field(False, description="Exposure includes draft invoices.")
    on_breach: BreachAction = Field(BreachAction.ALERT, description="alert | call_task | hold.")
    suggestion: LimitSuggestion = Field(default_factory=LimitSuggestion, description="Limit suggestions.")


class InterestCap(_Model):
    amount: NonNegativeAmount | None = Field(None, description="Maximum interest per invoice (amount).")
    percent_of_principal: Percent | None = Field(
        None, description="Maximum interest per invoice, % of its principal."
    )


class RateOverride(_Model):
    from_: date = Field(alias="from", description="Date the rate takes effect (YYYY-MM-DD).")
    rate: Rate = Field(description="Reference rate in percent (before the statutory margin).")
    source: str | None = Field(None, description="Where the rate comes from (shown in explanations).")
    table: TableName | None = Field(
        None, description="Which shipped table the row belongs to; omitted = the law's base rate table."
    )


class InterestSettings(_Model):
    """Late-payment interest: statutory (by law), or a contractual annual or monthly rate, or none."""

    statutory: LawName | None = Field(None, description="Statutory interest by law (a registered law).")
    annual_rate: Percent | None = Field(None, description="Contractual rate, % per year.")
    monthly_rate: Percent | None = Field(None, description="Contractual rate, % per month.")
    grace_days: NonNegativeDays = Field(0, description="Days after due before interest starts.")
    minimum: NonNegativeAmount = Field(Decimal(0), description="Charge no interest below this amount.")
    cap: InterestCap = Field(default_factory=InterestCap, description="Maximum interest per invoice.")
    compounding: bool = Field(False, description="Compound interest (only if your contract says so).")
    unknown_rate: UnknownRate = Field(
        UnknownRate.WARN, description="When a period has no known statutory rate: warn (carry last) | error."
    )
    rates: tuple[RateOverride, ...] = Field((), description="Overrides/additions to the shipped rate table.")

    @model_validator(mode="after")
    def _one_mode(self) -> InterestSettings:
        modes = [
            name for name in ("statutory", "annual_rate", "monthly_rate") if getattr(self, name) is not None
        ]
        if len(modes) > 1:
            raise PydanticCustomError(
                "interest_modes",
                "choose one of statutory, annual_rate, monthly_rate (got {modes})",
                {"modes": " and ".join(modes)},
            )
        return self

    @property
    def enabled(self) -> bool:
        return any(v is not None for v in (self.statutory, self.annual_rate, self.monthly_rate))


class CompensationSettings(_Model):
    """Statutory fixed compensation for recovery costs (B2B only): EU/FR/DE EUR 40, UK GBP 40/70/100."""

    enabled: bool = Field(True, description="Charge the statutory fixed compensation on late B2B invoices.")


class FeeDefinition(_Model):
    fixed: NonNegativeAmount = Field(Decimal(0), description="Fixed amount in the invoice currency.")
    percent: Percent = Field(Decimal(0), description="Percentage of the invoice balance.")
    description: str | None = Field(None, description="Line description on the fee invoice.")


class RecurringFee(_Model):
    fee: str = Field(description="Name of a fee under `fees`.")
    every_days: PositiveDays = Field(description="Charge it again every N days after the first charge.")


class DiscountSettings(_Model):
    """Early-payment discount, shown in pre-due reminders; a matching payment gets a credit note."""

    percent: Percent = Field(description="Discount in percent of the total, e.g. '2'.")
    within_days: NonNegativeDays = Field(description="Days from the issue date the discount applies.")


# ---------------------------------------------------------------------------------------------------------
# ladder


_CHARGE = re.compile(r"interest|compensation|fee:[^\s]+")


class LadderStep(_Model):
    name: str = Field(description="Step name, unique within its ladder (shown in reasons).")
    offset_days: Days = Field(description="Days relative to the due date; negative = before.")
    channel: ChannelName = Field(description="How the notice goes out (a registered channel).")
    template: str = Field(description="Template name for the notice.")
    min_amount: NonNegativeAmount = Field(Decimal(0), description="Skip invoices with a smaller balance.")
    charge: tuple[str, ...] = Field(
        (), description="Charges posted at this step: interest, compensation, fee:<name>."
    )
    business_days: BusinessDayRule = Field(
        BusinessDayRule.NEXT, description="Move a non-business day: next | previous | none."
    )
    demand_days: PositiveDays | None = Field(
        None, description="Days given to pay in a formal demand (final notice), shown in the notice."
    )

    @field_validator("charge")
    @classmethod
    def _charges(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            if not _CHARGE.fullmatch(item):
                raise PydanticCustomError(
                    "charge",
                    "expected interest, compensation or fee:<name>, got {value}",
                    {"value": repr(item)},
                )
        if len(set(value)) != len(value):
            raise PydanticCustomError("charge", "a charge is listed twice", {})
        return value

    @property
    def fee_names(self) -> tuple[str, ...]:
        return tuple(item.removeprefix("fee:") for item in self.charge if item.startswith("fee:"))


class LadderRepeat(_Model):
    every_days: PositiveDays = Field(description="Repeat the last step every N days.")


class Ladder(_Model):
    steps: tuple[LadderStep, ...] = Field(min_length=1, description="Steps, in offset order.")
    repeat: LadderRepeat | None = Field(None, description="Optional repetition of the last step.")

    @model_validator(mode="after")
    def _order(self) -> Ladder:
        errors: list[InitErrorDetails] = []
        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            if step.name in seen:
                errors.append(
                    _error(
                        ("steps", index, "name"),
                        step.name,
                        "duplicate_step",
                        "step name {name} is used twice in this ladder",
                        name=repr(step.name),
                    )
                )
            seen.add(step.name)
            if index and step.offset_days < self.steps[index - 1].offset_days:
                errors.append(
                    _error(
                        ("steps", index, "offset_days"),
                        step.offset_days,
                        "step_order",
                        "steps must be in offset order ({offset} comes after {previous})",
                        offset=step.offset_days,
                        previous=self.steps[index - 1].offset_days,
                    )
                )
        if errors:
            raise ValidationError.from_exception_data("Ladder", errors)
        return self


# ---------------------------------------------------------------------------------------------------------
# exclusions, payment plans


class Exclusions(_Model):
    min_balance: NonNegativeAmount = Field(Decimal(0), description="Do not chase balances below this.")
    tags: tuple[str, ...] = Field((), description="Never chase customers with any of these tags.")


class PaymentPlanSettings(_Model):
    acceleration_days: PositiveDays | None = Field(
        None, description="The whole balance falls due when an instalment is this many days late."
    )


# ---------------------------------------------------------------------------------------------------------
# the policy


@dataclass(frozen=True, slots=True)
class CustomerSettings:
    """The policy resolved for one customer."""

    group: str | None
    ladder: Ladder
    ladder_name: str
    credit_limit: Decimal | None
    language: str
    kind: CustomerKind
    excluded: bool
    paused_until: date | None


@lru_cache(maxsize=256)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    return frozenset(holidays_lib.country_holidays(country, subdiv=subdivision, years=year).keys())


@dataclass(frozen=True, slots=True)
class BusinessCalendar:
    """Working days and public holidays (computed by the `holidays` package, no I/O)."""

    weekdays: frozenset[int]  # date.weekday() values that are working days
    country: str | None = None
    subdivision: str | None = None

    def holidays_in(self, year: int) -> frozenset[date]:
        return _holiday_dates(self.country, self.subdivision, year) if self.country else frozenset()

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays_in(day.year)

    def adjust(self, day: date, rule: BusinessDayRule) -> date:
        """Move `day` to the next/previous business day (unchanged if it is one, or for `none`)."""
        rule = BusinessDayRule(rule)
        if rule is BusinessDayRule.NONE:
            return day
        step = timedelta(days=1 if rule is BusinessDayRule.NEXT else -1)
        for _ in range(60):  # holidays never span weeks; the bound only guards odd calendars
            if self.is_business_day(day):
                return day
            day += step
        return day


class Policy(_Model):
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
                            _error(
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
                _error(
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
                    _unknown_ladder(("customers", "groups", index, "ladder"), group.ladder, known_ladders)
                )
        for customer_id, override in self.customers.overrides.items():
            if override.ladder is not None and override.ladder not in known_ladders:
                errors.append(
                    _unknown_ladder(
                        ("customers", "overrides", customer_id, "ladder"), override.ladder, known_ladders
                    )
                )
        names = [group.name for group in self.customers.groups]
        for index, name in enumerate(names):
            if name in names[:index]:
                errors.append(
                    _error(
                        ("customers", "groups", index, "name"),
                        name,
                        "duplicate_group",
                        "group name {name} is used twice",
                        name=repr(name),
                    )
                )
        if self.recurring_fee is not None and self.recurring_fee.fee not in self.fees:
            errors.append(
                _error(
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
        return _calendar(
            frozenset(day.number for day in self.company.business_days), country or None, subdivision or None
        )


@lru_cache(maxsize=64)
def _calendar(weekdays: frozenset[int], country: str | None, subdivision: str | None) -> BusinessCalendar:
    return BusinessCalendar(weekdays, country, subdivision)


def _error(
    loc: tuple[str | int, ...], value: Any, kind: str, message: str, **context: Any
) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message, context), loc=loc, input=value)


def _unknown_ladder(loc: tuple[str | int, ...], name: str, known: list[str]) -> InitErrorDetails:
    return _error(
        loc,
        name,
        "unknown_ladder",
        "unknown ladder {name} (known: {known})",
        name=repr(name),
        known=", ".join(known),
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
