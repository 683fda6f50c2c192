"""The planning engine: for every invoice on one day, what must happen and why. Pure: no I/O, no clock.

`plan_day` turns the ledger state, the policy and the history of what was already done into a `Plan`
of actions, each with a deterministic key (`policies.model.actions.action_key`) and a human reason.

Rules (issue #2, section 4), and the choices made where the issue leaves room:

* Nothing for draft, void or paid invoices, disputed invoices (until the dispute's end date,
  inclusive; None = open-ended), paused customers (store pause or policy `paused_until`, inclusive),
  excluded customers (policy `exclude` or an exclusion tag) or balances below `exclusions.min_balance`.
  A step with `min_amount` is not applicable to smaller balances (neither sent nor superseded).
* Each step at most once per invoice: a step counts as done when the history holds a REMINDER, TASK,
  AGENCY or SUPERSEDED action for it. Steps sharing an offset form a tier and go out together (D+15
  late letter + e-mail). After a gap only the most advanced due tier is proposed; the due steps it
  skips are returned in `Plan.superseded` (recorded, never sent). Never back down the ladder.
* Notices: invoices of one customer and currency due for the same step today form ONE notice
  (REMINDER for ledger_email/email/letter, TASK for call_task, AGENCY for agency) listing all their
  invoice ids, plus a NOTE per invoice (key = action_key(notice key, "note", invoice id)).
* Charges are per invoice (FEE actions; ledger writes are per invoice) and cumulative: interest to
  post = accrued to date (policies.interest) minus what the history already charged; compensation
  once per invoice (B2B only, when late); `fee:<name>` once per invoice per step (matched on
  Charge(component="fee", description=<name>) with that step). An increment below `interest.minimum`
  waits for a later step. When a gap supersedes steps that charged interest or compensation, those
  charges roll into the first step proposed (what is owed stays owed; fees for letters never sent do
  not). Recurring fee: every `every_days` after the first FEE in the history, one charge per period
  (step "recurring:<fee>", period index in the key); a missed period is not caught up.
* Early-payment discount: pre-due notices carry the offer in details["invoices"][i]["discount"]
  while its window is open; an invoice settled inside the window for total minus discount, whose
  ledger balance is the discount, gets a CREDIT_NOTE (once) instead of reminders.
* Payment plans (policies.payment_plans): covered invoices are not dunned while the plan is active;
  each missed instalment is dunned on its own with the ladder's steps of offset >= 0 relative to the
  instalment due date (instalment index and plan id in the key, no charges: the plan is the agreed
  settlement). Acceleration: when an instalment is N days late the plan ends and the ladder resumes
  on its open invoices with the acceleration date as their effective due date (interest included).
* THANKS: once per invoice, when an invoice that received a notice (REMINDER, TASK or AGENCY) is fully
  paid; invoices of one customer and currency thanked the same day form one action.
* Credit: see policies.credit (exposure, breaches -> CREDIT_ALERT / TASK actions, suggestions).

Speed: ladders are compiled once per run with adjusted step dates cached per due date, customer
settings are cached per customer, interest is computed only when a charging step is proposed, and
reasons are built only for invoices that yield an action.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from policies.credit import (
    CreditBreach,
    ExposureBuilder,
    LimitSuggestion,
    SuggestionTracker,
    as_limit,
    breach_action,
    check_limit,
)
from policies.discount import discount_offer, discount_taken
from policies.ladder import CompiledLadder, StepSpec, choose, positions_done
from policies.model.actions import ActionKind, Charge, DoneAction, PlannedAction, action_key
from policies.model.ledger import Customer, CustomerKind, Invoice, InvoiceStatus, Settlement
from policies.model.money import Money, round_half_up
from policies.payment_plans import PaymentPlan, PlanState, evaluate_plan, plans_by_invoice

if TYPE_CHECKING:
    from policies.config import CustomerSettings, Policy

HUNDRED = Decimal(100)
ZERO = Decimal(0)
ONE_CENT_OR_UNIT = Decimal(1)  # generous pre-filter bound (any minor unit); discount_taken decides

NOTICE_KINDS = frozenset({ActionKind.REMINDER, ActionKind.TASK, ActionKind.AGENCY})
_STEP_KINDS = NOTICE_KINDS | {ActionKind.SUPERSEDED}
_KIND_BY_CHANNEL = {
    "ledger_email": ActionKind.REMINDER,
    "email": ActionKind.REMINDER,
    "letter": ActionKind.REMINDER,
    "call_task": ActionKind.TASK,
    "agency": ActionKind.AGENCY,
}
_KIND_ORDER = {kind: index for index, kind in enumerate(ActionKind)}
# Statutory compensation when the interest terms name no law (e.g. a contractual rate in France).
_LAW_BY_COUNTRY = {"FR": "fr", "DE": "de", "GB": "uk", "UK": "uk"}
_EU = frozenset(
    "AT BE BG HR CY CZ DK EE FI GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split()  # noqa: SIM905
)
RECURRING_PREFIX = "recurring:"
CREDIT_STEP = "credit-limit"  # the step name of credit-limit TASK / CREDIT_ALERT actions


@dataclass(frozen=True, slots=True)
class SkipReason:
    invoice_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[PlannedAction, ...] = ()
    superseded: tuple[PlannedAction, ...] = ()  # kind SUPERSEDED: record, never send
    skipped: tuple[SkipReason, ...] = ()  # open invoices deliberately not chased, and why
    credit: tuple[CreditBreach, ...] = ()
    suggestions: tuple[LimitSuggestion, ...] = ()  # only those that change the limit
    warnings: tuple[str, ...] = ()


# ------------------------------------------------------------------------------------------------
# history


class _History:
    """What the history says about one invoice (built only when needed)."""

    __slots__ = (
        "compensation_charged",
        "credit_noted",
        "fees",
        "first_charge",
        "instalment_steps",
        "interest_charged",
        "keys",
        "reminded",
        "step_names",
        "thanked",
    )

    def __init__(self, done: Sequence[DoneAction] = ()) -> None:
        self.step_names: set[str] = set()
        self.instalment_steps: dict[int, set[str]] = {}
        self.keys: set[str] = set()
        self.interest_charged = ZERO
        self.compensation_charged = False
        self.fees: set[tuple[str | None, str]] = set()
        self.first_charge: date | None = None
        self.reminded = self.thanked = self.credit_noted = False
        for item in done:
            self.keys.add(item.key)
            kind = item.kind
            if kind in _STEP_KINDS and item.step is not None:
                if item.instalment is None:
                    self.step_names.add(item.step)
                else:
                    self.instalment_steps.setdefault(item.instalment, set()).add(item.step)
                if kind is not ActionKind.SUPERSEDED and item.step != CREDIT_STEP:
                    self.reminded = True
            elif kind is ActionKind.FEE:
                for charge in item.charges:
                    if charge.component == "interest":
                        self.interest_charged += charge.amount.amount
                    elif charge.component == "compensation":
                        self.compensation_charged = True
                    elif charge.component == "fee":
                        self.fees.add((item.step, charge.description))
                step = item.step or ""
                if (
                    item.on is not None
                    and not step.startswith(RECURRING_PREFIX)
                    and (self.first_charge is None or item.on < self.first_charge)
                ):
                    self.first_charge = item.on
            elif kind is ActionKind.THANKS:
                self.thanked = True
            elif kind is ActionKind.CREDIT_NOTE:
                self.credit_noted = True


_NO_HISTORY = _History()


# ------------------------------------------------------------------------------------------------
# per-customer context


@dataclass(slots=True)
class _CustomerContext:
    customer: Customer
    settings: CustomerSettings
    ladder: CompiledLadder
    blocked: str | None  # why the customer is not chased today, or None
    b2c: bool


@dataclass(slots=True)
class _Due:
    """One invoice due for one step today (before grouping into a notice)."""

    invoice: Invoice
    step: StepSpec
    step_day: int
    effective_due: date
    superseded: tuple[str, ...]
    accelerated_plan: str | None = None


@dataclass(slots=True)
class _Output:
    actions: list[PlannedAction] = field(default_factory=list)
    superseded: list[PlannedAction] = field(default_factory=list)
    skipped: list[SkipReason] = field(default_factory=list)
    warnings: dict[str, None] = field(default_factory=dict)  # ordered set

    def warn(self, message: str) -> None:
        self.warnings[message] = None


def _lateness(days_late: int) -> str:
    if days_late > 0:
        return f"is {days_late} day{'s' if days_late != 1 else ''} late"
    if days_late == 0:
        return "is due today"
    return f"is due in {-days_late} day{'s' if days_late != -1 else ''}"


def _step_title(step: StepSpec) -> str:
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


class _Planner:
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
        self.out = _Output()
        self.company_currency = policy.company.currency
        self.min_balance = policy.exclusions.min_balance
        calendar = policy.business_calendar()
        self._adjust = calendar.adjust
        self._ladders: dict[str, CompiledLadder] = {}
        self._contexts: dict[str, _CustomerContext] = {}
        self._by_profile: dict[tuple[Any, ...], CustomerSettings] = {}
        self._special_ids = _profile_safe_ids(policy)
        self.terms = policy.interest_terms()
        law = self.terms.law if self.terms is not None else None
        country = policy.company.country.upper()
        self.law: str | None = law or _LAW_BY_COUNTRY.get(country) or ("eu" if country in _EU else None)
        self.compensation_enabled = bool(policy.compensation.enabled)
        discount = policy.discount
        self.discount = (
            (discount.percent, discount.within_days) if discount and discount.percent > 0 else None
        )
        self.recurring = policy.recurring_fee
        # step notices grouped by (customer, currency, ladder, position)
        self.groups: dict[tuple[str, str, str, int], list[_Due]] = {}
        self.thanks: dict[tuple[str, str], list[Invoice]] = {}
        self.summaries: dict[str, _History] = {}

    # -- context -------------------------------------------------------------------------------
    def ladder(self, name: str) -> CompiledLadder:
        compiled = self._ladders.get(name)
        if compiled is None:
            compiled = CompiledLadder.from_config(name, self.policy.ladder_named(name), self._adjust)
            self._ladders[name] = compiled
        return compiled

    def context(self, customer_id: str) -> _CustomerContext:
        context = self._contexts.get(customer_id)
        if context is not None:
            return context
        customer = self.customers.get(customer_id)
        if customer is None:
            self.out.warn(f"customer {customer_id} is not in the ledger data: default settings used")
            customer = Customer(id=customer_id, name=customer_id)
        settings = self.settings_for(customer)
        blocked = None
        if settings.excluded:
            excluded_tags = sorted(set(self.policy.exclusions.tags).intersection(customer.tags))
            blocked = (
                f"customer {customer.name} is excluded by tag {', '.join(excluded_tags)}"
                if excluded_tags
                else f"customer {customer.name} is excluded by the policy"
            )
        else:
            pauses = [until for until in (settings.paused_until, self.pauses.get(customer_id)) if until]
            until = max(pauses) if pauses else None
            if until is not None and self.today <= until:
                blocked = f"customer {customer.name} is paused until {until.isoformat()}"
        context = _CustomerContext(
            customer, settings, self.ladder(settings.ladder_name), blocked, settings.kind is CustomerKind.B2C
        )
        self._contexts[customer_id] = context
        return context

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

    def summary(self, invoice_id: str) -> _History:
        cached = self.summaries.get(invoice_id)
        if cached is None:
            done = self.history.get(invoice_id)
            cached = _History(done) if done else _NO_HISTORY
            self.summaries[invoice_id] = cached
        return cached

    def skip(self, invoice: Invoice, reason: str) -> None:
        self.out.skipped.append(SkipReason(invoice.id, f"invoice {invoice.number}: {reason}"))

    # -- the ladder on one invoice ---------------------------------------------------------------
    def evaluate(
        self, invoice: Invoice, context: _CustomerContext, effective_due: date, plan_id: str | None = None
    ) -> None:
        ladder = context.ladder
        due_ordinal = effective_due.toordinal()
        positions = ladder.due_positions(due_ordinal, self.t)
        if not positions:
            return
        balance = invoice.balance.amount
        if balance < ladder.max_min_amount:
            positions = [p for p in positions if ladder.step(p).min_amount <= balance]
        done_list = self.history.get(invoice.id)
        if done_list:
            position_get = ladder.position_get
            done = {position_get(d.step) for d in done_list if d.instalment is None and d.kind in _STEP_KINDS}
            done.discard(None)  # type: ignore[arg-type]  # steps the current ladder does not have
        else:
            done = set()
        choice = choose(positions, done, ladder.tier, base_count=len(ladder.steps))
        if self.recurring is not None and done_list:
            history = self.summary(invoice.id)
            if history.first_charge is not None:
                self.recurring_fee(invoice, context, history, effective_due)
        if not choice.chosen and not choice.superseded:
            return
        history = self.summary(invoice.id) if done_list else _NO_HISTORY
        chosen_steps = [ladder.step(p) for p in choice.chosen]
        superseded_steps = [ladder.step(p) for p in choice.superseded]
        superseded_names = tuple(step.name for step in superseded_steps)
        for step in superseded_steps:
            self.supersede(invoice, context, step, ladder.step_day(due_ordinal, step.position), chosen_steps)
        if not chosen_steps:
            return
        for step in chosen_steps:
            self.groups.setdefault(
                (invoice.customer_id, invoice.currency, ladder.name, step.position), []
            ).append(
                _Due(
                    invoice,
                    step,
                    ladder.step_day(due_ordinal, step.position),
                    effective_due,
                    superseded_names,
                    plan_id,
                )
            )
        # Interest and compensation of steps never sent (superseded now, or in an earlier plan) roll
        # onto the step sent now; charging is cumulative, so nothing already posted is posted twice.
        skipped = list(superseded_steps)
        if done_list:
            first = min(choice.chosen)
            for done_action in done_list:
                if done_action.kind is ActionKind.SUPERSEDED and done_action.instalment is None:
                    position = ladder.position_get(done_action.step)
                    if position is not None and position < first:
                        skipped.append(ladder.step(position))
        rolled = {c for step in skipped for c in step.charges if c in ("interest", "compensation")}
        if rolled or any(step.charges for step in chosen_steps):
            self.charges(invoice, context, chosen_steps, rolled, history, effective_due)

    def supersede(
        self,
        invoice: Invoice,
        context: _CustomerContext,
        step: StepSpec,
        day: int,
        chosen: Sequence[StepSpec],
        instalment: int | None = None,
        instalment_key: str = "",
        invoice_ids: tuple[str, ...] | None = None,
    ) -> None:
        ids = invoice_ids or (invoice.id,)
        key = action_key(
            self.connection,
            ActionKind.SUPERSEDED.value,
            step.name,
            invoice.customer_id,
            invoice.currency,
            ",".join(ids),
            instalment_key,
            "",
        )
        by = (
            f"superseded by {', '.join(repr(s.name) for s in chosen)} (one notice after a gap, never a burst)"
            if chosen
            else "superseded: a more advanced step was already done"
        )
        subject = f"instalment {instalment}" if instalment is not None else f"invoice {invoice.number}"
        self.out.superseded.append(
            PlannedAction(
                key=key,
                kind=ActionKind.SUPERSEDED,
                customer_id=invoice.customer_id,
                currency=invoice.currency,
                invoice_ids=ids,
                reason=f"{_step_title(step)} for {subject} fell due on {date.fromordinal(day).isoformat()} "
                f"but was never sent; {by}",
                step=step.name,
                channel=step.channel,
                template=step.template,
                instalment=instalment,
                due_on=date.fromordinal(day),
                details={"ladder": context.ladder.name, "offset_days": step.offset_days},
            )
        )

    # -- charges ---------------------------------------------------------------------------------
    def charges(
        self,
        invoice: Invoice,
        context: _CustomerContext,
        steps: Sequence[StepSpec],
        rolled: set[str],
        history: _History,
        effective_due: date,
    ) -> None:
        currency = invoice.currency
        late = self.today > effective_due
        interest_charged = history.interest_charged
        compensation_done = history.compensation_charged
        result = None
        for index, step in enumerate(steps):
            wanted = set(step.charges) | (rolled if index == 0 else set())
            items: list[Charge] = []
            explain: list[str] = []
            if "interest" in wanted and late and self.terms is not None:
                if result is None:
                    from policies.interest import compute_interest

                    result = compute_interest(
                        self.terms,
                        total=invoice.principal,
                        due=effective_due,
                        until=self.today,
                        settlements=self.settlements.get(invoice.id, ()),
                        b2c=context.b2c,
                        compensation_enabled=self.compensation_enabled,
                    )
                    for warning in result.warnings:
                        self.out.warn(f"invoice {invoice.number}: {warning}")
                accrued = result.interest.amount
                increment = accrued - interest_charged
                if increment > 0 and increment >= self.terms.minimum:
                    items.append(Charge("interest", Money(increment, currency), f"interest to {self.today}"))
                    explain.append(
                        f"interest {Money(increment, currency)} (accrued {result.interest} to date, "
                        f"{Money(interest_charged, currency)} already charged)"
                    )
                    interest_charged = accrued
            if "compensation" in wanted and late and self.compensation_enabled and not compensation_done:
                from policies.interest import compensation

                principal = invoice.principal.amount - sum(
                    (s.amount for s in self.settlements.get(invoice.id, ()) if s.date <= effective_due), ZERO
                )
                fixed = compensation(self.law, Money(principal, currency), context.b2c)
                if fixed.amount > 0:
                    items.append(Charge("compensation", fixed, "fixed recovery compensation"))
                    explain.append(f"fixed compensation {fixed} (once per invoice)")
                    compensation_done = True
            for name in step.charges:
                if not name.startswith("fee:"):
                    continue
                fee_name = name[4:]
                if (step.name, fee_name) in history.fees:
                    continue
                amount = self.fee_amount(fee_name, invoice)
                if amount is not None:
                    items.append(Charge("fee", amount, fee_name))
                    explain.append(f"fee {fee_name} {amount}")
            if not items:
                continue
            key = action_key(
                self.connection,
                ActionKind.FEE.value,
                step.name,
                invoice.customer_id,
                currency,
                invoice.id,
                "",
                "",
            )
            if key in history.keys:  # this step's charge was posted though its notice was not
                continue
            days_late = self.t - effective_due.toordinal()
            self.out.actions.append(
                PlannedAction(
                    key=key,
                    kind=ActionKind.FEE,
                    customer_id=invoice.customer_id,
                    currency=currency,
                    invoice_ids=(invoice.id,),
                    reason=f"{_step_title(step)}: invoice {invoice.number} {_lateness(days_late)}, "
                    f"balance {invoice.balance}; charges: {'; '.join(explain)}",
                    step=step.name,
                    channel=step.channel,
                    charges=tuple(items),
                    due_on=self.today,
                    details={"invoice_number": invoice.number, "fees": self.fee_descriptions(items)},
                )
            )

    def fee_amount(self, fee_name: str, invoice: Invoice) -> Money | None:
        definition = self.policy.fees.get(fee_name)
        if definition is None:
            self.out.warn(f"fee {fee_name!r} is not defined in the policy")
            return None
        amount = definition.fixed + invoice.balance.amount * definition.percent / HUNDRED
        rounded = round_half_up(amount, invoice.currency)
        return Money(rounded, invoice.currency) if rounded > 0 else None

    def fee_descriptions(self, items: Sequence[Charge]) -> dict[str, str]:
        result = {}
        for item in items:
            if item.component == "fee":
                definition = self.policy.fees.get(item.description)
                result[item.description] = (
                    definition.description if definition else None
                ) or item.description
        return result

    def recurring_fee(
        self, invoice: Invoice, context: _CustomerContext, history: _History, effective_due: date
    ) -> None:
        recurring = self.recurring
        assert recurring is not None and history.first_charge is not None
        period = (self.today - history.first_charge).days // recurring.every_days
        if period < 1 or self.today <= effective_due:
            return
        step = f"{RECURRING_PREFIX}{recurring.fee}"
        key = action_key(
            self.connection,
            ActionKind.FEE.value,
            step,
            invoice.customer_id,
            invoice.currency,
            invoice.id,
            "",
            period,
        )
        if key in history.keys:
            return
        amount = self.fee_amount(recurring.fee, invoice)
        if amount is None:
            return
        charge = Charge("fee", amount, recurring.fee)
        self.out.actions.append(
            PlannedAction(
                key=key,
                kind=ActionKind.FEE,
                customer_id=invoice.customer_id,
                currency=invoice.currency,
                invoice_ids=(invoice.id,),
                reason=f"recurring fee {recurring.fee} {amount}: invoice {invoice.number} "
                f"{_lateness(self.t - effective_due.toordinal())}, balance {invoice.balance}; "
                f"period {period} "
                f"(every {recurring.every_days} days since the first charge on {history.first_charge})",
                step=step,
                charges=(charge,),
                due_on=self.today,
                details={
                    "invoice_number": invoice.number,
                    "period": period,
                    "fees": self.fee_descriptions((charge,)),
                },
            )
        )

    # -- one invoice -----------------------------------------------------------------------------
    def disputed(self, invoice: Invoice) -> bool:
        """True (and the skip recorded) while a dispute on the invoice runs."""
        if invoice.id not in self.disputes:
            return False
        until = self.disputes[invoice.id]
        if until is not None and self.today > until:
            return False
        self.skip(invoice, "disputed" + (f" until {until.isoformat()}" if until else " (open-ended)"))
        return True

    def paid(self, invoice: Invoice) -> None:
        done = self.history.get(invoice.id)
        if not done:
            return
        reminded = False
        for item in done:
            if item.kind is ActionKind.THANKS:
                return
            if item.kind in NOTICE_KINDS and item.step != CREDIT_STEP:
                reminded = True
        if reminded:
            self.thanks.setdefault((invoice.customer_id, invoice.currency), []).append(invoice)

    def credit_note(self, invoice: Invoice, amount: Money, percent: Decimal, within_days: int) -> None:
        paid = sum((s.amount for s in self.settlements.get(invoice.id, ())), ZERO)
        self.out.actions.append(
            PlannedAction(
                key=action_key(
                    self.connection,
                    ActionKind.CREDIT_NOTE.value,
                    "discount",
                    invoice.customer_id,
                    invoice.currency,
                    invoice.id,
                    "",
                    "",
                ),
                kind=ActionKind.CREDIT_NOTE,
                customer_id=invoice.customer_id,
                currency=invoice.currency,
                invoice_ids=(invoice.id,),
                reason=f"invoice {invoice.number} was paid {Money(paid, invoice.currency)} within the "
                f"{within_days}-day early-payment discount window ({percent}% of {invoice.total}); "
                f"balance {amount} left: credit note for the discount",
                step="discount",
                charges=(Charge("discount", amount, f"early-payment discount {percent}%"),),
                due_on=self.today,
                details={"invoice_number": invoice.number, "percent": str(percent), "amount": amount.fixed()},
            )
        )

    # -- notices ---------------------------------------------------------------------------------
    def notices(self) -> None:
        for (customer_id, currency, ladder_name, _position), dues in self.groups.items():
            dues.sort(key=lambda due: (due.invoice.due_date, due.invoice.number, due.invoice.id))
            step = dues[0].step
            context = self._contexts[customer_id]
            ids = tuple(sorted(due.invoice.id for due in dues))
            kind = _KIND_BY_CHANNEL.get(step.channel, ActionKind.REMINDER)
            key = action_key(
                self.connection, kind.value, step.name, customer_id, currency, ",".join(ids), "", ""
            )
            total = Money(sum((due.invoice.balance.amount for due in dues), ZERO), currency)
            parts = []
            lines = []
            for due in dues:
                invoice = due.invoice
                days_late = self.t - due.effective_due.toordinal()
                text = f"{invoice.number} {_lateness(days_late)}, balance {invoice.balance}"
                if due.accelerated_plan:
                    text += (
                        f" (due {due.effective_due} under the acceleration clause of plan "
                        f"{due.accelerated_plan})"
                    )
                parts.append(text)
                line: dict[str, object] = {
                    "id": invoice.id,
                    "number": invoice.number,
                    "issue_date": invoice.issue_date.isoformat(),
                    "due_date": due.effective_due.isoformat(),
                    "total": invoice.total.fixed(),
                    "balance": invoice.balance.fixed(),
                    "days_late": days_late,
                }
                if step.offset_days < 0 and self.discount is not None:
                    offer = discount_offer(invoice, self.discount[0], self.discount[1], self.today)
                    if offer is not None:
                        line["discount"] = offer.as_details()
                if invoice.pay_link:
                    line["pay_link"] = invoice.pay_link
                lines.append(line)
            if len(dues) == 1:
                what = f"invoice {parts[0]}"
            else:
                what = f"{len(dues)} invoices, {total} in all: " + "; ".join(parts)
            superseded = sorted({name for due in dues for name in due.superseded})
            reason = f"{_step_title(step)}: {what}; no dispute; step never sent"
            if superseded:
                reason += f"; supersedes {', '.join(repr(name) for name in superseded)} (not sent in time)"
            details: dict[str, object] = {
                "ladder": ladder_name,
                "offset_days": step.offset_days,
                "customer_name": context.customer.name,
                "language": context.settings.language,
                "balance": total.fixed(),
                "invoices": lines,
            }
            if step.demand_days:
                details["demand_days"] = step.demand_days
            if step.repeat_index:
                details["repeat"] = step.repeat_index
            due_on = date.fromordinal(max(due.step_day for due in dues))
            self.emit_notice(kind, key, customer_id, currency, ids, reason, step, due_on, details)

    def emit_notice(
        self,
        kind: ActionKind,
        key: str,
        customer_id: str,
        currency: str,
        ids: tuple[str, ...],
        reason: str,
        step: StepSpec,
        due_on: date,
        details: dict[str, object],
        instalment: int | None = None,
    ) -> None:
        self.out.actions.append(
            PlannedAction(
                key=key,
                kind=kind,
                customer_id=customer_id,
                currency=currency,
                invoice_ids=ids,
                reason=reason,
                step=step.name,
                channel=step.channel,
                template=step.template,
                instalment=instalment,
                due_on=due_on,
                details=details,
            )
        )
        for invoice_id in ids:
            self.out.actions.append(
                PlannedAction(
                    key=action_key(key, ActionKind.NOTE.value, invoice_id),
                    kind=ActionKind.NOTE,
                    customer_id=customer_id,
                    currency=currency,
                    invoice_ids=(invoice_id,),
                    reason=f"note on the invoice: relance {step.channel} '{step.name}' ({step.label})"
                    + (f" for instalment {instalment}" if instalment is not None else ""),
                    step=step.name,
                    channel=step.channel,
                    instalment=instalment,
                    due_on=due_on,
                    details={"notice_key": key, "notice_kind": kind.value},
                )
            )

    def thank(self) -> None:
        for (customer_id, currency), invoices in self.thanks.items():
            invoices.sort(key=lambda invoice: (invoice.number, invoice.id))
            ids = tuple(sorted(invoice.id for invoice in invoices))
            numbers = ", ".join(invoice.number for invoice in invoices)
            context = self.context(customer_id)
            self.out.actions.append(
                PlannedAction(
                    key=action_key(
                        self.connection,
                        ActionKind.THANKS.value,
                        "",
                        customer_id,
                        currency,
                        ",".join(ids),
                        "",
                        "",
                    ),
                    kind=ActionKind.THANKS,
                    customer_id=customer_id,
                    currency=currency,
                    invoice_ids=ids,
                    reason=f"invoice{'s' if len(ids) > 1 else ''} {numbers} fully paid after reminders; "
                    "no thanks sent yet",
                    template="thanks",
                    channel="email",
                    due_on=self.today,
                    details={
                        "customer_name": context.customer.name,
                        "language": context.settings.language,
                        "invoices": [
                            {"id": i.id, "number": i.number, "total": i.total.fixed()} for i in invoices
                        ],
                    },
                )
            )

    # -- payment plans ---------------------------------------------------------------------------
    def payment_plan(self, plan: PaymentPlan, invoices: list[Invoice]) -> None:
        remaining = sum((invoice.balance.amount for invoice in invoices if invoice.is_open), ZERO)
        state = evaluate_plan(
            plan, remaining, self.today, acceleration_days=self.policy.payment_plans.acceleration_days
        )
        if state.completed:
            return
        context = self.context(plan.customer_id)
        if context.blocked is not None:
            for invoice in invoices:
                self.skip(invoice, context.blocked)
            return
        disputed = [invoice for invoice in invoices if self.disputed(invoice)]
        if state.accelerated_on is not None:
            for invoice in invoices:
                if not invoice.is_open or invoice in disputed:
                    continue
                if invoice.balance.amount < self.min_balance:
                    self.skip(invoice, f"balance {invoice.balance} is below the minimum {self.min_balance}")
                    continue
                effective_due = max(invoice.due_date, state.accelerated_on)
                self.evaluate(invoice, context, effective_due, plan.id)
            return
        if disputed:  # a dispute on any covered invoice pauses the plan's dunning
            return
        for invoice in invoices:
            if invoice.is_open:
                self.skip(
                    invoice,
                    f"under payment plan {plan.id} ({len(plan.instalments)} instalments, "
                    f"{Money(state.remaining, invoice.currency)} left)",
                )
        self.instalments(plan, state, [i for i in invoices if i.is_open] or invoices, context)

    def instalments(
        self, plan: PaymentPlan, state: PlanState, invoices: list[Invoice], context: _CustomerContext
    ) -> None:
        ladder = context.ladder
        currency = invoices[0].currency
        ids = tuple(sorted(invoice.id for invoice in invoices))
        history = _History(
            [done for invoice_id in plan.invoice_ids for done in self.history.get(invoice_id, ())]
        )
        anchor = invoices[0]
        for item in state.missed(self.today):
            positions = [
                p
                for p in ladder.due_positions(item.due_date.toordinal(), self.t, min_offset=0)
                if ladder.step(p).min_amount <= item.remaining
            ]
            if not positions:
                continue
            done = positions_done(ladder, history.instalment_steps.get(item.index, ()))
            choice = choose(positions, done, ladder.tier, base_count=len(ladder.steps))
            instalment_key = f"{plan.id}#{item.index}"
            chosen = [ladder.step(p) for p in choice.chosen]
            for position in choice.superseded:
                self.supersede(
                    anchor,
                    context,
                    ladder.step(position),
                    ladder.step_day(item.due_date.toordinal(), position),
                    chosen,
                    instalment=item.index,
                    instalment_key=instalment_key,
                    invoice_ids=ids,
                )
            for step in chosen:
                kind = _KIND_BY_CHANNEL.get(step.channel, ActionKind.REMINDER)
                key = action_key(
                    self.connection,
                    kind.value,
                    step.name,
                    plan.customer_id,
                    currency,
                    ",".join(ids),
                    instalment_key,
                    "",
                )
                amount = Money(item.remaining, currency)
                reason = (
                    f"{_step_title(step)}: instalment {item.index} of {len(plan.instalments)} "
                    "of payment plan "
                    f"{plan.id} (due {item.due_date}, {amount} unpaid) {_lateness(item.days_late)}; "
                    "no dispute; step never sent"
                )
                details: dict[str, object] = {
                    "ladder": ladder.name,
                    "offset_days": step.offset_days,
                    "customer_name": context.customer.name,
                    "language": context.settings.language,
                    "plan_id": plan.id,
                    "instalment_due": item.due_date.isoformat(),
                    "instalment_amount": Money(item.amount, currency).fixed(),
                    "balance": amount.fixed(),
                    "invoices": [
                        {"id": i.id, "number": i.number, "balance": i.balance.fixed()} for i in invoices
                    ],
                }
                if step.demand_days:
                    details["demand_days"] = step.demand_days
                self.emit_notice(
                    kind,
                    key,
                    plan.customer_id,
                    currency,
                    ids,
                    reason,
                    step,
                    date.fromordinal(ladder.step_day(item.due_date.toordinal(), step.position)),
                    details,
                    instalment=item.index,
                )


def plan_day(
    *,
    policy: Policy,
    today: date,
    customers: Mapping[str, Customer],
    invoices: Iterable[Invoice],
    settlements: Mapping[str, Sequence[Settlement]] | None = None,
    history: Mapping[str, Sequence[DoneAction]] | None = None,
    disputes: Mapping[str, date | None] | None = None,
    pauses: Mapping[str, date] | None = None,
    payment_plans: Mapping[str, PaymentPlan] | None = None,
    connection: str = "",
) -> Plan:
    """Everything that must happen on `today`, with reasons. See the module docstring for the rules.

    The cyclic garbage collector is paused while planning (and restored after): the plan creates
    many small acyclic objects, and full collections over a large ledger cost a third of the time."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _plan_day(
            policy=policy,
            today=today,
            customers=customers,
            invoices=invoices,
            settlements=settlements,
            history=history,
            disputes=disputes,
            pauses=pauses,
            payment_plans=payment_plans,
            connection=connection,
        )
    finally:
        if collecting:
            gc.enable()


