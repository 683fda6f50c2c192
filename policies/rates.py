"""Reference rate tables (ECB MRO, Basiszinssatz, Bank Rate, taux de l'intérêt légal) as values.

Each law ships its tables as CSV (`effective_from,rate,source`, rate in percent; see policies/laws);
the application reads the text at start-up (sync.rulebook) and `parse_csv` turns it into a table
here, so nothing in this module reads a file. A row governs from its date until the next row. The
last row is only known to cover the half-year it falls in: a lookup past that half-year still answers
with the last rate but flags it `carried_forward`, so callers can warn (or refuse, with
`unknown_rate: error`). Policies can add or replace rows with `with_overrides`.
"""

from __future__ import annotations

import csv
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

from policies.model.errors import RelanceError
from policies.model.money import to_decimal

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
    """An immutable, date-sorted rate table. Hashable (the hash computed once: lookups and interest
    schedules are cached per table, and hashing every row on every call would cost the planner)."""

    name: str
    rows: tuple[RateRow, ...]
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.rows:
            raise RelanceError(f"rate table {self.name!r} has no rows")
        dates = [row.effective_from for row in self.rows]
        if dates != sorted(dates) or len(set(dates)) != len(dates):
            raise RelanceError(f"rate table {self.name!r}: rows must have distinct, sorted dates")
        object.__setattr__(self, "_hash", hash((self.name, self.rows)))

    def __hash__(self) -> int:
        return self._hash

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


def parse_csv(name: str, text: str, *, source: str | None = None) -> RateTable:
    """A table from CSV text `effective_from,rate,source`; errors name `source` (the file) and line."""
    where = source or f"{name}.csv"
    rows = []
    for line_number, record in enumerate(csv.DictReader(text.splitlines()), start=2):
        try:
            rows.append(
                RateRow(date.fromisoformat(record["effective_from"]), Decimal(record["rate"]),
                        record["source"].strip())
            )
        except (KeyError, ValueError, ArithmeticError) as error:
            raise RelanceError(f"{where}:{line_number}: bad row ({error})") from None
    return RateTable(name, tuple(rows))
