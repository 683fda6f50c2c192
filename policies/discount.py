"""Early-payment discount (seed 000: e.g. 2 % if paid within 10 days of the issue date).

Two uses: pre-due reminders show the offer while it is still open (`discount_offer`), and when a
customer paid total minus the discount inside the window, the ledger is left with the discount as
balance: the plan proposes a credit note for it (`discount_taken`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from policies.model.details import DiscountTerms
from policies.model.ledger import Invoice, Settlement
from policies.model.money import Money, quantum, round_half_up

HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class DiscountOffer:
    percent: Decimal
    amount: Money  # the discount, rounded half-up to the minor unit
    deadline: date  # last day on which paying `pay` settles the invoice
    pay: Money  # total minus discount

    def terms(self) -> DiscountTerms:
        """The offer as a notice line carries it."""
        return DiscountTerms(
            self.percent, self.amount.rounded().amount, self.deadline, self.pay.rounded().amount
        )


def discount_amount(total: Money, percent: Decimal) -> Money:
    return Money(round_half_up(total.amount * percent / HUNDRED, total.currency), total.currency)


def discount_deadline(issue_date: date, within_days: int) -> date:
    """Paid within N days of the issue date: the deadline is issue date + N (inclusive)."""
    return issue_date + timedelta(days=within_days)


def discount_offer(invoice: Invoice, percent: Decimal, within_days: int, today: date) -> DiscountOffer | None:
    """The offer to show on a reminder today; None once the window has closed or if something was
    already paid (the discount is for settling the whole invoice at once)."""
    deadline = discount_deadline(invoice.issue_date, within_days)
    if today > deadline or percent <= 0 or invoice.balance.amount != invoice.total.amount:
        return None
    amount = discount_amount(invoice.total, percent)
    return DiscountOffer(percent, amount, deadline, invoice.total - amount)


def discount_taken(
    invoice: Invoice, settlements: Sequence[Settlement], percent: Decimal, within_days: int
) -> Money | None:
    """The credit note to propose when the customer took the discount, else None.

    Taken = every settlement (payments only; credit notes would be our own) lies inside the window
    and they add up to total minus discount within one minor unit, and the ledger still shows about
    the discount as balance. The credit note is for the ledger balance, so the invoice closes
    exactly."""
    if percent <= 0 or not settlements or invoice.balance.amount <= 0:
        return None
    deadline = discount_deadline(invoice.issue_date, within_days)
    tolerance = quantum(invoice.currency)
    paid = Decimal(0)
    for settlement in settlements:
        if settlement.source != "payment" or settlement.date > deadline:
            return None
        paid += settlement.amount
    discount = discount_amount(invoice.total, percent)
    expected = invoice.total.amount - discount.amount
    if abs(paid - expected) > tolerance:
        return None
    if abs(invoice.balance.amount - discount.amount) > tolerance:
        return None
    return invoice.balance
