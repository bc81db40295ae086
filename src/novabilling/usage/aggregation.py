"""Aggregation of usage events in SQL (contract charges.md, "Aggregation").

``aggregate`` turns the events of many subscriptions, one metric and one time window
[start, end) into units per (subscription, bucket), with one statement served by the
index on (subscription_id, code, timestamp); events never come into Python. Each
subscription may have its own window (``windows``): a renewal chunk bills subscriptions
whose periods differ, still with one statement per metric (the windows are a ``VALUES``
list joined on the subscription id).

- v(e) = ``properties[fieldName]`` as a number: a JSON number, or a string holding a plain
  decimal; anything else 0. PostgreSQL casts to ``numeric``; SQLite has no exact decimal
  type, so it uses the functions of ``kit.sqlite_decimal`` on the value's JSON text.
- metric filters: an event whose filter key holds a value (as text) outside the filter's
  values does not count; events without the key count;
- buckets (charge filters): bucket i (1-based) takes the events whose ``properties[key_i]``
  (as text) is among ``values_i``, the first matching filter in order; the rest are
  bucket 0.

COUNT, SUM, MAX, UNIQUE_COUNT (distinct text, missing = ""), WEIGHTED_SUM (v x weight,
weight 0/missing/non-numeric = 1) aggregate per group; LATEST takes v of the newest event
(timestamp, then createdAt, then id) with a window function. No events: no entry (0).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    Numeric,
    String,
    Table,
    and_,
    case,
    column,
    distinct,
    func,
    literal,
    null,
    or_,
    select,
)
from sqlalchemy import (
    values as values_table,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from novabilling.kit.db import UTCDateTime
from novabilling.usage.models import UsageEvent

__all__ = ["MetricSpec", "aggregate"]

_EVENTS = cast(Table, UsageEvent.__table__)
_PLAIN_DECIMAL = r"^-?[0-9]+(\.[0-9]+)?$"

Match = tuple[str, tuple[str, ...]]  # (property key, values)


@dataclass(frozen=True)
class MetricSpec:
    code: str
    aggregation: str
    field_name: str | None = None
    filters: tuple[Match, ...] = ()


class _Dialect:
    """The property expressions of one SQL dialect."""

    def __init__(self, name: str) -> None:
        self.pg = name == "postgresql"
        self.props = _EVENTS.c.properties

    def _path(self, key: str) -> str:
        return f'$."{key}"'

    def text(self, key: str) -> ColumnElement[Any]:
        """``properties[key]`` as text (numbers as written, strings unquoted), NULL when
        missing or JSON null."""
        if self.pg:
            return self.props.op("->>", return_type=String())(key)
        path = self._path(key)
        kind = func.json_type(self.props, path)
        return case(
            (kind == "text", func.json_extract(self.props, path)),
            (kind == "null", null()),
            else_=self.props.op("->", return_type=String())(path),
        )

    def number(self, key: str) -> ColumnElement[Any]:
        """v(e): numeric on PostgreSQL, canonical decimal text on SQLite."""
        if not self.pg:
            return func.nb_num(self.props.op("->", return_type=String())(self._path(key)))
        value = self.props.op("->>", return_type=String())(key)
        kind = func.jsonb_typeof(self.props.op("->")(key))
        numeric = value.cast(Numeric())
        return case(
            (kind == "number", numeric),
            (and_(kind == "string", value.op("~")(_PLAIN_DECIMAL)), numeric),
            else_=literal(0, Numeric()),
        )

    def weighted(self, key: str) -> ColumnElement[Any]:
        if not self.pg:
            raw = self.props.op("->", return_type=String())(self._path("weight"))
            return func.nb_mul(self.number(key), func.nb_weight(raw))
        weight = self.number("weight")
        return self.number(key) * case((weight == 0, literal(1, Numeric())), else_=weight)

    def total(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.sum(value) if self.pg else func.nb_dsum(value)

    def highest(self, value: ColumnElement[Any]) -> ColumnElement[Any]:
        return func.max(value) if self.pg else func.nb_dmax(value)


def _bucket(d: _Dialect, buckets: Sequence[Match]) -> ColumnElement[Any]:
    if not buckets:
        return literal(0)
    whens = [(d.text(key).in_(values), index) for index, (key, values) in enumerate(buckets, 1)]
    return case(*whens, else_=0)


def _value(d: _Dialect, metric: MetricSpec) -> ColumnElement[Any]:
    """What each event contributes: the value the aggregate reads."""
    field = metric.field_name or ""
    kind = metric.aggregation
    if kind == "COUNT":
        return literal(1)
    if kind == "UNIQUE_COUNT":
        return func.coalesce(d.text(field), "")
    if kind == "WEIGHTED_SUM":
        return d.weighted(field)
    return d.number(field)  # SUM, MAX, LATEST


def _measure(d: _Dialect, kind: str, value: ColumnElement[Any]) -> ColumnElement[Any]:
    if kind == "COUNT":
        return func.count()
    if kind == "UNIQUE_COUNT":
        return func.count(distinct(value))
    if kind in ("SUM", "WEIGHTED_SUM"):
        return d.total(value)
    if kind == "MAX":
        return d.highest(value)
    raise ValueError(f"no aggregate for {kind}")


Window = tuple[datetime, datetime]


async def aggregate(
    session: AsyncSession,
    *,
    metric: MetricSpec,
    subscription_ids: Sequence[str] = (),
    window: Window | None = None,
    windows: Mapping[str, Window] | None = None,
    buckets: Sequence[Match] = (),
) -> dict[tuple[str, int], Decimal]:
    """Units per (subscription id, bucket index) of ``metric``: in ``window`` for each of
    ``subscription_ids``, or in each subscription's own window of ``windows``."""
    if windows is None:
        if window is None:
            raise ValueError("aggregate needs window or windows")
        windows = dict.fromkeys(subscription_ids, window)
    if not windows:
        return {}
    d = _Dialect(session.get_bind().dialect.name)
    ev = _EVENTS.c
    conditions: list[ColumnElement[bool]] = [ev.code == metric.code]
    source: Any = _EVENTS
    shared = set(windows.values())
    if len(shared) == 1:
        start, end = shared.pop()
        conditions += [
            ev.subscription_id.in_(list(windows)),
            ev.timestamp >= start,
            ev.timestamp < end,
        ]
    else:
        spans = (
            values_table(
                column("w_sid", String()),
                column("w_start", UTCDateTime()),
                column("w_end", UTCDateTime()),
                name="spans",
            )
            .data([(sid, start, end) for sid, (start, end) in windows.items()])
            .cte("spans")
        )
        source = _EVENTS.join(
            spans,
            and_(
                ev.subscription_id == spans.c.w_sid,
                ev.timestamp >= spans.c.w_start,
                ev.timestamp < spans.c.w_end,
            ),
        )
    for key, values in metric.filters:
        conditions.append(or_(d.text(key).is_(None), d.text(key).in_(values)))
    # one row per event: (subscription, bucket, value); grouped outside, so GROUP BY names
    # plain columns (an expression with bound parameters would not match the SELECT's)
    rows_of = (
        select(
            ev.subscription_id.label("sid"),
            _bucket(d, buckets).label("bucket"),
            _value(d, metric).label("v"),
            ev.timestamp.label("ts"),
            ev.created_at.label("ca"),
            ev.id.label("eid"),
        )
        .select_from(source)
        .where(*conditions)
    )
    per_event = rows_of.subquery()
    if metric.aggregation == "LATEST":
        newest = func.row_number().over(
            partition_by=[per_event.c.sid, per_event.c.bucket],
            order_by=[per_event.c.ts.desc(), per_event.c.ca.desc(), per_event.c.eid.desc()],
        )
        ranked = select(
            per_event.c.sid, per_event.c.bucket, per_event.c.v, newest.label("rn")
        ).subquery()
        stmt = select(ranked.c.sid, ranked.c.bucket, ranked.c.v).where(ranked.c.rn == 1)
    else:
        stmt = select(
            per_event.c.sid,
            per_event.c.bucket,
            _measure(d, metric.aggregation, per_event.c.v),
        ).group_by(per_event.c.sid, per_event.c.bucket)
    rows = (await session.execute(stmt)).all()
    return {
        (str(sid), int(index)): Decimal(str(units))
        for sid, index, units in rows
        if units is not None
    }
