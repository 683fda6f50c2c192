"""Value types of the policy file (amounts, percents, day counts, languages, names of registered
laws, tables and channels), the shared model base and error helpers."""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

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


def checked_language(value: str | None) -> str | None:
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
        raise PydanticCustomError(
            f"{what}_name", "expected a {what} name, got {value}", {"what": what, "value": repr(value)}
        )
    rulebook = (info.context or {}).get(RULEBOOK)
    if rulebook is not None:
        known = {"law": rulebook.laws, "table": rulebook.tables, "channel": rulebook.channels}[what]
        if value not in known:
            raise PydanticCustomError(
                f"unknown_{what}",
                "expected one of: {known}, got {value}",
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


class PolicyModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, use_enum_values=False)


# ---------------------------------------------------------------------------------------------------------
# company


def field_error(
    loc: tuple[str | int, ...], value: Any, kind: str, message: str, **context: Any
) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message, context), loc=loc, input=value)


def unknown_ladder_error(loc: tuple[str | int, ...], name: str, known: list[str]) -> InitErrorDetails:
    return field_error(
        loc,
        name,
        "unknown_ladder",
        "unknown ladder {name} (known: {known})",
        name=repr(name),
        known=", ".join(known),
    )
