"""Billable metrics (contract billable-metrics.md): create, read, update, delete.

Called by other modules: ``get_metric``, ``filters_of``, ``by_codes`` (events, charges,
rating)."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import BusinessRule, Conflict, Invalid, NotFound
from novabilling.kit.clock import Clock
from novabilling.kit.ids import new_id
from novabilling.kit.pagination import newest_first
from novabilling.usage.metric_schemas import FilterIn, MetricCreate, MetricPatch
from novabilling.usage.models import FIELD_REQUIRED, BillableMetric, Charge, MetricFilter

__all__ = [
    "by_codes",
    "create_metric",
    "delete_metric",
    "filters_of",
    "get_metric",
    "list_metrics",
    "metric_detail",
    "update_metric",
]

log = structlog.get_logger(__name__)


async def get_metric(session: AsyncSession, metric_id: str) -> BillableMetric:
    """The metric or ``NotFound("Billable metric not found")``."""
    metric = await session.get(BillableMetric, metric_id)
    if metric is None:
        raise NotFound("Billable metric not found")
    return metric


async def by_codes(session: AsyncSession, codes: Iterable[str]) -> dict[str, BillableMetric]:
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    rows = await session.scalars(select(BillableMetric).where(BillableMetric.code.in_(wanted)))
    return {m.code: m for m in rows}


async def filters_of(
    session: AsyncSession, metric_ids: Iterable[str]
) -> dict[str, list[MetricFilter]]:
    """Filters per metric id (every id present, in the order sent)."""
    out: dict[str, list[MetricFilter]] = {mid: [] for mid in metric_ids}
    if not out:
        return out
    rows = await session.scalars(
        select(MetricFilter)
        .where(MetricFilter.billable_metric_id.in_(list(out)))
        .order_by(MetricFilter.position)
    )
    for item in rows:
        out[item.billable_metric_id].append(item)
    return out


def _check_filters(filters: list[FilterIn]) -> None:
    seen: set[str] = set()
    for index, item in enumerate(filters):
        if item.key in seen:
            raise Invalid(f"filters.{index}.key", f"filters.{index}.key {item.key} is listed twice")
        seen.add(item.key)


def _check_field(aggregation: str, field_name: str | None) -> None:
    if aggregation in FIELD_REQUIRED and not field_name:
        raise Invalid("fieldName", f"fieldName is required for {aggregation} aggregation type")


async def _write_filters(session: AsyncSession, metric_id: str, filters: list[FilterIn]) -> None:
    await session.execute(delete(MetricFilter).where(MetricFilter.billable_metric_id == metric_id))
    if filters:
        await session.execute(
            insert(MetricFilter),
            [
                {
                    "id": new_id(),
                    "billable_metric_id": metric_id,
                    "key": item.key,
                    "values": list(item.values),
                    "position": position,
                }
                for position, item in enumerate(filters)
            ],
        )


async def create_metric(
    session: AsyncSession, *, body: MetricCreate, clock: Clock
) -> tuple[BillableMetric, list[MetricFilter]]:
    """Validation, then ``fieldName`` for the aggregations that read it (400), then the
    code's uniqueness (409), as the contract orders them."""
    _check_filters(body.filters)
    _check_field(body.aggregation_type, body.field_name)
    if await session.scalar(select(BillableMetric.id).where(BillableMetric.code == body.code)):
        raise Conflict("Billable metric with this code already exists")
    now = clock.now()
    metric = BillableMetric(
        id=new_id(),
        name=body.name,
        code=body.code,
        description=body.description,
        aggregation_type=body.aggregation_type,
        field_name=body.field_name,
        recurring=body.recurring,
        created_at=now,
        updated_at=now,
    )
    session.add(metric)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("Billable metric with this code already exists") from exc
    await _write_filters(session, metric.id, body.filters)
    log.info("billable_metric.created", metric_id=metric.id, code=metric.code)
    return metric, (await filters_of(session, [metric.id]))[metric.id]


async def list_metrics(
    session: AsyncSession,
) -> list[tuple[BillableMetric, list[MetricFilter], int]]:
    """Every metric, newest first, with its filters and number of charges."""
    metrics = list(
        await session.scalars(select(BillableMetric).order_by(*newest_first(BillableMetric)))
    )
    filters = await filters_of(session, [m.id for m in metrics])
    stmt = select(Charge.billable_metric_id, func.count()).group_by(Charge.billable_metric_id)
    counts = dict((await session.execute(stmt)).all())
    return [(m, filters[m.id], int(counts.get(m.id, 0))) for m in metrics]


async def metric_detail(
    session: AsyncSession, metric_id: str
) -> tuple[BillableMetric, list[MetricFilter], list[Charge]]:
    metric = await get_metric(session, metric_id)
    charges = list(
        await session.scalars(
            select(Charge)
            .where(Charge.billable_metric_id == metric.id)
            .order_by(Charge.created_at, Charge.id)
        )
    )
    return metric, (await filters_of(session, [metric.id]))[metric.id], charges


async def update_metric(
    session: AsyncSession, metric_id: str, *, body: MetricPatch, clock: Clock
) -> tuple[BillableMetric, list[MetricFilter]]:
    nulls = body.explicit_nulls()
    if nulls:
        raise Invalid(nulls[0], f"{nulls[0]} should not be null")
    if body.filters is not None:
        _check_filters(body.filters)
    metric = await get_metric(session, metric_id)
    changes = body.model_dump(exclude_unset=True)
    if "field_name" in changes:
        _check_field(metric.aggregation_type, body.field_name)
        metric.field_name = body.field_name
    for name in ("name", "description", "recurring"):
        if name in changes:
            setattr(metric, name, changes[name])
    metric.updated_at = clock.now()
    await session.flush()
    if body.filters is not None:
        await _write_filters(session, metric.id, body.filters)
    log.info("billable_metric.updated", metric_id=metric.id, fields=sorted(changes))
    return metric, (await filters_of(session, [metric.id]))[metric.id]


async def delete_metric(session: AsyncSession, metric_id: str) -> None:
    """400 while a charge uses the metric (its foreign key decides: a charge created
    meanwhile counts too)."""
    metric = await get_metric(session, metric_id)
    used = await session.scalar(select(Charge.id).where(Charge.billable_metric_id == metric.id))
    if used is None:
        await session.delete(metric)
        try:
            await session.flush()
        except IntegrityError:
            used = "raced"
    if used is not None:
        raise BusinessRule("Cannot delete billable metric that is used in charges")
    log.info("billable_metric.deleted", metric_id=metric_id)
