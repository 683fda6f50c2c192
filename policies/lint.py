"""Warnings about a valid policy that is probably not what its author meant, or not what the law allows.

Pure: `today` is a parameter (it picks the half-year of the French taux légal). Each warning carries the
field path it is about, so `relance policy check` can print the file line next to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from policies.config import DEFAULT_LADDER, Ladder, Policy
from policies.jurisdiction import EU_MEMBERS
from policies.laws import fr
from policies.loader import format_path, line_for, parse_policy_with_lines
from policies.model.errors import PolicyError, RelanceError
from policies.model.ledger import CustomerKind
from policies.rates import half_year_label
from policies.rulebook import Rulebook

Loc = tuple[str | int, ...]

MAX_TERMS_DAYS = 60  # Directive 2011/7/EU art. 3(5): B2B terms at most 60 days unless agreed


@dataclass(frozen=True, slots=True)
class LintWarning:
    loc: Loc  # field path, e.g. ("interest", "annual_rate")
    message: str

    @property
    def path(self) -> str:
        return format_path(self.loc) or "(top level)"


def lint_policy(policy: Policy, *, today: date) -> list[LintWarning]:
    return [
        *_fr_contractual_rate(policy, today),
        *_payment_terms(policy),
        *_consumers_charged(policy),
        *_statutory_currency(policy),
        *_compensation_disabled(policy),
        *_interest_without_rate(policy),
        *_ladders(policy),
        *_unused_fees(policy),
        *_unreachable_groups(policy),
    ]


def _all_ladders(policy: Policy) -> list[tuple[str, Loc, Ladder]]:
    return [
        (DEFAULT_LADDER, ("ladder",), policy.ladder),
        *((name, ("ladders", name), ladder) for name, ladder in policy.ladders.items()),
    ]


def _fr_contractual_rate(policy: Policy, today: date) -> Iterator[LintWarning]:
    interest = policy.interest
    if policy.company.country != "FR":
        return
    if interest.annual_rate is not None:
        loc, annual = ("interest", "annual_rate"), interest.annual_rate
    elif interest.monthly_rate is not None:
        loc, annual = ("interest", "monthly_rate"), interest.monthly_rate * 12
    else:
        return
    taux_legal = policy.rulebook.tables.get(fr.FR_TAUX_LEGAL.name)
    if taux_legal is None:
        return
    try:
        legal = fr.legal_rate(taux_legal, today)
    except RelanceError:
        return
    floor = legal.rate * 3
    if annual < floor:
        stale = " (last known rate, carried forward)" if legal.carried_forward else ""
        yield LintWarning(
            loc,
            f"{_pct(annual)} % a year is below 3x the taux d'intérêt légal of {half_year_label(today)} "
            f"({_pct(legal.rate)} %{stale}, so at least {_pct(floor)} %): C. com. L441-10 makes such a "
            "clause unenforceable; use `statutory: fr` or a higher rate",
        )


def _payment_terms(policy: Policy) -> Iterator[LintWarning]:
    if policy.company.country not in EU_MEMBERS:
        return
    law = "C. com. L441-10" if policy.company.country == "FR" else "Directive 2011/7/EU art. 3(5)"
    terms = policy.company.payment_terms_days
    if terms is not None and terms > MAX_TERMS_DAYS:
        yield LintWarning(
            ("company", "payment_terms_days"),
            f"payment terms of {terms} days exceed {MAX_TERMS_DAYS} days ({law}; "
            "EU 2011/7 art. 3(5) allows more only if expressly agreed and not grossly unfair)",
        )
    for _, prefix, ladder in _all_ladders(policy):
        for index, step in enumerate(ladder.steps):
            if step.offset_days < -MAX_TERMS_DAYS:
                yield LintWarning(
                    (*prefix, "steps", index, "offset_days"),
                    f"a reminder {-step.offset_days} days before the due date implies payment terms over "
                    f"{MAX_TERMS_DAYS} days ({law})",
                )


def _charges_compensation(ladder: Ladder) -> bool:
    return any("compensation" in step.charge for step in ladder.steps)


def _consumers_charged(policy: Policy) -> Iterator[LintWarning]:
    """B2C customers never get the fixed compensation (it is B2B only): a ladder that charges it to a
    consumer group says something the engine will not do."""
    if not policy.compensation.enabled:
        return
    default_kind = policy.company.default_customer_kind
    for index, group in enumerate(policy.customers.groups):
        kind = group.kind or default_kind
        ladder = policy.ladder_named(group.ladder or DEFAULT_LADDER)
        if kind is CustomerKind.B2C and _charges_compensation(ladder):
            yield LintWarning(
                ("customers", "groups", index),
                f"group {group.name!r} is B2C but its ladder {group.ladder or DEFAULT_LADDER!r} charges "
                "compensation: the fixed recovery compensation is B2B only and will not be charged",
            )
    for customer_id, override in policy.customers.overrides.items():
        ladder_name = override.ladder or DEFAULT_LADDER
        if override.kind is CustomerKind.B2C and _charges_compensation(policy.ladder_named(ladder_name)):
            yield LintWarning(
                ("customers", "overrides", customer_id),
                f"customer {customer_id} is B2C but ladder {ladder_name!r} charges compensation "
                "(B2B only; it will not be charged)",
            )
    if default_kind is CustomerKind.B2C:
        if _charges_compensation(policy.ladder):
            yield LintWarning(
                ("company", "default_customer_kind"),
                "customers are B2C by default but the default ladder charges compensation "
                "(B2B only; it will not be charged)",
            )
        if policy.interest.statutory is not None:
            yield LintWarning(
                ("interest", "statutory"),
                "customers are B2C by default: the B2B statutory rate does not apply to consumers "
                "(relance uses the consumer rate of the law, or none)",
            )


def _statutory_currency(policy: Policy) -> Iterator[LintWarning]:
    law = policy.interest.statutory
    if law is None or not policy.compensation.enabled:
        return
    expected = policy.rulebook.law(law).compensation_currency
    if policy.company.currency != expected:
        yield LintWarning(
            ("compensation", "enabled"),
            f"the {law} statutory compensation is fixed in {expected} but the company currency is "
            f"{policy.company.currency}: invoices in other currencies get none",
        )


def _steps_charging(policy: Policy, charge: str, why: str) -> Iterator[LintWarning]:
    """A warning at every step that charges `charge`, which the policy will not charge (`why`)."""
    for _, prefix, ladder in _all_ladders(policy):
        for index, step in enumerate(ladder.steps):
            if charge in step.charge:
                yield LintWarning((*prefix, "steps", index, "charge"), f"step {step.name!r} {why}")


def _compensation_disabled(policy: Policy) -> Iterator[LintWarning]:
    if not policy.compensation.enabled:
        yield from _steps_charging(
            policy,
            "compensation",
            "charges compensation but `compensation.enabled` is false: nothing will be charged",
        )


def _interest_without_rate(policy: Policy) -> Iterator[LintWarning]:
    if not policy.interest.enabled:
        yield from _steps_charging(
            policy,
            "interest",
            "charges interest but the policy sets no interest (statutory, annual_rate or monthly_rate)",
        )


def _ladders(policy: Policy) -> Iterator[LintWarning]:
    for name, prefix, ladder in _all_ladders(policy):
        if all(step.offset_days <= 0 for step in ladder.steps):
            yield LintWarning(
                (*prefix, "steps"),
                f"ladder {name!r} has no step after the due date: late invoices are never chased",
            )
        for index, step in enumerate(ladder.steps):
            if step.offset_days < 0 and step.charge:
                yield LintWarning(
                    (*prefix, "steps", index, "charge"),
                    f"step {step.name!r} comes before the due date: nothing is owed yet, charges are skipped",
                )
    used = {group.ladder for group in policy.customers.groups}
    used |= {override.ladder for override in policy.customers.overrides.values()}
    for name in policy.ladders:
        if name not in used:
            yield LintWarning(("ladders", name), f"ladder {name!r} is not used by any group or override")


def _unused_fees(policy: Policy) -> Iterator[LintWarning]:
    used = {name for _, _, ladder in _all_ladders(policy) for step in ladder.steps for name in step.fee_names}
    if policy.recurring_fee is not None:
        used.add(policy.recurring_fee.fee)
    for name, fee in policy.fees.items():
        if name not in used:
            yield LintWarning(("fees", name), f"fee {name!r} is not charged by any ladder step")
        elif fee.fixed == 0 and fee.percent == 0:
            yield LintWarning(("fees", name), f"fee {name!r} is zero (set fixed or percent)")


def _unreachable_groups(policy: Policy) -> Iterator[LintWarning]:
    groups = policy.customers.groups
    for index, group in enumerate(groups):
        match = group.match
        if not (match.tags or match.countries or match.ids) and index < len(groups) - 1:
            yield LintWarning(
                ("customers", "groups", index + 1),
                f"group {groups[index + 1].name!r} is never used: the earlier group {group.name!r} "
                "matches every customer (first match wins)",
            )
            return


def _pct(value: Decimal) -> str:
    return f"{value.normalize():f}"


@dataclass(frozen=True, slots=True)
class PolicyReport:
    """The outcome of checking one policy file: errors (it does not load) or warnings (it does)."""

    source: str
    errors: tuple[str, ...]
    warnings: tuple[tuple[int, LintWarning], ...]  # (line, warning)

    @property
    def ok(self) -> bool:
        return not self.errors

    def lines(self) -> list[str]:
        """Human-readable lines: 'file: ok' or the errors, then 'warning: file:line: path: message'."""
        if self.errors:
            return list(self.errors)
        result = [f"{self.source}: ok" + (f" ({len(self.warnings)} warning(s))" if self.warnings else "")]
        result += [f"warning: {self.source}:{line}: {w.path}: {w.message}" for line, w in self.warnings]
        return result

    def as_json(self) -> dict[str, object]:
        return {
            "file": self.source,
            "ok": self.ok,
            "errors": list(self.errors),
            "warnings": [{"line": line, "path": w.path, "message": w.message} for line, w in self.warnings],
        }


def check_policy_text(text: str, source: str, *, today: date, rulebook: Rulebook) -> PolicyReport:
    """Validate and lint policy YAML text (pure: the caller reads the file)."""
    try:
        policy, lines = parse_policy_with_lines(text, source, rulebook=rulebook)
    except PolicyError as error:
        return PolicyReport(source, tuple(error.problems), ())
    warnings = tuple((line_for(w.loc, lines), w) for w in lint_policy(policy, today=today))
    return PolicyReport(source, (), tuple(sorted(warnings, key=lambda item: item[0])))
