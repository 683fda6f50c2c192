"""The company section (who is chasing, when it works and sends) and its business calendar."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date, time, timedelta
from functools import lru_cache
from typing import Any

import holidays as holidays_lib
from pydantic import (
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from policies.config.values import (
    BusinessDayRule,
    ClockTime,
    Language,
    NonNegativeDays,
    PolicyModel,
    Weekday,
    checked_language,
)
from policies.model.ledger import CustomerKind


class SendWindow(PolicyModel):
    """Hours (company time zone) during which e-mails may be sent."""

    start: ClockTime = Field(time(9, 0), description='Earliest sending time, "HH:MM" (quote it).')
    end: ClockTime = Field(time(18, 0), description='Latest sending time, "HH:MM" (quote it).')

    @model_validator(mode="after")
    def _ordered(self) -> SendWindow:
        if self.end <= self.start:
            raise PydanticCustomError("send_window", "end must be after start")
        return self


class Company(PolicyModel):
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
    def checked_language(cls, value: str) -> str:
        return checked_language(value) or value

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


@lru_cache(maxsize=64)
def calendar_for(weekdays: frozenset[int], country: str | None, subdivision: str | None) -> BusinessCalendar:
    return BusinessCalendar(weekdays, country, subdivision)
