"""The registered rules a policy may name: laws, their reference-rate tables, and notice channels.

A `Rulebook` is a plain value. The application builds it once from the `relance.laws` and
`relance.channels` entry points and the rate tables' CSV files (sync.rulebook, the edge that does
the reading) and binds it to each policy it loads; the pure rules only read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from policies.laws import Law
from policies.model.actions import ActionKind
from policies.model.errors import RelanceError
from policies.rates import RateTable


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """What the rules need to know of a notice channel (its sending lives in sync.channels)."""

    name: str  # what a ladder step writes under `channel`
    kind: ActionKind  # REMINDER, TASK or AGENCY: how the planner files the step's notice
    description: str
    email: bool = False  # goes out by e-mail: an unattended run sends it only inside the send window
    rank: int = 1000  # listing order in messages and the schema (shipped channels first), then by name


@dataclass(frozen=True)
class Rulebook:
    laws: Mapping[str, Law] = field(default_factory=dict)  # by code, in rank order
    tables: Mapping[str, RateTable] = field(default_factory=dict)  # by name
    channels: Mapping[str, ChannelSpec] = field(default_factory=dict)  # by name, in rank order

    @classmethod
    def of(
        cls, laws: Iterable[Law], tables: Iterable[RateTable], channels: Iterable[ChannelSpec]
    ) -> Rulebook:
        return cls(
            {law.code: law for law in sorted(laws, key=lambda law: (law.rank, law.code))},
            {table.name: table for table in tables},
            {c.name: c for c in sorted(channels, key=lambda channel: (channel.rank, channel.name))},
        )

    def law(self, code: str) -> Law:
        try:
            return self.laws[code]
        except KeyError:
            raise RelanceError(
                f"unknown late-payment law {code!r}", hint=f"known laws: {', '.join(self.laws) or 'none'}"
            ) from None

    def table(self, name: str) -> RateTable:
        try:
            return self.tables[name]
        except KeyError:
            raise RelanceError(
                f"unknown rate table {name!r}", hint=f"known tables: {', '.join(self.tables) or 'none'}"
            ) from None

    def channel(self, name: str) -> ChannelSpec:
        try:
            return self.channels[name]
        except KeyError:
            raise RelanceError(
                f"unknown channel {name!r}", hint=f"known channels: {', '.join(self.channels) or 'none'}"
            ) from None

    def tables_of(self, law: Law) -> tuple[RateTable, ...]:
        """The reference tables a law computes with (its own, and any it names that another brought)."""
        names = dict.fromkeys([law.base_table, *(s.name for s in law.tables)])
        if law.consumer is not None:
            names[law.consumer.table] = None
        return tuple(self.table(name) for name in names)
