"""What each kind of planned action carries beyond its key, invoices and charges: typed, immutable.

The planner fills these; channels, the applier and reports read them; the state store serialises
them (sync.store.codec) in the same JSON shape as ever, so older rows still read back. Which type an
action carries follows from its kind (and, for tasks, its step): `details_type`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from policies.model.kinds import ActionKind

CREDIT_LIMIT_STEP = "credit-limit"  # the step of credit-limit CREDIT_ALERT and TASK actions


@dataclass(frozen=True, slots=True)
class DiscountTerms:
    """An early-payment offer still open on an invoice: pay `pay` (total minus `amount`) by `deadline`."""

    percent: Decimal
    amount: Decimal
    deadline: date
    pay: Decimal


@dataclass(frozen=True, slots=True)
class NoticeLine:
    """One invoice on a notice (or a thank-you), as the planner saw it."""

    id: str
    number: str
    issue_date: date | None = None
    due_date: date | None = None  # the effective due date (after a payment plan's acceleration)
    total: Decimal | None = None
    balance: Decimal | None = None
    days_late: int | None = None
    discount: DiscountTerms | None = None
    pay_link: str | None = None
    statutory_compensation: Decimal | None = None  # what the law owes in fixed compensation, if late


@dataclass(frozen=True, slots=True)
class InstalmentTerms:
    """The missed instalment a payment-plan notice is about."""

    plan_id: str
    due_date: date
    amount: Decimal


@dataclass(frozen=True, slots=True)
class NoticeDetails:
    """A ladder step's notice (REMINDER, TASK or AGENCY), for one customer and currency."""

    ladder: str = ""
    offset_days: int | None = None
    customer_name: str = ""
    language: str | None = None
    balance: Decimal | None = None  # sum of the invoices' balances (or the instalment left to pay)
    invoices: tuple[NoticeLine, ...] = ()
    demand_days: int | None = None  # a formal demand: days given to pay
    repeat: int | None = None  # k-th repeat of the ladder's last step
    instalment: InstalmentTerms | None = None
    # Set by the applier before a ledger e-mail: each invoice's last delivery time as the ledger
    # reported it before this send (None: never sent); after a crash the send is verified against it.
    previous_delivery: tuple[tuple[str, datetime | None], ...] | None = None

    def previous_delivery_of(self, invoice_id: str) -> tuple[bool, datetime | None]:
        """(recorded?, delivery time) for one invoice."""
        for recorded_id, moment in self.previous_delivery or ():
            if recorded_id == invoice_id:
                return True, moment
        return False, None


@dataclass(frozen=True, slots=True)
class NoteDetails:
    """A note on an invoice recording a notice."""

    notice_key: str
    notice_kind: ActionKind


@dataclass(frozen=True, slots=True)
class InterestSegmentTerms:
    """One stretch of constant principal and rate of the interest charged (for notices)."""

    start: date
    end: date
    days: int
    principal: Decimal
    annual_rate: str  # percent, as policies.interest.format_rate writes it
    interest: Decimal


@dataclass(frozen=True, slots=True)
class FeeDetails:
    """Charges posted on one invoice."""

    invoice_number: str = ""
    fees: tuple[tuple[str, str], ...] = ()  # (fee name, line text) of each named fee charged
    period: int | None = None  # recurring fee: the period charged
    segments: tuple[InterestSegmentTerms, ...] = ()  # the interest's breakdown, when known

    def fee_text(self, name: str) -> str | None:
        return next((text for fee, text in self.fees if fee == name), None)


@dataclass(frozen=True, slots=True)
class CreditNoteDetails:
    """The early-payment discount credited on an invoice."""

    invoice_number: str
    percent: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class ThanksDetails:
    customer_name: str
    language: str | None
    invoices: tuple[NoticeLine, ...] = ()


@dataclass(frozen=True, slots=True)
class SupersededDetails:
    """A step that fell due but will never be sent."""

    ladder: str
    offset_days: int


@dataclass(frozen=True, slots=True)
class CreditLimitDetails:
    """A credit-limit breach."""

    limit: Decimal
    exposure: Decimal
    over: Decimal
    on_breach: str  # alert | call_task | hold
    episode: str  # "<limit>@<ISO week>": the breach is raised once per episode


Details = (
    NoticeDetails
    | NoteDetails
    | FeeDetails
    | CreditNoteDetails
    | ThanksDetails
    | SupersededDetails
    | CreditLimitDetails
)

_TYPE_BY_KIND: dict[ActionKind, type] = {
    ActionKind.REMINDER: NoticeDetails,
    ActionKind.TASK: NoticeDetails,
    ActionKind.AGENCY: NoticeDetails,
    ActionKind.NOTE: NoteDetails,
    ActionKind.FEE: FeeDetails,
    ActionKind.CREDIT_NOTE: CreditNoteDetails,
    ActionKind.THANKS: ThanksDetails,
    ActionKind.SUPERSEDED: SupersededDetails,
    ActionKind.CREDIT_ALERT: CreditLimitDetails,
}


def details_type(kind: ActionKind, step: str | None) -> type:
    """The details class an action of this kind (and step) carries."""
    if kind is ActionKind.TASK and step == CREDIT_LIMIT_STEP:
        return CreditLimitDetails
    return _TYPE_BY_KIND[kind]


__all__ = [
    "CREDIT_LIMIT_STEP",
    "CreditLimitDetails",
    "CreditNoteDetails",
    "Details",
    "DiscountTerms",
    "FeeDetails",
    "InstalmentTerms",
    "InterestSegmentTerms",
    "NoteDetails",
    "NoticeDetails",
    "NoticeLine",
    "SupersededDetails",
    "ThanksDetails",
    "details_type",
]
