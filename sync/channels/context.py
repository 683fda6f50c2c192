"""What a notice template sees: plain, immutable data built from a planned action and the ledger.

A notice is for ONE customer and ONE currency (the planner groups invoices that way). Templates only
get this context (and the renderer's filters), so everything they may show is prepared here: invoice
lines with days late and pay links, the charges (interest with its segments, compensation, fees), the
total due, the early-payment offer, the formal-demand deadline and the statutory basis to cite.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from policies.model.actions import ActionKind, Charge, DoneAction, PlannedAction
from policies.model.details import DiscountTerms as OfferTerms
from policies.model.details import FeeDetails, NoticeDetails, NoticeLine, ThanksDetails
from policies.model.errors import RelanceError
from policies.model.ledger import Customer, CustomerKind, Invoice
from policies.model.money import Money, money_sum

DEFAULT_DEMAND_DAYS = 8  # a formal demand without a policy figure still gives a deadline
_LANGUAGE = re.compile(r"[a-z]{2}")


@dataclass(frozen=True, slots=True)
class CompanyInfo:
    """The creditor as shown on notices (letterhead, signature, legal footer, bank details)."""

    name: str
    email: str = ""
    phone: str = ""
    address_lines: tuple[str, ...] = ()
    legal_mentions: tuple[str, ...] = ()  # "SIREN 123 456 789", "TVA FR12 123456789", "Siège social : ..."
    bank_details: str = ""  # free text, e.g. "IBAN FR76 3000 ... - BIC BNPAFRPP"
    country: str = ""  # ISO 3166-1 alpha-2: decides which late-payment law the notices cite
    language: str = "en"  # default notice language
    website: str = ""
    law: str | None = None  # the late-payment law the notices cite (the policy's statutory_law())


@dataclass(frozen=True, slots=True)
class DiscountTerms:
    """An early-payment offer still open: pay `pay` (total minus `amount`) by `deadline`."""

    percent: Decimal
    amount: Money
    deadline: date
    pay: Money


@dataclass(frozen=True, slots=True)
class NoticeInvoice:
    id: str
    number: str
    issue_date: date
    due_date: date  # effective due date (e.g. after a payment-plan acceleration)
    days_late: int  # negative = days before the due date
    total: Money
    balance: Money
    pay_link: str | None = None
    discount: DiscountTerms | None = None
    interest: Money | None = None  # charged with this notice's step, when known
    compensation: Money | None = None


@dataclass(frozen=True, slots=True)
class InterestSegment:
    start: date
    end: date
    days: int
    principal: Money
    annual_rate: str  # percent, as policies.interest.format_rate writes it
    interest: Money


@dataclass(frozen=True, slots=True)
class NoticeCharge:
    """A Charge (interest | compensation | fee | discount) with the invoice it belongs to."""

    component: str
    amount: Money
    description: str = ""
    invoice_id: str | None = None
    invoice_number: str | None = None
    segments: tuple[InterestSegment, ...] = ()


@dataclass(frozen=True, slots=True)
class NoticeInstalment:
    index: int
    plan_id: str
    due_date: date
    amount: Money


@dataclass(frozen=True, slots=True)
class NoticeContext:
    company: CompanyInfo
    customer: Customer
    language: str
    step: str | None
    template: str
    channel: str | None
    kind: str  # the action kind (reminder, task, agency, thanks)
    currency: str
    invoices: tuple[NoticeInvoice, ...]
    charges: tuple[NoticeCharge, ...]
    balance_due: Money  # sum of the invoice balances
    charges_total: Money
    total_due: Money  # balances + charges (or the instalment left to pay)
    discount: DiscountTerms | None  # the offers of every invoice added up, earliest deadline
    demand_days: int | None
    demand_deadline: date | None
    instalment: NoticeInstalment | None
    law: str | None  # fr | de | uk | eu: the late-payment law the notice cites
    b2b: bool
    statutory_compensation: Money | None  # fixed recovery compensation owed under `law` (B2B), if any
    today: date
    reference: str  # the action key: quoted on the notice, Message-ID, file names

    @property
    def customer_name(self) -> str:
        return self.customer.name

    @property
    def max_days_late(self) -> int:
        """Of the missed instalment under a payment plan, else of the most overdue invoice."""
        if self.instalment is not None:
            return (self.today - self.instalment.due_date).days
        return max((invoice.days_late for invoice in self.invoices), default=0)

    @property
    def pay_links(self) -> tuple[NoticeInvoice, ...]:
        return tuple(invoice for invoice in self.invoices if invoice.pay_link)

    @property
    def short_reference(self) -> str:
        return self.reference[:12].upper()

    def charges_of(self, component: str) -> Money:
        total = Money.zero(self.currency)
        for charge in self.charges:
            if charge.component == component:
                total = total + charge.amount
        return total


# --- building -------------------------------------------------------------------------------------


def _language(*candidates: object) -> str:
    for candidate in candidates:
        if isinstance(candidate, str) and _LANGUAGE.fullmatch(candidate.strip().lower()[:2]):
            return candidate.strip().lower()[:2]
    return "en"


def _discount(terms: OfferTerms | None, currency: str) -> DiscountTerms | None:
    if terms is None:
        return None
    return DiscountTerms(
        percent=terms.percent,
        amount=Money(terms.amount, currency),
        deadline=terms.deadline,
        pay=Money(terms.pay, currency),
    )


def _segments(details: object, currency: str) -> tuple[InterestSegment, ...]:
    if not isinstance(details, FeeDetails):
        return ()
    return tuple(
        InterestSegment(
            s.start,
            s.end,
            s.days,
            Money(s.principal, currency),
            s.annual_rate,
            Money(s.interest, currency).rounded(),
        )
        for s in details.segments
    )


def _detail_lines(action: PlannedAction) -> dict[str, NoticeLine]:
    """The invoices as the planner described them, by id."""
    details = action.details
    lines = details.invoices if isinstance(details, NoticeDetails | ThanksDetails) else ()
    return {line.id: line for line in lines}


def _invoice_lines(
    action: PlannedAction, invoices: Mapping[str, Invoice], today: date
) -> list[NoticeInvoice]:
    detail_lines = _detail_lines(action)
    currency = action.currency
    result = []
    for invoice_id in action.invoice_ids:
        invoice = invoices.get(invoice_id)
        line = detail_lines.get(invoice_id)
        if invoice is None and line is None:
            raise RelanceError(
                f"notice {action.key}: invoice {invoice_id} is neither in the ledger snapshot "
                "nor in the plan",
                hint="run `relance sync` again so the state store holds the invoice",
            )
        if invoice is not None and invoice.currency != currency:
            raise RelanceError(
                f"notice {action.key}: invoice {invoice.number} is in {invoice.currency}, "
                f"the notice in {currency}"
            )
        planned_due = line.due_date if line is not None else None
        due = planned_due or (invoice.due_date if invoice is not None else today)
        if invoice is not None:
            issue, total, balance, number = invoice.issue_date, invoice.total, invoice.balance, invoice.number
        else:
            assert line is not None
            issue = line.issue_date or due
            total = Money(line.total if line.total is not None else Decimal(0), currency)
            balance = Money(line.balance if line.balance is not None else Decimal(0), currency)
            number = line.number
        link = (invoice.pay_link if invoice is not None else None) or (line.pay_link if line else None)
        result.append(
            NoticeInvoice(
                id=invoice_id,
                number=number,
                issue_date=issue,
                due_date=due,
                days_late=(today - due).days,
                total=total,
                balance=balance,
                pay_link=link or None,
                discount=_discount(line.discount if line else None, currency),
            )
        )
    return result


def _owed_compensation(action: PlannedAction, currency: str) -> Money:
    """What the law owes in fixed compensation on the notice's late invoices (the planner's figure)."""
    owed = [line.statutory_compensation for line in _detail_lines(action).values()]
    return money_sum([Money(amount, currency) for amount in owed if amount is not None], currency)


def _charges(
    action: PlannedAction, fees: Sequence[PlannedAction | DoneAction], numbers: Mapping[str, str]
) -> list[NoticeCharge]:
    sources: list[tuple[tuple[str, ...], Sequence[Charge], object]] = [
        (action.invoice_ids, action.charges, action.details)
    ]
    for fee in fees:
        sources.append(
            (fee.invoice_ids, fee.charges, fee.details if isinstance(fee, PlannedAction) else None)
        )
    result = []
    for invoice_ids, charges, details in sources:
        # A charge belongs to an invoice when its action covers exactly one of the notice's invoices.
        owner = invoice_ids[0] if len(invoice_ids) == 1 and invoice_ids[0] in numbers else None
        if len(invoice_ids) == 1 and owner is None and invoice_ids[0] not in numbers:
            continue  # a fee on an invoice that is not part of this notice
        for charge in charges:
            if charge.amount.currency != action.currency or charge.component == "discount":
                continue
            segments = _segments(details, action.currency) if charge.component == "interest" else ()
            result.append(
                NoticeCharge(
                    component=charge.component,
                    amount=charge.amount,
                    description=charge.description,
                    invoice_id=owner,
                    invoice_number=numbers.get(owner) if owner else None,
                    segments=segments,
                )
            )
    return result


def _default_template(action: PlannedAction) -> str:
    if action.template:
        return action.template
    if action.kind is ActionKind.THANKS:
        return "thanks"
    if action.kind is ActionKind.AGENCY or action.channel == "agency":
        return "agency_handover"
    offset = action.details.offset_days if isinstance(action.details, NoticeDetails) else None
    if offset is not None and offset < 0:
        return "pre_due"
    return "due_today" if offset == 0 else "late_1"


def build_context(
    action: PlannedAction,
    customer: Customer,
    invoices: Mapping[str, Invoice],
    company: CompanyInfo,
    today: date,
    *,
    fees: Sequence[PlannedAction | DoneAction] = (),
    language: str | None = None,
) -> NoticeContext:
    """The template context of one notice.

    `fees`: the FEE actions charged with this step (the planner posts charges per invoice as separate
    actions); their charges are listed on the notice and added to the total due. Pass only charges not
    yet included in the ledger balances. Language: `language`, else the plan's, the customer's, the
    company's."""
    if customer.id != action.customer_id:
        raise RelanceError(
            f"notice {action.key}: customer {customer.id} is not the action's {action.customer_id}"
        )
    currency = action.currency
    lines = _invoice_lines(action, invoices, today)
    numbers = {line.id: line.number for line in lines}
    charges = _charges(action, fees, numbers)
    law = company.law
    b2b = customer.kind is not CustomerKind.B2C

    interest_by_invoice: dict[str, Money] = {}
    compensation_by_invoice: dict[str, Money] = {}
    for charge in charges:
        if charge.invoice_id is None:
            continue
        target = {"interest": interest_by_invoice, "compensation": compensation_by_invoice}.get(
            charge.component
        )
        if target is not None:
            target[charge.invoice_id] = target.get(charge.invoice_id, Money.zero(currency)) + charge.amount
    lines = [
        NoticeInvoice(
            line.id,
            line.number,
            line.issue_date,
            line.due_date,
            line.days_late,
            line.total,
            line.balance,
            line.pay_link,
            line.discount,
            interest_by_invoice.get(line.id),
            compensation_by_invoice.get(line.id),
        )
        for line in lines
    ]

    balance_due = money_sum([line.balance for line in lines], currency)
    charges_total = money_sum([charge.amount for charge in charges], currency)
    total_due = balance_due + charges_total

    details = action.details
    notice = details if isinstance(details, NoticeDetails) else None
    instalment = None
    if action.instalment is not None and notice is not None and notice.instalment is not None:
        terms = notice.instalment
        instalment = NoticeInstalment(
            index=action.instalment,
            plan_id=terms.plan_id,
            due_date=terms.due_date,
            amount=Money(terms.amount, currency),
        )
        if notice.balance is not None:
            total_due = Money(notice.balance, currency)

    offers = [line.discount for line in lines if line.discount is not None]
    discount = None
    if offers:
        discount = DiscountTerms(
            percent=offers[0].percent,
            amount=money_sum([offer.amount for offer in offers], currency),
            deadline=min(offer.deadline for offer in offers),
            pay=money_sum([offer.pay for offer in offers], currency),
        )

    demand_days = notice.demand_days if notice is not None else None
    template = _default_template(action)
    if demand_days is None and template == "final_notice":
        demand_days = DEFAULT_DEMAND_DAYS

    statutory: Money | None = money_sum(
        [c.amount for c in charges if c.component == "compensation"], currency
    )
    if statutory is not None and statutory.is_zero():
        # nothing charged with this notice: cite what the law owes, as the planner computed it
        statutory = None
        if b2b and law is not None:
            owed = _owed_compensation(action, currency)
            statutory = None if owed.is_zero() else owed

    return NoticeContext(
        company=company,
        customer=customer,
        language=_language(
            language,
            details.language if isinstance(details, NoticeDetails | ThanksDetails) else None,
            customer.language,
            company.language,
        ),
        step=action.step,
        template=template,
        channel=action.channel,
        kind=action.kind.value,
        currency=currency,
        invoices=tuple(lines),
        charges=tuple(charges),
        balance_due=balance_due,
        charges_total=charges_total,
        total_due=total_due,
        discount=discount,
        demand_days=demand_days,
        demand_deadline=today + timedelta(days=demand_days) if demand_days else None,
        instalment=instalment,
        law=law,
        b2b=b2b,
        statutory_compensation=statutory,
        today=today,
        reference=action.key,
    )
