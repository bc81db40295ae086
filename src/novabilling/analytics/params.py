"""The analytics query string (contract analytics.md, "Query parameters").

revenue, subscriptions, customers, payments, mrr-breakdown and net-revenue accept exactly
``dateFrom``, ``dateTo``, ``currency`` and ``groupBy`` (anything else -> 400 naming
``property``), plus our additions: ``provider`` on payments (the contract's Improve) and
``byCurrency`` everywhere (``true``: also the per-currency figures, in each currency's own
units, without conversion). ``dateFrom``/``dateTo`` are inclusive instants; a bare date is
00:00 UTC (contract). ``groupBy`` is validated, otherwise unused (contract).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from novabilling.errors import FieldError, Invalid
from novabilling.kit.money import normalize_code
from novabilling.kit.timestamps import parse_instant

__all__ = ["GROUP_BY", "Query", "cohort_months", "parse_query", "wants_by_currency"]

GROUP_BY = ("day", "week", "month")
BASE_KEYS = ("dateFrom", "dateTo", "currency", "groupBy", "byCurrency")
DEFAULT_MONTHS = 12
MAX_MONTHS = 120
_TRUE = ("true", "1", "yes")
_LEADING_INT = re.compile(r"\s*\+?([0-9]+)")
_FALSE = ("false", "0", "no", "")


@dataclass(frozen=True)
class Query:
    date_from: datetime | None = None
    date_to: datetime | None = None
    currency: str | None = None
    provider: str | None = None
    by_currency: bool = False


def _flag(raw: str | None, field: str) -> bool:
    if raw is None:
        return False
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Invalid(field, f"{field} must be a boolean value")


def wants_by_currency(query: Mapping[str, str]) -> bool:
    """``byCurrency`` for ltv, which reads nothing else (other values are ignored there,
    like every other parameter, contract)."""
    return (query.get("byCurrency") or "").strip().lower() in _TRUE


def parse_query(query: Mapping[str, str], *, extra: tuple[str, ...] = ()) -> Query:
    """The strict analytics query; ``extra`` names more accepted keys (``provider``)."""
    allowed = {*BASE_KEYS, *extra}
    errors = [
        FieldError("property", f"property {key} should not exist")
        for key in query
        if key not in allowed
    ]
    instants: dict[str, datetime | None] = {"dateFrom": None, "dateTo": None}
    for name in instants:
        raw = query.get(name)
        if raw is None:
            continue
        try:
            instants[name] = parse_instant(raw)
        except ValueError as bad:
            errors.append(FieldError(name, f"{name} {bad}"))
    group_by = query.get("groupBy")
    if group_by is not None and group_by not in GROUP_BY:
        errors.append(FieldError("groupBy", "groupBy must be one of: day, week, month"))
    if errors:
        invalid = Invalid(errors[0].field, errors[0].message)
        invalid.errors = errors
        raise invalid
    currency = query.get("currency")
    return Query(
        date_from=instants["dateFrom"],
        date_to=instants["dateTo"],
        currency=normalize_code(currency) if currency else None,
        provider=query.get("provider") or None,
        by_currency=_flag(query.get("byCurrency"), "byCurrency"),
    )


def cohort_months(raw: str | None) -> int:
    """``months`` of churn-cohorts, read like the original's ``parseInt`` (leading digits:
    ``"6"``, ``"6abc"`` -> 6): default 12, unparsable or < 1 -> 12 (contract; a negative
    value gave an empty report in the original), at most ``MAX_MONTHS`` (ten years)."""
    found = _LEADING_INT.match(raw or "")
    if found is None:
        return DEFAULT_MONTHS
    value = int(found.group(1)[:7])
    return min(value, MAX_MONTHS) if value >= 1 else DEFAULT_MONTHS