def _plan_day(
    *,
    policy: Policy,
    today: date,
    customers: Mapping[str, Customer],
    invoices: Iterable[Invoice],
    settlements: Mapping[str, Sequence[Settlement]] | None,
    history: Mapping[str, Sequence[DoneAction]] | None,
    disputes: Mapping[str, date | None] | None,
    pauses: Mapping[str, date] | None,
    payment_plans: Mapping[str, PaymentPlan] | None,
    connection: str,
) -> Plan:
    settlements = settlements or {}
    history = history or {}
    disputes = disputes or {}
    planner = _Planner(policy, today, customers, settlements, history, disputes, pauses or {}, connection)
    out = planner.out
    plan_of = plans_by_invoice(payment_plans.values()) if payment_plans else {}
    plan_invoices: dict[str, list[Invoice]] = {}
    exposure = ExposureBuilder(policy.company.currency, policy.credit.include_drafts)
    add_exposure = exposure.add
    suggestion_rule = policy.credit.suggestion
    tracker = (
        SuggestionTracker(policy.company.currency, today, suggestion_rule)
        if suggestion_rule.enabled
        else None
    )
    track_open = tracker.open if tracker is not None else None
    late_ordinal = today.toordinal() - (tracker.late_days if tracker is not None else 0)
    min_balance = planner.min_balance
    discount = planner.discount
    discount_share = discount[0] / HUNDRED if discount is not None else ZERO
    contexts = planner._contexts
    context_of = planner.context
    evaluate = planner.evaluate
    OPEN, PAID, DRAFT = InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.DRAFT

    thank_if_reminded = planner.paid
    track_paid = tracker.paid if tracker is not None else None
    since_ordinal = tracker.since_ordinal if tracker is not None else 0
    history_get, settlements_get = history.get, settlements.get

    for invoice in invoices:
        status = invoice.status
        if status is not OPEN:
            if status is PAID:
                if history_get(invoice.id):
                    thank_if_reminded(invoice)
                if track_paid is not None and invoice.issue_date.toordinal() >= since_ordinal:
                    track_paid(invoice, settlements_get(invoice.id))
            elif status is DRAFT:
                add_exposure(invoice)
            continue
        balance = invoice.balance.amount
        if balance <= 0:
            thank_if_reminded(invoice)
            if track_paid is not None:
                track_paid(invoice, settlements_get(invoice.id))
            continue
        add_exposure(invoice)
        if invoice.is_relance_fee_invoice:
            # relance's own fee invoice: never chased on its own (no reminder, no interest on
            # interest); the customer sees it on the original invoice's notices.
            planner.skip(invoice, "fee invoice created by relance: not chased on its own")
            continue
        if track_open is not None and invoice.due_date.toordinal() <= late_ordinal:
            track_open(invoice)
        if plan_of:
            plan = plan_of.get(invoice.id)
            if plan is not None:
                plan_invoices.setdefault(plan.id, []).append(invoice)
                continue
        context = contexts.get(invoice.customer_id) or context_of(invoice.customer_id)
        if context.blocked is not None:
            planner.skip(invoice, context.blocked)
            continue
        if invoice.id in disputes and planner.disputed(invoice):
            continue
        if (
            discount is not None
            and balance <= invoice.total.amount * discount_share + ONE_CENT_OR_UNIT
            and invoice.id in settlements
        ):
            taken = discount_taken(invoice, settlements[invoice.id], discount[0], discount[1])
            if taken is not None:
                if not planner.summary(invoice.id).credit_noted:
                    planner.credit_note(invoice, taken, discount[0], discount[1])
                planner.skip(invoice, "settled with the early-payment discount")
                continue
        if balance < min_balance:
            planner.skip(invoice, f"balance {invoice.balance} is below the minimum {min_balance}")
            continue
        evaluate(invoice, context, invoice.due_date)

    if plan_of:
        # paid or closed invoices of a plan still matter for its balance only through open ones
        for plan_id, covered in plan_invoices.items():
            planner.payment_plan(payment_plans[plan_id], covered)  # type: ignore[index]
    planner.notices()
    planner.thank()

    breaches: list[CreditBreach] = []
    currency = policy.company.currency
    limits: dict[object, Money | None] = {}

    def limit_of(value: object) -> Money | None:
        if value not in limits:
            limits[value] = as_limit(value, currency)
        return limits[value]

    on_breach = policy.credit.on_breach.value
    for customer_id, amount in sorted(exposure.totals().items()):
        limit = limit_of(context_of(customer_id).settings.credit_limit)
        if limit is None or amount <= limit.amount:
            continue
        breach = check_limit(exposure.exposure(customer_id), limit, on_breach)
        if breach is not None:
            breaches.append(breach)
            action = breach_action(breach, today, connection)
            if not any(action.key in planner.summary(i).keys for i in breach.invoice_ids if i in history):
                out.actions.append(action)
    suggestions: list[LimitSuggestion] = []
    if tracker is not None:
        for customer_id in sorted(c for c in tracker.stats if tracker.would_change(c)):
            limit = limit_of(context_of(customer_id).settings.credit_limit)
            if limit is not None:
                suggestion = tracker.suggestion(customer_id, limit)
                if suggestion.changes:
                    suggestions.append(suggestion)

    def order(action: PlannedAction) -> tuple[Any, ...]:
        return (action.customer_id, action.currency, _KIND_ORDER[action.kind], action.step or "", action.key)

    return Plan(
        actions=tuple(sorted(out.actions, key=order)),
        superseded=tuple(sorted(out.superseded, key=order)),
        skipped=tuple(out.skipped),
        credit=tuple(breaches),
        suggestions=tuple(suggestions),
        warnings=tuple(out.warnings),
    )
