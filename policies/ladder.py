"""The reminder ladder as plain data: which step falls due when, and which one to propose now.

Everything here works on integer day ordinals (`date.toordinal()`), so the planner can evaluate
100k invoices a second: a ladder is compiled once per plan, the adjusted step dates are cached per
due date, and choosing a step is a few integer comparisons.

Positions: base steps are numbered 0..n-1 in policy order (the order is the escalation order).
With `repeat: {every_days: N}` the last step repeats; repeat k (k >= 1) has position n-1+k and the
step name `"<last>#<k>"`, so each repeat is its own "step" that happens at most once.

Choosing (the no-burst rule, see `choose`): among the due steps not yet done, only the most advanced
one is proposed, and only if it is more advanced than anything already done; the other due-but-
never-done base steps are reported as superseded (recorded once, never sent).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from policies.config.ladder import Ladder, LadderStep
from policies.config.values import BusinessDayRule

REPEAT_SEPARATOR = "#"

# adjust(day, rule) -> the business day the step's rule moves `day` to
Adjuster = Callable[[date, BusinessDayRule], date]


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One ladder step, normalised (independent of the pydantic config classes)."""

    name: str
    position: int
    offset_days: int  # relative to the due date; negative = before
    channel: str  # ledger_email | email | call_task | letter | agency
    template: str | None
    min_amount: Decimal
    charges: tuple[str, ...]  # "interest" | "compensation" | "fee:<name>"
    business_days: BusinessDayRule  # how the calendar moves a non-business day (next | previous | none)
    repeat_index: int = 0  # 0 for a base step, k >= 1 for the k-th repeat of the last step
    demand_days: int | None = None  # formal demand: days given to pay (shown in the notice)

    @property
    def label(self) -> str:
        """'D-15', 'D0', 'D+30' (repeats: the nominal offset of that repeat)."""
        if self.offset_days == 0:
            return "D0"
        return f"D{self.offset_days:+d}"


def step_from_config(step: LadderStep, position: int) -> StepSpec:
    """Normalise a policy file's LadderStep."""
    return StepSpec(
        name=step.name,
        position=position,
        offset_days=step.offset_days,
        channel=step.channel,
        template=step.template,
        min_amount=step.min_amount,
        charges=tuple(step.charge),
        business_days=step.business_days,
        demand_days=step.demand_days,
    )


def _no_adjustment(day: date, rule: BusinessDayRule) -> date:
    return day


@dataclass(frozen=True, slots=True)
class Schedule:
    """The adjusted due ordinal of every base step for one due date."""

    step_days: tuple[int, ...]  # adjusted ordinal per base position
    first_day: int  # min(step_days): nothing is due before it
    last_day: int  # adjusted ordinal of the last base step


