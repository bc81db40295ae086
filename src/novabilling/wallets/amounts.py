"""Exact credit arithmetic of wallets: decimals kept to 4 places as integers scaled by
10**4 (``e4``), converted to an invoice's minor units only here."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from novabilling.errors import Invalid
from novabilling.kit.money import decimal_to_wire, decimals_of

__all__ = [
    "E4",
    "MAX_BALANCE_E4",
    "amount_e4",
    "balance_minor",
    "credits_for_minor",
    "e4_in",
    "e4_wire",
]

E4 = 10_000
# a wallet holds less than 10**12 credits and 10**12 currency units (int64-safe sums)
MAX_BALANCE_E4 = 10**12 * E4
_MAX_RATE_E4 = 10**6 * E4


def e4_in(value: Decimal, *, field: str, minimum_e4: int = 0, rate: bool = False) -> int:
    """A wire decimal rounded half-up to 4 places, as e4; ``Invalid(field)`` below
    ``minimum_e4`` or too large."""
    scaled = int((value * E4).to_integral_value(rounding=ROUND_HALF_UP))
    if scaled < minimum_e4:
        least = decimal_to_wire(Decimal(minimum_e4).scaleb(-4))
        raise Invalid(field, f"{field} must not be less than {least}")
    if scaled >= (_MAX_RATE_E4 if rate else MAX_BALANCE_E4):
        raise Invalid(field, f"{field} is too large")
    return scaled


def e4_wire(value: int) -> str:
    """Canonical decimal string of an e4 integer (``15000`` -> ``"1.5"``)."""
    return decimal_to_wire(Decimal(value).scaleb(-4))


def amount_e4(credits_e4: int, rate_e4: int) -> int:
    """credits × rate, half-up to 4 places (e4)."""
    product = credits_e4 * rate_e4
    return (product + E4 // 2) // E4 if product >= 0 else -((-product + E4 // 2) // E4)


def balance_minor(credits_e4: int, rate_e4: int, currency: str) -> int:
    """What the credits are worth in minor units of ``currency``, truncated (a wallet
    never gives more than it holds)."""
    return (credits_e4 * rate_e4 * 10 ** decimals_of(currency)) // (E4 * E4)


def credits_for_minor(minor: int, rate_e4: int, currency: str, *, cap_e4: int) -> int:
    """Credits (e4) that pay ``minor`` units of ``currency``: rounded up to the credit's
    4th decimal, at most ``cap_e4`` (the wallet's balance)."""
    numerator = minor * E4 * E4
    denominator = rate_e4 * 10 ** decimals_of(currency)
    return min(-(-numerator // denominator), cap_e4)
