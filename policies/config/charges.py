"""What lateness costs and what is offered: credit limits, interest, compensation, fees, discount."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import (
    Field,
    model_validator,
)
from pydantic_core import PydanticCustomError

from policies.config.values import (
    BreachAction,
    LawName,
    NonNegativeAmount,
    NonNegativeDays,
    Percent,
    PolicyModel,
    PositiveDays,
    Rate,
    TableName,
    UnknownRate,
)


class LimitSuggestion(PolicyModel):
    """Suggest credit limits from payment history (a suggestion with reasons; never applied silently)."""

    enabled: bool = Field(False, description="Produce limit suggestions.")
    lookback_days: PositiveDays = Field(365, description="History window, in days.")
    raise_percent: Percent = Field(Decimal(20), description="Raise by this % for good payers.")
    lower_percent: Percent = Field(Decimal(30), description="Lower by this % after late payments.")
    on_time_ratio: NonNegativeAmount = Field(
        Decimal("0.9"), le=1, description="Share of invoices paid on time to count as a good payer (0-1)."
    )
    late_days: PositiveDays = Field(30, description="A payment this many days late triggers a lower limit.")


class CreditSettings(PolicyModel):
    default_limit: NonNegativeAmount | None = Field(
        None, description="Default credit limit in company currency; omit for no limit."
    )
    include_drafts: bool = Field(False, description="Exposure includes draft invoices.")
    on_breach: BreachAction = Field(BreachAction.ALERT, description="alert | call_task | hold.")
    suggestion: LimitSuggestion = Field(default_factory=LimitSuggestion, description="Limit suggestions.")


class InterestCap(PolicyModel):
    amount: NonNegativeAmount | None = Field(None, description="Maximum interest per invoice (amount).")
    percent_of_principal: Percent | None = Field(
        None, description="Maximum interest per invoice, % of its principal."
    )


class RateOverride(PolicyModel):
    from_: date = Field(alias="from", description="Date the rate takes effect (YYYY-MM-DD).")
    rate: Rate = Field(description="Reference rate in percent (before the statutory margin).")
    source: str | None = Field(None, description="Where the rate comes from (shown in explanations).")
    table: TableName | None = Field(
        None, description="Which shipped table the row belongs to; omitted = the law's base rate table."
    )


class InterestSettings(PolicyModel):
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


class CompensationSettings(PolicyModel):
    """Statutory fixed compensation for recovery costs (B2B only): EU/FR/DE EUR 40, UK GBP 40/70/100."""

    enabled: bool = Field(True, description="Charge the statutory fixed compensation on late B2B invoices.")


class FeeDefinition(PolicyModel):
    fixed: NonNegativeAmount = Field(Decimal(0), description="Fixed amount in the invoice currency.")
    percent: Percent = Field(Decimal(0), description="Percentage of the invoice balance.")
    description: str | None = Field(None, description="Line description on the fee invoice.")


class RecurringFee(PolicyModel):
    fee: str = Field(description="Name of a fee under `fees`.")
    every_days: PositiveDays = Field(description="Charge it again every N days after the first charge.")


class DiscountSettings(PolicyModel):
    """Early-payment discount, shown in pre-due reminders; a matching payment gets a credit note."""

    percent: Percent = Field(description="Discount in percent of the total, e.g. '2'.")
    within_days: NonNegativeDays = Field(description="Days from the issue date the discount applies.")


# ---------------------------------------------------------------------------------------------------------
# ladder
