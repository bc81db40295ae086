"""Exact decimal arithmetic inside SQLite (the embedded deployment).

SQLite reads a JSON number as a binary float (``json_extract``), and its ``SUM``/``MAX``
are float arithmetic: ``0.1 + 0.2`` comes back as ``0.30000000000000004``. PostgreSQL's
``numeric`` is exact. So that aggregations over usage events (``usage.aggregation``) give
the same exact results on both, every SQLite connection gets these functions, working on
the JSON *text* of a value (SQLite's ``->`` operator returns a number exactly as it was
written) and on canonical decimal text:

- ``nb_num(json_text)``: a JSON number, or a JSON string holding a plain decimal
  (``"12.5"``), as canonical decimal text; anything else (missing, ``null``, other
  strings, booleans, objects) ``'0'``;
- ``nb_weight(json_text)``: like ``nb_num``, but ``0``, missing or non-numeric is ``'1'``;
- ``nb_mul(a, b)``: the exact product of two decimal texts;
- aggregates ``nb_dsum(text)`` and ``nb_dmax(text)``: exact sum and maximum of decimal
  texts (NULLs skipped; ``nb_dsum`` of nothing is ``'0'``, ``nb_dmax`` of nothing NULL).

The aggregates are registered through aiosqlite's worker thread (``create_aggregate`` has
no async wrapper in aiosqlite; the function must be created on the thread that owns the
``sqlite3`` connection).
"""

from __future__ import annotations

import re
from decimal import Context, Decimal, InvalidOperation, localcontext
from typing import Any

__all__ = ["PRECISION", "canonical", "number_of", "register", "weight_of"]

PRECISION = 60  # digits kept by every operation (sums of int64 values fit easily)
_PLAIN = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_CONTEXT = Context(prec=PRECISION)


def canonical(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros (``'12.5'``, ``'0'``)."""
    if value == 0:
        return "0"
    text = format(value.normalize(_CONTEXT), "f")
    return text


def number_of(json_text: str | None) -> Decimal:
    """The numeric value of a JSON value's text: a number, or a string holding a plain
    decimal; anything else 0."""
    if not json_text:
        return Decimal(0)
    text = json_text.strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        inner = text[1:-1]
        return Decimal(inner) if len(inner) <= 64 and _PLAIN.fullmatch(inner) else Decimal(0)
    if len(text) <= 400 and _JSON_NUMBER.fullmatch(text):
        try:
            return Decimal(text)
        except InvalidOperation:
            return Decimal(0)
    return Decimal(0)


def weight_of(json_text: str | None) -> Decimal:
    """``properties.weight`` of a WEIGHTED_SUM: 0, missing or non-numeric count as 1."""
    weight = number_of(json_text)
    return weight if weight != 0 else Decimal(1)


def _num(json_text: Any) -> str:
    return canonical(number_of(json_text if isinstance(json_text, str) else None))


def _weight(json_text: Any) -> str:
    return canonical(weight_of(json_text if isinstance(json_text, str) else None))


def _mul(a: Any, b: Any) -> str | None:
    if a is None or b is None:
        return None
    with localcontext(_CONTEXT):
        return canonical(Decimal(str(a)) * Decimal(str(b)))


class _Sum:
    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Any) -> None:
        if value is not None:
            with localcontext(_CONTEXT):
                self.total += Decimal(str(value))

    def finalize(self) -> str:
        return canonical(self.total)


class _Max:
    def __init__(self) -> None:
        self.best: Decimal | None = None

    def step(self, value: Any) -> None:
        if value is not None:
            number = Decimal(str(value))
            if self.best is None or number > self.best:
                self.best = number

    def finalize(self) -> str | None:
        return None if self.best is None else canonical(self.best)


def register(dbapi_connection: Any) -> None:
    """Create the functions on one new SQLite connection (an aiosqlite connection as
    adapted by SQLAlchemy; called from the engine's ``connect`` event)."""
    dbapi_connection.create_function("nb_num", 1, _num, deterministic=True)
    dbapi_connection.create_function("nb_weight", 1, _weight, deterministic=True)
    dbapi_connection.create_function("nb_mul", 2, _mul, deterministic=True)
    if not hasattr(dbapi_connection, "run_async"):  # a plain sqlite3 connection
        dbapi_connection.create_aggregate("nb_dsum", 1, _Sum)
        dbapi_connection.create_aggregate("nb_dmax", 1, _Max)
        return

    async def aggregates(driver: Any) -> None:
        raw = driver._conn  # noqa: SLF001 - the sqlite3 connection, used on its own thread
        await driver._execute(raw.create_aggregate, "nb_dsum", 1, _Sum)  # noqa: SLF001
        await driver._execute(raw.create_aggregate, "nb_dmax", 1, _Max)  # noqa: SLF001

    dbapi_connection.run_async(aggregates)
