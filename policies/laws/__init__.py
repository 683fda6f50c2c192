"""Late-payment laws as data plus small rules: what a law module provides to relance.

A law is registered through the `relance.laws` entry point group (the shipped ones too, see
pyproject.toml): the entry point names a `Law` value. Its reference-rate tables are CSV resources
(`effective_from,rate,source`) that the application reads at start-up (sync.rulebook) and hands to
the pure rules inside a `policies.rulebook.Rulebook`; nothing here reads a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Fixing(StrEnum):
    """How the reference rate is fixed over a delay."""

    # The rate in force on 1 January governs the first half-year, the one on 1 July the second;
    # re-fixed at every half-year of the delay (Directive 2011/7 art. 2(6) and most transpositions).
    HALF_YEARLY = "half_yearly"
    # One rate for the whole debt: the one in force on 31 December (interest starting 1 Jan-30 Jun)
    # or 30 June (starting 1 Jul-31 Dec) just before the half-year in which interest starts (UK).
    FIXED_PER_DEBT = "fixed_per_debt"


@dataclass(frozen=True, slots=True)
class RateTableSource:
    """Where a reference-rate table ships: a CSV resource of a package."""

    name: str  # e.g. "ecb_mro"; the name policies use in `interest.rates[].table`
    package: str  # importable package holding the file, e.g. "policies.data"
    resource: str  # file name inside it, e.g. "ecb_mro.csv"


@dataclass(frozen=True, slots=True)
class ConsumerInterest:
    """Statutory interest owed by a consumer (B2C) under a law that grants one."""

    table: str  # reference table
    margin: Decimal  # points over it
    note: str | None = None  # a warning shown with every consumer computation


@dataclass(frozen=True, slots=True)
class CompensationTier:
    """Fixed recovery compensation for a debt strictly below `below` (None: any debt)."""

    below: Decimal | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Law:
    """One statutory late-payment regime (B2B interest, consumer rule, fixed compensation)."""

    code: str  # what a policy writes under `interest.statutory`, e.g. "fr"
    title: str  # human name with its statute, shown in explanations
    countries: tuple[str, ...]  # ISO 3166-1 alpha-2 codes this law governs by default
    base_table: str  # reference rate table of the B2B rate (and default target of policy overrides)
    margin: Decimal  # points over the reference rate, B2B
    fixing: Fixing
    compensation_currency: str  # the currency the law fixes the compensation in
    compensation: tuple[CompensationTier, ...]  # in order; the first tier that fits applies
    consumer: ConsumerInterest | None = None  # None: consumers owe no statutory interest
    consumer_exclusion: str = ""  # why consumers owe none (when `consumer` is None)
    tables: tuple[RateTableSource, ...] = ()  # the rate tables this law brings
    eu_default: bool = False  # the law of EU member states that have no law of their own here
    rank: int = 1000  # listing order in messages and the schema (shipped laws first), then by code
