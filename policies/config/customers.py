"""Customer groups and per-customer overrides, and the settings they resolve to for one customer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import (
    Field,
    field_validator,
)

from policies.config.ladder import Ladder
from policies.config.values import Language, NonNegativeAmount, PolicyModel, checked_language
from policies.model.ledger import Customer, CustomerKind


class GroupMatch(PolicyModel):
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


class CustomerOverride(PolicyModel):
    """Settings for one customer (by ledger id) or one group; anything omitted keeps the default."""

    ladder: str | None = Field(None, description="Name of a ladder under `ladders` (or 'default').")
    credit_limit: NonNegativeAmount | None = Field(None, description="Credit limit in company currency.")
    language: Language | None = Field(None, description="Notice language (ISO 639-1).")
    kind: CustomerKind | None = Field(None, description="b2b or b2c (B2C never gets B2B statutory charges).")
    exclude: bool | None = Field(None, description="true: never chase this customer.")
    paused_until: date | None = Field(None, description="No reminders until this date (inclusive).")

    @field_validator("language", mode="after")
    @classmethod
    def checked_language(cls, value: str | None) -> str | None:
        return checked_language(value)


class CustomerGroup(CustomerOverride):
    """A named set of customers sharing settings. The first matching group wins."""

    name: str = Field(description="Group name (shown in reasons and reports).")
    match: GroupMatch = Field(default_factory=GroupMatch, description="Which customers belong here.")


class CustomerSelection(PolicyModel):
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
