"""Exact money figures of the reports: per-currency sums and their USD value.

SQL returns one row per currency (sums of integer minor units); ``Amounts`` keeps them
per currency as exact ``Decimal`` major units and converts with the tenant's ``Rates``
only at the end: no currency mixing inside, no float anywhere, one rounding per figure
(contract analytics.md: USD to 2 decimals).

Monthly value of a plan price (MRR): the contract's QUARTERLY / 3, YEARLY / 12, plus its
Improve for the short intervals - WEEKLY x 52 / 12, DAILY x 365 / 12, HOURLY x 8760 / 12
(the original counted those as monthly amounts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal

from novabilling.kit import money
from novabilling.kit.fx import Rates

__all__ = ["MONTHLY_FACTOR", "Amounts", "monthly", "ratio", "rate_text"]

_PRECISE = Context(prec=40)

# interval -> (numerator, denominator) of its monthly value
MONTHLY_FACTOR: Mapping[str, tuple[int, int]] = {
    "HOURLY": (8760, 12),
    "DAILY": (365, 12),
    "WEEKLY": (52, 12),
    "MONTHLY": (1, 1),
    "QUARTERLY": (1, 3),
    "YEARLY": (1, 12),
}


def monthly(minor: int, currency: str, interval: str) -> Decimal:
    """Exact monthly value in major units of ``minor`` billed every ``interval``."""
    num, den = MONTHLY_FACTOR.get(interval.upper(), (1, 1))
    return _PRECISE.divide(money.to_major(minor * num, currency), Decimal(den))


def ratio(numerator: Decimal, denominator: Decimal | int) -> Decimal:
    """``numerator / denominator`` exactly to 40 digits; 0 when the denominator is 0."""
    if not denominator:
        return Decimal(0)
    return _PRECISE.divide(numerator, Decimal(denominator))


def rate_text(rates: Rates, currency: str) -> str:
    """The rate used for ``currency`` as a plain decimal string (``"1550"``, ``"0.92"``)."""
    rate = rates.rate(currency).normalize()
    return f"{rate:f}"


@dataclass
class Amounts:
    """Major-unit amounts per currency (exact)."""

    by_currency: dict[str, Decimal] = field(default_factory=dict)

    def add(self, currency: str, amount: Decimal) -> None:
        code = currency.upper()
        self.by_currency[code] = _PRECISE.add(self.by_currency.get(code, Decimal(0)), amount)

    def add_minor(self, currency: str, minor: int | None) -> None:
        self.add(currency, money.to_major(int(minor or 0), currency))

    @classmethod
    def of_rows(cls, rows: Iterable[tuple[str, int | None]]) -> Amounts:
        """From ``(currency, minor-unit sum)`` rows."""
        out = cls()
        for currency, minor in rows:
            out.add_minor(currency, minor)
        return out

    def usd(self, rates: Rates) -> Decimal:
        total = Decimal(0)
        for currency, amount in self.by_currency.items():
            total = _PRECISE.add(total, rates.to_usd(amount, currency))
        return total

    def get(self, currency: str) -> Decimal:
        return self.by_currency.get(currency.upper(), Decimal(0))

    def currencies(self) -> set[str]:
        return set(self.by_currency)

    def minus(self, other: Amounts) -> Amounts:
        out = Amounts(dict(self.by_currency))
        for currency, amount in other.by_currency.items():
            out.add(currency, -amount)
        return out


def native_text(amount: Decimal, currency: str) -> str:
    """A per-currency figure as text with the currency's own decimals (``"1500.00"``,
    ``"25000"`` for UGX)."""
    return money.fixed(amount, money.decimals_of(currency))


def native_number(amount: Decimal, currency: str) -> float | int:
    """A per-currency figure as a JSON number rounded to the currency's decimals."""
    return money.decimal_number(amount, money.decimals_of(currency))


def usd_text(amount: Decimal) -> str:
    return money.fixed(amount, 2)


def usd_number(amount: Decimal) -> float | int:
    return money.decimal_number(amount, 2)
