"""One day's planning run: its inputs, the caches shared by every rule, and what it has produced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from policies.config import CustomerSettings, Policy
from policies.ladder import CompiledLadder, StepSpec
from policies.model.actions import ActionKind, DoneAction, PlannedAction
from policies.model.ledger import Customer, CustomerKind, Invoice, Settlement
from policies.planning.history import NO_HISTORY, InvoiceHistory
from policies.planning.plan import SkipReason


@dataclass(slots=True)
class CustomerContext:
    customer: Customer
    settings: CustomerSettings
    ladder: CompiledLadder
    blocked: str | None  # why the customer is not chased today, or None
    b2c: bool


@dataclass(slots=True)
class Due:
    """One invoice due for one step today (before grouping into a notice)."""

    invoice: Invoice
    step: StepSpec
    step_day: int
    effective_due: date
    superseded: tuple[str, ...]
    accelerated_plan: str | None = None


@dataclass(slots=True)
class Output:
    actions: list[PlannedAction] = field(default_factory=list)
    superseded: list[PlannedAction] = field(default_factory=list)
    skipped: list[SkipReason] = field(default_factory=list)
    warnings: dict[str, None] = field(default_factory=dict)  # ordered set

    def warn(self, message: str) -> None:
        self.warnings[message] = None


def lateness(days_late: int) -> str:
    if days_late > 0:
        return f"is {days_late} day{'s' if days_late != 1 else ''} late"
    if days_late == 0:
        return "is due today"
    return f"is due in {-days_late} day{'s' if days_late != -1 else ''}"


def step_title(step: StepSpec) -> str:
    return f"{step.label} step '{step.name}'"


def _profile_safe_ids(policy: Policy) -> frozenset[str] | None:
    """Customer ids whose settings depend on the id itself (overrides, groups matching ids); None when
    group matching looks at more than tags/countries/ids (then settings are resolved per customer)."""
    groups = policy.customers.groups
    if groups and set(type(groups[0].match).model_fields) - {"tags", "countries", "ids"}:
        return None
    ids = set(policy.customers.overrides)
    for group in groups:
        ids.update(group.match.ids)
    return frozenset(ids)


class DayRun:
    """The state every planning rule of one day reads and writes (ladders compiled once, customer
    settings resolved once per profile, invoice histories summarised once)."""

    def __init__(
        self,
        policy: Policy,
        today: date,
        customers: Mapping[str, Customer],
        settlements: Mapping[str, Sequence[Settlement]],
        history: Mapping[str, Sequence[DoneAction]],
        disputes: Mapping[str, date | None],
        pauses: Mapping[str, date],
        connection: str,
    ) -> None:
        self.policy = policy
        self.today = today
        self.t = today.toordinal()
        self.customers = customers
        self.settlements = settlements
        self.history = history
        self.disputes = disputes
        self.pauses = pauses
        self.connection = connection
        self.out = Output()
        self.min_balance = policy.exclusions.min_balance
        self._adjust = policy.business_calendar().adjust
        self._ladders: dict[str, CompiledLadder] = {}
        self.contexts: dict[str, CustomerContext] = {}
        self._by_profile: dict[tuple[object, ...], CustomerSettings] = {}
        self._special_ids = _profile_safe_ids(policy)
        self.terms = policy.interest_terms()
        self.law = policy.statutory_law()
        self.kind_of = {name: spec.kind for name, spec in policy.rulebook.channels.items()}
        self.compensation_enabled = bool(policy.compensation.enabled)
        discount = policy.discount
        self.discount: tuple[Decimal, int] | None = (
            (discount.percent, discount.within_days) if discount and discount.percent > 0 else None
        )
        self.recurring = policy.recurring_fee
        # step notices grouped by (customer, currency, ladder, position)
        self.groups: dict[tuple[str, str, str, int], list[Due]] = {}
        self.thanks: dict[tuple[str, str], list[Invoice]] = {}
        self._summaries: dict[str, InvoiceHistory] = {}

    def notice_kind(self, channel: str) -> ActionKind:
        return self.kind_of.get(channel, ActionKind.REMINDER)

    def ladder(self, name: str) -> CompiledLadder:
        compiled = self._ladders.get(name)
        if compiled is None:
            compiled = CompiledLadder.from_config(name, self.policy.ladder_named(name), self._adjust)
            self._ladders[name] = compiled
        return compiled

    def context(self, customer_id: str) -> CustomerContext:
        context = self.contexts.get(customer_id)
        if context is not None:
            return context
        customer = self.customers.get(customer_id)
        if customer is None:
            self.out.warn(f"customer {customer_id} is not in the ledger data: default settings used")
            customer = Customer(id=customer_id, name=customer_id)
        settings = self.settings_for(customer)
        context = CustomerContext(
            customer,
            settings,
            self.ladder(settings.ladder_name),
            self._blocked(customer, settings),
            settings.kind is CustomerKind.B2C,
        )
        self.contexts[customer_id] = context
        return context

    def _blocked(self, customer: Customer, settings: CustomerSettings) -> str | None:
        if settings.excluded:
            excluded_tags = sorted(set(self.policy.exclusions.tags).intersection(customer.tags))
            if excluded_tags:
                return f"customer {customer.name} is excluded by tag {', '.join(excluded_tags)}"
            return f"customer {customer.name} is excluded by the policy"
        pauses = [until for until in (settings.paused_until, self.pauses.get(customer.id)) if until]
        until = max(pauses) if pauses else None
        if until is not None and self.today <= until:
            return f"customer {customer.name} is paused until {until.isoformat()}"
        return None

    def settings_for(self, customer: Customer) -> CustomerSettings:
        """policy.settings_for, shared between customers that only tags, country, language and kind
        tell apart (the only customer facts groups look at, besides ids): one resolution per profile
        instead of one per customer."""
        if self._special_ids is None or customer.id in self._special_ids:
            return self.policy.settings_for(customer)
        profile = (customer.tags, (customer.country or "").upper(), customer.language, customer.kind)
        settings = self._by_profile.get(profile)
        if settings is None:
            settings = self.policy.settings_for(customer)
            self._by_profile[profile] = settings
        return settings

    def summary(self, invoice_id: str) -> InvoiceHistory:
        cached = self._summaries.get(invoice_id)
        if cached is None:
            done = self.history.get(invoice_id)
            cached = InvoiceHistory(done) if done else NO_HISTORY
            self._summaries[invoice_id] = cached
        return cached

    def skip(self, invoice: Invoice, reason: str) -> None:
        self.out.skipped.append(SkipReason(invoice.id, f"invoice {invoice.number}: {reason}"))

    def disputed(self, invoice: Invoice) -> bool:
        """True (and the skip recorded) while a dispute on the invoice runs."""
        if invoice.id not in self.disputes:
            return False
        until = self.disputes[invoice.id]
        if until is not None and self.today > until:
            return False
        self.skip(invoice, "disputed" + (f" until {until.isoformat()}" if until else " (open-ended)"))
        return True
