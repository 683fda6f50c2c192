"""The installed rulebook (laws, rate tables, channels) and policy helpers bound to it."""

from __future__ import annotations

from typing import Any

from policies import loader
from policies.config import Policy, interest_terms
from policies.interest import InterestTerms
from policies.rates import RateTable
from sync.rulebook import load_policy, load_rulebook

RULEBOOK = load_rulebook()

__all__ = ["RULEBOOK", "load_policy", "parse_policy", "table", "terms"]


def parse_policy(text: str, source: str = "policy.yaml") -> Policy:
    return loader.parse_policy(text, source, rulebook=RULEBOOK)


def terms(**fields: Any) -> InterestTerms:
    """Interest terms as `interest_terms(RULEBOOK, law=..., annual_rate=..., ...)`."""
    return interest_terms(RULEBOOK, **fields)


def table(name: str) -> RateTable:
    return RULEBOOK.table(name)
