"""The credit policy (policy.yaml) as pydantic v2 models, plus pure resolution helpers.

Every model forbids unknown keys so that a typo is an error, not a silently ignored setting. Money and
rates are Decimal: YAML strings or integers are accepted, YAML floats are refused because they have
already lost precision by the time we see them. Cross-references (fees named by ladder steps, ladders
named by overrides) are checked by `Policy` and reported at the path of the offending value; names of
laws, rate tables and channels are checked against the rulebook the policy is validated with.

`policies.loader.parse_policy` turns YAML text into a `Policy` with file:line error messages.

values.py (types, validators), company.py, customers.py, charges.py (credit, interest,
compensation, fees, discount), ladder.py, policy.py (the whole file, resolution helpers).
"""

from policies.config.company import BusinessCalendar, Company, SendWindow
from policies.config.customers import CustomerGroup, CustomerOverride, CustomerSettings, GroupMatch
from policies.config.ladder import Ladder, LadderStep
from policies.config.policy import Policy, interest_terms, resolve_interest
from policies.config.values import (
    DEFAULT_LADDER,
    RULEBOOK,
    BreachAction,
    BusinessDayRule,
    UnknownRate,
    Weekday,
)

__all__ = [
    "DEFAULT_LADDER",
    "RULEBOOK",
    "BreachAction",
    "BusinessCalendar",
    "BusinessDayRule",
    "Company",
    "CustomerGroup",
    "CustomerOverride",
    "CustomerSettings",
    "GroupMatch",
    "Ladder",
    "LadderStep",
    "Policy",
    "SendWindow",
    "UnknownRate",
    "Weekday",
    "interest_terms",
    "resolve_interest",
]
