"""Money: a Decimal amount with an ISO 4217 currency. Never float.

Arithmetic keeps full precision; rounding happens once, at the end, with `Money.rounded()`
(half-up to the currency's minor unit) unless a law says otherwise.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import NamedTuple

# Minor units that differ from the usual 2 (ISO 4217). Everything else has 2 decimals.
_MINOR_UNITS: dict[str, int] = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0,
    "KMF": 0, "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0,
    "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}

ZERO = Decimal(0)


class CurrencyMismatch(ValueError):
    """Two amounts in different currencies were combined."""


def minor_unit(currency: str) -> int:
    """Number of decimals of the currency's minor unit (2 unless ISO 4217 says otherwise)."""
    return _MINOR_UNITS.get(currency.upper(), 2)


def quantum(currency: str) -> Decimal:
    return Decimal(1).scaleb(-minor_unit(currency))


def round_half_up(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_UP)


def to_decimal(value: object) -> Decimal:
    """Convert a str/int/Decimal to Decimal. Floats are refused: they carry binary noise."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool | float):
        raise TypeError(f"money must not be a {type(value).__name__}: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            result = Decimal(value.strip().replace(",", "").replace("_", ""))
        except InvalidOperation:
            raise ValueError(f"not a decimal amount: {value!r}") from None
        if not result.is_finite():
            raise ValueError(f"not a finite amount: {value!r}")
        return result
    raise TypeError(f"cannot use {type(value).__name__} as an amount: {value!r}")


class Money(NamedTuple):
    """An amount in a currency. Immutable; arithmetic refuses to mix currencies."""

    amount: Decimal
    currency: str

    @classmethod
    def of(cls, amount: object, currency: str) -> Money:
        return cls(to_decimal(amount), currency.upper())

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(ZERO, currency.upper())

    def _check(self, other: Money) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} and {other.currency}")

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._check(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: object) -> Money:
        if isinstance(factor, float | Money):
            return NotImplemented
        return Money(self.amount * to_decimal(factor), self.currency)

    def __rmul__(self, factor: object) -> Money:
        return self.__mul__(factor)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:  # type: ignore[override]
        self._check(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:  # type: ignore[override]
        self._check(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:  # type: ignore[override]
        self._check(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:  # type: ignore[override]
        self._check(other)
        return self.amount >= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def rounded(self) -> Money:
        """Half-up to the currency's minor unit: the one rounding step."""
        return Money(round_half_up(self.amount, self.currency), self.currency)

    def fixed(self) -> str:
        """Plain string at the minor unit ('1200.00'), for JSON and ledger APIs."""
        return str(round_half_up(self.amount, self.currency))

    def display(self) -> str:
        """Human form: 'EUR 1,200.00'."""
        value = round_half_up(self.amount, self.currency)
        return f"{self.currency} {value:,.{minor_unit(self.currency)}f}"

    def __str__(self) -> str:
        return self.display()


def money_sum(items: list[Money] | tuple[Money, ...], currency: str) -> Money:
    total = Money.zero(currency)
    for item in items:
        total = total + item
    return total
