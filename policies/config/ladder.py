"""The reminder ladder as the policy file writes it (steps, charges, repeat)."""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from policies.config.values import (
    BusinessDayRule,
    ChannelName,
    Days,
    NonNegativeAmount,
    PolicyModel,
    PositiveDays,
    field_error,
)

_CHARGE = re.compile(r"interest|compensation|fee:[^\s]+")


class LadderStep(PolicyModel):
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


class LadderRepeat(PolicyModel):
    every_days: PositiveDays = Field(description="Repeat the last step every N days.")


class Ladder(PolicyModel):
    steps: tuple[LadderStep, ...] = Field(min_length=1, description="Steps, in offset order.")
    repeat: LadderRepeat | None = Field(None, description="Optional repetition of the last step.")

    @model_validator(mode="after")
    def _order(self) -> Ladder:
        errors: list[InitErrorDetails] = []
        seen: set[str] = set()
        for index, step in enumerate(self.steps):
            if step.name in seen:
                errors.append(
                    field_error(
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
                    field_error(
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
