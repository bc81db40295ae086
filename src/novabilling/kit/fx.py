"""Reporting exchange rates: how many units of a currency make one US dollar.

Analytics reports every money figure in USD (contract analytics.md, "Normalisation"). The
original hard-codes the rates below; they stay the default table, and a tenant replaces or
adds rates with the ``fxRates`` setting (``PATCH /api/tenants/me``
``{"settings": {"fxRates": {"NGN": 1600, "CAD": "1.36"}}}``): every key a currency code
(1-3 letters), every value a positive number of units per USD. A currency in neither table
counts as USD (as in the original).

Rates are exact ``Decimal``s; conversions divide exactly (40 significant digits) and only
the final figure is rounded, by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal
from types import MappingProxyType
from typing import Any

from novabilling.errors import Invalid
from novabilling.kit.money import normalize_code, parse_amount

__all__ = ["DEFAULT_USD_RATES", "SETTING", "Rates", "check_setting", "rates_from_settings"]

SETTING = "fxRates"

DEFAULT_USD_RATES: Mapping[str, Decimal] = MappingProxyType(
    {
        code: Decimal(rate)
        for code, rate in (
            ("USD", "1"),
            ("EUR", "0.92"),
            ("GBP", "0.79"),
            ("NGN", "1550"),
            ("KES", "153"),
            ("UGX", "3750"),
            ("GHS", "15.5"),
            ("ZAR", "18.2"),
            ("TZS", "2650"),
            ("RWF", "1350"),
            ("ETB", "57"),
            ("EGP", "50"),
            ("XOF", "605"),
            ("XAF", "605"),
            ("MAD", "10"),
            ("DZD", "135"),
            ("ZMW", "27"),
        )
    }
)

_PRECISE = Context(prec=40)
_MAX_RATE = Decimal(10) ** 12
_MAX_ENTRIES = 200


class Rates:
    """A rate table: ``to_usd(amount, currency)`` divides by the currency's rate."""

    def __init__(self, table: Mapping[str, Decimal]) -> None:
        self._table = dict(table)

    def rate(self, currency: str) -> Decimal:
        """Units of ``currency`` per USD (1 for a currency without a rate)."""
        return self._table.get(currency.upper(), Decimal(1))

    def to_usd(self, amount: Decimal, currency: str) -> Decimal:
        return _PRECISE.divide(amount, self.rate(currency))


def _rate(value: object, field: str) -> Decimal:
    rate = parse_amount(value, field=field)
    if rate <= 0:
        raise Invalid(field, f"{field} must be a positive number of units per USD")
    if rate >= _MAX_RATE:
        raise Invalid(field, f"{field} is too large")
    return rate


def check_setting(value: object, *, field: str = f"settings.{SETTING}") -> dict[str, Any]:
    """The ``fxRates`` setting as stored (codes upper-cased, values kept as sent), or
    ``Invalid`` naming the broken entry (``settings.fxRates.NGN``). ``None`` clears it."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(field, f"{field} must be an object of currency code -> units per USD")
    if len(value) > _MAX_ENTRIES:
        raise Invalid(field, f"{field} must have at most {_MAX_ENTRIES} entries")
    out: dict[str, Any] = {}
    for code, rate in value.items():
        upper = normalize_code(code, field=f"{field}.{code}")
        _rate(rate, f"{field}.{code}")
        out[upper] = rate
    return out


def rates_from_settings(settings: Mapping[str, Any] | None) -> Rates:
    """The default table with the tenant's ``fxRates`` on top. Entries that are not valid
    (only possible if stored before validation existed) are skipped."""
    table = dict(DEFAULT_USD_RATES)
    custom = (settings or {}).get(SETTING)
    if isinstance(custom, dict):
        for code, value in custom.items():
            try:
                table[normalize_code(code)] = _rate(value, "rate")
            except Invalid:
                continue
    return Rates(table)
