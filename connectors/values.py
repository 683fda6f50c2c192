"""Rules every ledger mapper applies to values before they enter the neutral model.

Ledgers hand back whatever their users typed or their APIs computed. The engine trusts mapped records,
so the checks that keep it safe live here, once, for QuickBooks and Xero alike:

- amounts must be finite, below 10**12 in absolute value and exactly representable after rounding to
  the currency's minor unit (1E+400 is a finite Decimal, yet quantizing it fails later in the planner);
- customer names become one header-safe line (line breaks and control characters folded to spaces),
  since they end up in email headers and notices;
- email addresses holding whitespace or control characters, or not shaped like local@domain, are
  dropped (reported in the log), so one bad address neither injects a header nor blocks the customer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from policies.model.money import round_half_up

log = logging.getLogger("relance.connectors.values")

AMOUNT_LIMIT = Decimal(10**12)  # no receivable line reaches a trillion; beyond it is a data error
_FINEST_CURRENCY = "BHD"  # three decimals, the finest minor unit ISO 4217 uses

# Line breaks and control characters: C0, DEL, C1 (NEL U+0085 included) and the Unicode line and
# paragraph separators. Format characters (bidi marks, zero-width joiners) are legitimate in names.
_BREAKS_AND_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_ATEXT = r"[\w!#$%&'*+/=?^`{|}~-]+"  # \w: letters and digits of any script, and '_'
_ADDR_SPEC = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[\w-]+(?:\.[\w-]+)*")


def checked_amount(value: Decimal | int, currency: str | None = None, field: str = "amount") -> Decimal:
    """`value` when it is a usable amount in `currency`; ValueError saying why otherwise.

    Without a currency the amount is checked against the finest minor unit (3 decimals), which makes
    it usable in every currency."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise ValueError(f"{field} is not an amount: {value!r}"[:120])
    amount = Decimal(value)
    if not amount.is_finite():
        raise ValueError(f"{field} is not a finite amount: {amount}"[:120])
    if abs(amount) >= AMOUNT_LIMIT:
        raise ValueError(f"{field} amount out of range: {amount} (amounts must stay below 10^12)"[:160])
    try:
        round_half_up(amount, currency or _FINEST_CURRENCY)
    except InvalidOperation:
        raise ValueError(
            f"{field} amount out of range: {amount} cannot be rounded to the minor unit"
        ) from None
    return amount


def header_safe_name(name: str, field: str = "name") -> str:
    """`name` on one line: each run of line breaks or control characters becomes one space (and the
    ends are trimmed when something was folded). ValueError when nothing readable is left."""
    folded = _BREAKS_AND_CONTROLS.sub(" ", name)
    if folded != name:
        folded = folded.strip()
    if not folded.strip():
        raise ValueError(f"{field} is empty once line breaks and control characters are removed")
    return folded


def address_problem(address: str) -> str | None:
    """Why `address` is unusable as an email address, or None when it is a plain local@domain."""
    if any(char.isspace() for char in address) or _BREAKS_AND_CONTROLS.search(address):
        return "it contains whitespace or a control character"
    if len(address) > 254 or not _ADDR_SPEC.fullmatch(address):
        return "it is not an address like name@example.com"
    return None


def usable_email_addresses(addresses: Iterable[str], *, record: str) -> tuple[str, ...]:
    """The usable addresses, in order, without duplicates; each dropped one is logged with the reason
    (the customer is kept: the others, or a later fix in the ledger, can still be used)."""
    kept: list[str] = []
    for address in addresses:
        problem = address_problem(address)
        if problem is not None:
            log.warning(
                "%s: email address %r ignored: %s; fix it in the ledger", record, address[:80], problem
            )
        elif address not in kept:
            kept.append(address)
    return tuple(kept)
