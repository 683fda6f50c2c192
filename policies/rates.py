"""Reference rate tables (ECB MRO, Basiszinssatz, Bank Rate, taux de l'intérêt légal), shipped as data.

Each table is a CSV in policies/data/ with `effective_from,rate,source` (rate in percent). A row governs
from its date until the next row. The last row is only known to cover the half-year it falls in: a
lookup past that half-year still answers with the last rate but flags it `carried_forward`, so callers
can warn (or refuse, with `unknown_rate: error`). Policies can add or replace rows with `with_overrides`.
"""

from __future__ import annotations

import csv
import io
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache, lru_cache
from importlib import resources
from typing import Any, NamedTuple

from policies.model.errors import RelanceError
from policies.model.money import to_decimal

TABLE_NAMES: tuple[str, ...] = ("ecb_mro", "de_basiszins", "boe_bank_rate", "fr_taux_legal")
OVERRIDE_SOURCE = "policy override (interest.rates)"


class RateRow(NamedTuple):
    effective_from: date
    rate: Decimal  # percent per year
    source: str


class RateLookup(NamedTuple):
    rate: Decimal
    effective_from: date
    source: str
    carried_forward: bool  # True when the date is past the half-year the last row is known to cover


def half_year_start(on: date) -> date:
    return date(on.year, 1 if on.month <= 6 else 7, 1)


def half_year_end(on: date) -> date:
    return date(on.year, 6, 30) if on.month <= 6 else date(on.year, 12, 31)


def half_year_label(on: date) -> str:
    return f"{on.year} H{1 if on.month <= 6 else 2}"


@dataclass(frozen=True, slots=True)
class RateTable:
    """An immutable, date-sorted rate table. Hashable, so lookups can be cached per table."""

    name: str
    rows: tuple[RateRow, ...]

    def __post_init__(self) -> None:
        if not self.rows:
            raise RelanceError(f"rate table {self.name!r} has no rows")
        dates = [row.effective_from for row in self.rows]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise RelanceError(f"rate table {self.name!r}: rows must have distinct, sorted dates")

    @property
    def known_until(self) -> date:
        """Last day the table is known to cover: the end of the half-year of its last row."""
        return half_year_end(self.rows[-1].effective_from)

    def lookup(self, on: date) -> RateLookup:
        return _lookup(self, on)

    def with_overrides(self, rows: Iterable[Mapping[str, Any] | RateRow]) -> RateTable:
        """A copy with rows added or replaced (same date) by policy overrides `[{from, rate, source}]`."""
        merged = {row.effective_from: row for row in self.rows}
        for raw in rows:
            row = parse_override(raw)
            merged[row.effective_from] = row
        return RateTable(self.name, tuple(sorted(merged.values())))


@lru_cache(maxsize=4096)
def _lookup(table: RateTable, on: date) -> RateLookup:
    rows = table.rows
    index = bisect_right(rows, on, key=lambda row: row.effective_from) - 1
    if index < 0:
        raise RelanceError(
            f"rate table {table.name!r} has no rate for {on.isoformat()} (it starts on "
            f"{rows[0].effective_from.isoformat()})",
            hint=f"add the rate in force then under interest.rates in the policy "
            f"(e.g. {{from: {on.isoformat()}, rate: '...', source: '...'}})",
        )
    row = rows[index]
    return RateLookup(row.rate, row.effective_from, row.source, on > table.known_until)


def parse_override(raw: Mapping[str, Any] | RateRow) -> RateRow:
    """Turn a policy row `{from: 2026-07-01, rate: "2.15", source: "..."}` into a RateRow."""
    if isinstance(raw, RateRow):
        return raw
    start = raw.get("from", raw.get("effective_from"))
    if isinstance(start, str):
        try:
            start = date.fromisoformat(start)
        except ValueError:
            raise RelanceError(
                f"interest.rates: 'from' must be a date (YYYY-MM-DD), got {start!r}"
            ) from None
    if not isinstance(start, date):
        raise RelanceError(f"interest.rates: each row needs 'from' (a date), got {dict(raw)!r}")
    try:
        rate = to_decimal(raw.get("rate"))
    except (TypeError, ValueError):
        raise RelanceError(
            f"interest.rates[{start.isoformat()}]: 'rate' must be a decimal string like \"2.15\", "
            f"got {raw.get('rate')!r}"
        ) from None
    return RateRow(start, rate, str(raw.get("source") or OVERRIDE_SOURCE))


def parse_csv(name: str, text: str) -> RateTable:
    rows = []
    for line_number, record in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            rows.append(
                RateRow(date.fromisoformat(record["effective_from"]), Decimal(record["rate"]),
                        record["source"].strip())
            )
        except (KeyError, ValueError, ArithmeticError) as error:
            raise RelanceError(f"policies/data/{name}.csv:{line_number}: bad row ({error})") from None
    return RateTable(name, tuple(rows))


@cache
def load_table(name: str) -> RateTable:
    """The shipped table `name` (one of TABLE_NAMES), read once from the package data."""
    if name not in TABLE_NAMES:
        raise RelanceError(f"unknown rate table {name!r}", hint=f"use one of {', '.join(TABLE_NAMES)}")
    text = resources.files("policies.data").joinpath(f"{name}.csv").read_text(encoding="utf-8")
    return parse_csv(name, text)


def fr_legal_rate(on: date) -> RateLookup:
    """Taux de l'intérêt légal (creditors who are not private persons) for the half-year of `on`.

    The policy linter compares FR contractual rates with 3x this (C. com. L441-10)."""
    return load_table("fr_taux_legal").lookup(half_year_start(on))
