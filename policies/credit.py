"""Credit limits: exposure per customer, breaches, and limit suggestions from payment history.

Exposure = open receivable (+ drafts when the policy says `include_drafts`), counted in the company
currency only for invoices in that currency. Invoices in other currencies are reported separately
(`Exposure.other_currencies`) and never converted: relance has no FX source, and a limit compared
against a guessed rate would be a false alarm or a missed one.

The ledger cannot block a sale, so a breach is recorded and reported: `alert` and `hold` yield a
CREDIT_ALERT action, `call_task` a TASK for someone to call the customer. Their key is per customer
per breach episode (limit + ISO week), so an ongoing breach is raised once a week, not every run.

Suggestions (seed 000: "limits can be raised later if the customer builds a history of prompt
payments"): over `lookback_days`, if any invoice was paid (or is still open) `late_days` or more
after its due date, lower the limit by `lower_percent`; else if at least `MIN_DECIDED` invoices were
settled and the share paid on or before the due date is at least `on_time_ratio`, raise it by
`raise_percent`; otherwise keep it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from policies.config.charges import LimitSuggestion as LimitSuggestionRule
from policies.config.customers import CustomerSettings
from policies.model.ledger import Customer, Invoice, InvoiceStatus, Settlement
from policies.model.money import Money, round_half_up

HUNDRED = Decimal(100)
MIN_DECIDED = 3  # fewer settled invoices than this is not a history


@dataclass(frozen=True, slots=True)
class Exposure:
    customer_id: str
    currency: str  # the company currency
    open: Decimal  # open receivable in the company currency
    drafts: Decimal  # draft invoices in the company currency (counted only if include_drafts)
    invoice_ids: tuple[str, ...]  # the invoices counted
    other_currencies: dict[str, Decimal] = field(default_factory=dict)  # reported, never converted

    @property
    def total(self) -> Money:
        return Money(self.open + self.drafts, self.currency)


@dataclass(frozen=True, slots=True)
class CreditBreach:
    customer_id: str
    limit: Money
    exposure: Money
    action: str  # alert | call_task | hold
    reason: str
    invoice_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LimitSuggestion:
    customer_id: str
    current: Money
    suggested: Money
    reasons: tuple[str, ...]

    @property
    def changes(self) -> bool:
        return self.suggested.amount != self.current.amount


class ExposureBuilder:
    """Accumulates exposure invoice by invoice (the planner feeds it during its single pass)."""

    __slots__ = ("_drafts", "_ids", "_open", "_other", "currency", "include_drafts")

    def __init__(self, currency: str, include_drafts: bool) -> None:
        self.currency = currency
        self.include_drafts = include_drafts
        self._open: dict[str, Decimal] = {}
        self._drafts: dict[str, Decimal] = {}
        self._ids: dict[str, list[str]] = {}
        self._other: dict[str, dict[str, Decimal]] = {}

    def add(self, invoice: Invoice) -> None:
        status = invoice.status
        if status is InvoiceStatus.OPEN:
            target = self._open
        elif status is InvoiceStatus.DRAFT and self.include_drafts:
            target = self._drafts
        else:
            return
        if invoice.lines and invoice.is_relance_fee_invoice:
            return  # credit limits measure trade credit, not the fees relance charged
        principal = invoice.principal.amount  # fee lines on the invoice do not count either
        amount = min(invoice.balance.amount, principal) if status is InvoiceStatus.OPEN else principal
        if amount <= 0:
            return
        customer_id = invoice.customer_id
        if invoice.currency != self.currency:
            other = self._other.setdefault(customer_id, {})
            other[invoice.currency] = other.get(invoice.currency, Decimal(0)) + amount
            return
        target[customer_id] = target.get(customer_id, Decimal(0)) + amount
        self._ids.setdefault(customer_id, []).append(invoice.id)

    def totals(self) -> dict[str, Decimal]:
        """Customer id -> exposure in the company currency (cheap: no Exposure objects)."""
        totals = dict(self._open)
        for customer_id, amount in self._drafts.items():
            totals[customer_id] = totals.get(customer_id, Decimal(0)) + amount
        return totals

    def exposure(self, customer_id: str) -> Exposure:
        zero = Decimal(0)
        return Exposure(
            customer_id,
            self.currency,
            self._open.get(customer_id, zero),
            self._drafts.get(customer_id, zero),
            tuple(sorted(self._ids.get(customer_id, ()))),
            dict(self._other.get(customer_id, {})),
        )

    def result(self) -> dict[str, Exposure]:
        customers = set(self._open) | set(self._drafts) | set(self._other)
        return {customer_id: self.exposure(customer_id) for customer_id in customers}


def exposure_by_customer(
    invoices: Iterable[Invoice], company_currency: str, *, include_drafts: bool = False
) -> dict[str, Exposure]:
    builder = ExposureBuilder(company_currency, include_drafts)
    for invoice in invoices:
        builder.add(invoice)
    return builder.result()


def as_limit(value: object, currency: str) -> Money | None:
    """A limit from the config (Money, Decimal, str or None) as Money in the company currency."""
    if value is None:
        return None
    if isinstance(value, Money):
        return value
    return Money.of(value, currency)


def check_limit(exposure: Exposure, limit: Money | None, on_breach: str) -> CreditBreach | None:
    """A breach when exposure > limit (equal is within the limit). No limit, no breach."""
    if limit is None:
        return None
    total = exposure.total
    if total.amount <= limit.amount:
        return None
    over = total - limit
    drafts = f" incl. drafts {Money(exposure.drafts, exposure.currency)}" if exposure.drafts else ""
    others = "".join(
        f"; also {Money(amount, currency)} not counted (no FX)"
        for currency, amount in sorted(exposure.other_currencies.items())
    )
    reason = (
        f"credit limit {limit} exceeded by {over}: exposure {total}{drafts} over "
        f"{len(exposure.invoice_ids)} invoice(s){others}; on breach: {on_breach}"
    )
    return CreditBreach(exposure.customer_id, limit, total, on_breach, reason, exposure.invoice_ids)


class SuggestionTracker:
    """Payment-history counters per customer, fed invoice by invoice (the planner's single pass).

    Counts, per customer, invoices in the company currency issued within the lookback window:
    `decided` (paid, or open `late_days` or more after their due date), `on_time` (paid on or before
    the due date) and the worst lateness."""

    def __init__(self, currency: str, today: date, rule: LimitSuggestionRule | None = None) -> None:
        rule = rule or LimitSuggestionRule()
        self.currency = currency
        self.today = today
        self.lookback = rule.lookback_days
        self.raise_percent = rule.raise_percent
        self.lower_percent = rule.lower_percent
        self.on_time_ratio = rule.on_time_ratio
        self.late_days = rule.late_days
        self.since_ordinal = (today - timedelta(days=self.lookback)).toordinal()
        self.today_ordinal = today.toordinal()
        # customer id -> [decided, on_time, worst days late, worst invoice number]
        self.stats: dict[str, list[Any]] = {}

    def _record(self, invoice: Invoice, late: int, on_time: bool) -> None:
        stats = self.stats.get(invoice.customer_id)
        if stats is None:
            stats = self.stats[invoice.customer_id] = [0, 0, -1, ""]
        stats[0] += 1
        if on_time:
            stats[1] += 1
        if late >= self.late_days and late > stats[2]:
            stats[2], stats[3] = late, invoice.number

    def paid(self, invoice: Invoice, settlements: Sequence[Settlement] | None) -> None:
        """A fully settled invoice; `settlements` tell when (unknown: not counted)."""
        if (
            not settlements
            or invoice.currency != self.currency
            or invoice.issue_date.toordinal() < self.since_ordinal
        ):
            return
        paid_on = settlements[0].date if len(settlements) == 1 else max(item.date for item in settlements)
        late = paid_on.toordinal() - invoice.due_date.toordinal()
        stats = self.stats.get(invoice.customer_id)
        if stats is None or late > 0:
            self._record(invoice, late, late <= 0)
        else:  # the common case, inlined: an on-time payment of a known customer
            stats[0] += 1
            stats[1] += 1

    def open(self, invoice: Invoice) -> None:
        """An open invoice: counts only once it is `late_days` late."""
        late = self.today_ordinal - invoice.due_date.toordinal()
        if (
            late < self.late_days
            or invoice.currency != self.currency
            or invoice.issue_date.toordinal() < self.since_ordinal
        ):
            return
        self._record(invoice, late, False)

    def add(self, invoice: Invoice, settlements: Mapping[str, Sequence[Settlement]]) -> None:
        status = invoice.status
        if status is InvoiceStatus.PAID or (status is InvoiceStatus.OPEN and invoice.balance.amount <= 0):
            self.paid(invoice, settlements.get(invoice.id))
        elif status is InvoiceStatus.OPEN:
            self.open(invoice)

    def would_change(self, customer_id: str) -> bool:
        """Cheap test before building a suggestion: will it raise or lower the limit?"""
        stats = self.stats.get(customer_id)
        if stats is None:
            return False
        decided, on_time, worst_late, _ = stats
        if worst_late >= 0:
            return self.lower_percent != 0
        return (
            decided >= MIN_DECIDED
            and Decimal(on_time) / decided >= self.on_time_ratio
            and self.raise_percent != 0
        )

    def suggestion(self, customer_id: str, current: Money) -> LimitSuggestion:
        decided, on_time, worst_late, worst_number = self.stats.get(customer_id) or (0, 0, -1, "")
        window = f"over the last {self.lookback} days"
        if worst_late >= 0:
            suggested = current.amount * (HUNDRED - self.lower_percent) / HUNDRED
            reasons: tuple[str, ...] = (
                f"invoice {worst_number} paid or still open {worst_late} days after its due date "
                f"(threshold {self.late_days}) {window}",
                f"lower by {self.lower_percent}%",
            )
        elif decided >= MIN_DECIDED and Decimal(on_time) / decided >= self.on_time_ratio:
            suggested = current.amount * (HUNDRED + self.raise_percent) / HUNDRED
            reasons = (
                f"{on_time} of {decided} invoices paid on or before their due date {window} "
                f"(ratio {Decimal(on_time) / decided:.2f} >= {self.on_time_ratio})",
                f"raise by {self.raise_percent}%",
            )
        else:
            suggested = current.amount
            reasons = (
                f"{on_time} of {decided} settled invoices on time {window}: keep the limit"
                if decided >= MIN_DECIDED
                else f"only {decided} settled invoice(s) {window} (need {MIN_DECIDED}): keep the limit",
            )
        return LimitSuggestion(
            customer_id, current, Money(round_half_up(suggested, current.currency), current.currency), reasons
        )


def suggest_limit(
    customer: Customer,
    invoices: Iterable[Invoice],
    settlements: Mapping[str, Sequence[Settlement]],
    settings: CustomerSettings,
    today: date,
    *,
    rule: LimitSuggestionRule | None = None,
    currency: str | None = None,
) -> LimitSuggestion | None:
    """Suggest a limit for one customer from its payment history (None: the customer has no limit).

    `settings` is the customer's CustomerSettings (its `credit_limit`); `rule` the policy's
    `credit.suggestion` (lookback_days, raise_percent, lower_percent, on_time_ratio, late_days);
    `currency` the company currency (default: the limit's). Only invoices of this customer in the
    company currency issued within the lookback window count."""
    limit_value = settings.credit_limit
    if limit_value is None:
        return None
    company_currency = currency or customer.currency or "EUR"
    current = as_limit(limit_value, company_currency)
    assert current is not None
    tracker = SuggestionTracker(current.currency, today, rule)
    for invoice in invoices:
        if invoice.customer_id == customer.id:
            tracker.add(invoice, settlements)
    return tracker.suggestion(customer.id, current)