class CompiledLadder:
    """A ladder ready for fast evaluation; one per ladder per plan run (it caches dates)."""

    def __init__(
        self,
        name: str,
        steps: Sequence[StepSpec],
        *,
        repeat_every_days: int | None = None,
        adjust: Adjuster | None = None,
    ) -> None:
        if not steps:
            raise ValueError(f"ladder {name!r} has no steps")
        self.name = name
        self.steps: tuple[StepSpec, ...] = tuple(steps)
        self.repeat_every_days = repeat_every_days if repeat_every_days and repeat_every_days > 0 else None
        self._adjust = adjust or _no_adjustment
        self._positions = {step.name: step.position for step in self.steps}
        # name -> position, or None (hot path; repeat names resolved through position_of)
        self.position_get: Callable[[str | None], int | None] = (
            self.position_of if self.repeat_every_days else self._positions.get  # type: ignore[assignment]
        )
        self._schedules: dict[int, Schedule] = {}
        self._adjusted: dict[tuple[int, BusinessDayRule], int] = {}
        self._repeat_specs: dict[int, StepSpec] = {}
        self.has_charges = any(step.charges for step in self.steps)
        self.max_min_amount = max(step.min_amount for step in self.steps)  # filter only below this

    @classmethod
    def from_config(cls, name: str, ladder: Ladder, adjust: Adjuster | None = None) -> CompiledLadder:
        steps = [step_from_config(step, index) for index, step in enumerate(ladder.steps)]
        every = ladder.repeat.every_days if ladder.repeat is not None else None
        return cls(name, steps, repeat_every_days=every, adjust=adjust)

    # -- dates -------------------------------------------------------------------------------
    def adjusted(self, ordinal: int, rule: BusinessDayRule) -> int:
        cache_key = (ordinal, rule)
        cached = self._adjusted.get(cache_key)
        if cached is None:
            cached = self._adjust(date.fromordinal(ordinal), rule).toordinal()
            self._adjusted[cache_key] = cached
        return cached

    def schedule(self, due_ordinal: int) -> Schedule:
        cached = self._schedules.get(due_ordinal)
        if cached is None:
            days = tuple(
                self.adjusted(due_ordinal + step.offset_days, step.business_days) for step in self.steps
            )
            cached = Schedule(days, min(days), days[-1])
            self._schedules[due_ordinal] = cached
        return cached

    # -- steps -------------------------------------------------------------------------------
    def step(self, position: int) -> StepSpec:
        last = len(self.steps) - 1
        if position <= last:
            return self.steps[position]
        spec = self._repeat_specs.get(position)
        if spec is None:
            base = self.steps[last]
            index = position - last
            assert self.repeat_every_days is not None
            spec = StepSpec(
                name=f"{base.name}{REPEAT_SEPARATOR}{index}",
                position=position,
                offset_days=base.offset_days + index * self.repeat_every_days,
                channel=base.channel,
                template=base.template,
                min_amount=base.min_amount,
                charges=base.charges,
                business_days=base.business_days,
                repeat_index=index,
                demand_days=base.demand_days,
            )
            self._repeat_specs[position] = spec
        return spec

    def tier(self, position: int) -> int:
        """The offset of the step at `position`: steps of one tier fall due together."""
        return self.step(position).offset_days

    def position_of(self, step_name: str | None) -> int | None:
        """Position of a step name from history; None when the current ladder has no such step."""
        if step_name is None:
            return None
        position = self._positions.get(step_name)
        if position is not None:
            return position
        base, sep, index = step_name.rpartition(REPEAT_SEPARATOR)
        if sep and self.repeat_every_days and index.isdigit() and base == self.steps[-1].name:
            return len(self.steps) - 1 + int(index)
        return None

    def due_positions(self, due_ordinal: int, today: int, *, min_offset: int | None = None) -> list[int]:
        """Positions whose adjusted date is on or before today, ascending (repeats: the latest only).

        `min_offset` keeps only steps with offset_days >= it (instalments: no pre-due steps)."""
        schedule = self.schedule(due_ordinal)
        if today < schedule.first_day:
            return []
        steps = self.steps
        positions = [
            index
            for index, day in enumerate(schedule.step_days)
            if day <= today and (min_offset is None or steps[index].offset_days >= min_offset)
        ]
        every = self.repeat_every_days
        if every and today > schedule.last_day:
            last = steps[-1]
            nominal_last = due_ordinal + last.offset_days
            index = (today - nominal_last) // every
            while index >= 1:
                day = self.adjusted(nominal_last + index * every, last.business_days)
                if day <= today:
                    positions.append(len(steps) - 1 + index)
                    break
                index -= 1
        return positions

    def step_day(self, due_ordinal: int, position: int) -> int:
        """Adjusted ordinal on which the step at `position` falls due."""
        last = len(self.steps) - 1
        if position <= last:
            return self.schedule(due_ordinal).step_days[position]
        spec = self.step(position)
        return self.adjusted(due_ordinal + spec.offset_days, spec.business_days)


@dataclass(frozen=True, slots=True)
class Choice:
    chosen: tuple[int, ...]  # positions to propose now (steps sharing the most advanced due offset)
    superseded: tuple[int, ...]  # due base steps never done that will never be sent


NO_CHOICE = Choice((), ())


def choose(
    due_positions: Sequence[int],
    done_positions: Collection[int],
    tier: Callable[[int], int],
    *,
    base_count: int | None = None,
) -> Choice:
    """The no-burst rule.

    Steps sharing an offset form a tier (D+15 late letter and D+15 e-mail go out together).
    candidates = due positions not done (done includes superseded ones). The candidates of the most
    advanced due tier are proposed, provided that tier is not behind the most advanced step already
    done (never go back down the ladder); every other candidate is superseded. Repeat positions
    (>= base_count) are never superseded: a missed repeat simply does not happen.
    """
    candidates = [position for position in due_positions if position not in done_positions]
    if not candidates:
        return NO_CHOICE
    best_tier = max(tier(position) for position in candidates)
    highest_done = max((tier(position) for position in done_positions), default=None)
    if highest_done is None or best_tier >= highest_done:
        chosen = tuple(position for position in candidates if tier(position) == best_tier)
    else:
        chosen = ()
    superseded = tuple(
        position
        for position in candidates
        if position not in chosen and (base_count is None or position < base_count)
    )
    return Choice(chosen, superseded)


def positions_done(ladder: CompiledLadder, step_names: Iterable[str | None]) -> set[int]:
    done: set[int] = set()
    for name in step_names:
        position = ladder.position_of(name)
        if position is not None:
            done.add(position)
    return done
