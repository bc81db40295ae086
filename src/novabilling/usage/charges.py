"""Usage charges on plans (contract charges.md): create, read, update, delete.

Called by other modules: ``views_of_plans`` (what the rating reads), ``to_ranges``,
``check_settings`` (plan overrides validate their charge settings the same way)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import BusinessRule, Conflict, Invalid, NotFound
from novabilling.kit.clock import Clock
from novabilling.kit.ids import new_id
from novabilling.kit.pagination import newest_first
from novabilling.plans import service as plans
from novabilling.plans.models import Plan
from novabilling.usage import metrics
from novabilling.usage.charge_rules import (
    RANGE_MODELS,
    FilterSpec,
    RangeSpec,
    check_filters,
    check_properties,
    check_ranges,
    rate,
)
from novabilling.usage.charge_schemas import ChargeCreate, ChargeFilterIn, ChargePatch, RangeIn
from novabilling.usage.models import (
    BillableMetric,
    Charge,
    ChargeFilter,
    ChargeRange,
    MetricFilter,
)

__all__ = [
    "ChargeView",
    "charge_detail",
    "charges_of_plan",
    "check_settings",
    "create_charge",
    "delete_charge",
    "list_charges",
    "to_ranges",
    "update_charge",
    "views_of_plans",
]

log = structlog.get_logger(__name__)


@dataclass
class ChargeView:
    charge: Charge
    metric: BillableMetric
    metric_filters: list[MetricFilter]
    ranges: list[ChargeRange]
    filters: list[ChargeFilter]


def to_ranges(items: Sequence[RangeIn], *, field: str = "graduatedRanges") -> list[RangeSpec]:
    """Wire ranges -> validated ``RangeSpec`` (exact decimal prices)."""
    specs = [
        RangeSpec(
            from_value=item.from_value,
            to_value=item.to_value,
            per_unit=rate(item.per_unit_amount, field=f"{field}.{i}.perUnitAmount"),
            flat=rate(
                item.flat_amount if item.flat_amount is not None else 0,
                field=f"{field}.{i}.flatAmount",
            ),
        )
        for i, item in enumerate(items)
    ]
    check_ranges(specs, field=field)
    return specs


def _filter_specs(items: Sequence[ChargeFilterIn]) -> list[FilterSpec]:
    return [FilterSpec(f.key, tuple(f.values), dict(f.properties or {})) for f in items]


def check_settings(
    model: str,
    *,
    properties: dict[str, Any] | None,
    ranges: Sequence[RangeIn] | None,
    field_prefix: str = "",
) -> list[RangeSpec] | None:
    """The model's requirements (contract order): GRADUATED/VOLUME need ranges, the others
    ``properties``; then the Improve rules on what was sent. Returns the ranges, if sent."""
    if model in RANGE_MODELS and ranges is not None and not ranges:
        raise BusinessRule(f"{model} charge model requires graduatedRanges")
    specs = to_ranges(ranges, field=f"{field_prefix}graduatedRanges") if ranges else None
    if properties is not None and model not in RANGE_MODELS:
        check_properties(model, properties, field=f"{field_prefix}properties")
    return specs


async def _views(session: AsyncSession, charges: list[Charge]) -> list[ChargeView]:
    ids = [c.id for c in charges]
    metric_ids = {c.billable_metric_id for c in charges}
    found = await session.scalars(select(BillableMetric).where(BillableMetric.id.in_(metric_ids)))
    metric_rows = {m.id: m for m in found}
    metric_filters = await metrics.filters_of(session, metric_ids)
    ranges: dict[str, list[ChargeRange]] = {i: [] for i in ids}
    filters: dict[str, list[ChargeFilter]] = {i: [] for i in ids}
    if ids:
        for r in await session.scalars(
            select(ChargeRange).where(ChargeRange.charge_id.in_(ids)).order_by(ChargeRange.position)
        ):
            ranges[r.charge_id].append(r)
        for f in await session.scalars(
            select(ChargeFilter)
            .where(ChargeFilter.charge_id.in_(ids))
            .order_by(ChargeFilter.position)
        ):
            filters[f.charge_id].append(f)
    return [
        ChargeView(
            c,
            metric_rows[c.billable_metric_id],
            metric_filters[c.billable_metric_id],
            ranges[c.id],
            filters[c.id],
        )
        for c in charges
    ]


async def views_of_plans(
    session: AsyncSession, plan_ids: Sequence[str]
) -> dict[str, list[ChargeView]]:
    """Every charge of the plans, oldest first, per plan id (every id present)."""
    out: dict[str, list[ChargeView]] = {pid: [] for pid in plan_ids}
    if not out:
        return out
    rows = list(
        await session.scalars(
            select(Charge)
            .where(Charge.plan_id.in_(list(out)))
            .order_by(Charge.created_at, Charge.id)
        )
    )
    for view in await _views(session, rows):
        out[view.charge.plan_id].append(view)
    return out


async def _get(session: AsyncSession, charge_id: str) -> Charge:
    charge = await session.get(Charge, charge_id)
    if charge is None:
        raise NotFound("Charge not found")
    return charge


async def _write_ranges(session: AsyncSession, charge_id: str, specs: list[RangeSpec]) -> None:
    await session.execute(delete(ChargeRange).where(ChargeRange.charge_id == charge_id))
    if specs:
        await session.execute(
            insert(ChargeRange),
            [
                {
                    "id": new_id(),
                    "charge_id": charge_id,
                    "from_value": s.from_value,
                    "to_value": s.to_value,
                    "per_unit_amount": s.per_unit,
                    "flat_amount": s.flat,
                    "position": position,
                }
                for position, s in enumerate(specs)
            ],
        )


async def _write_filters(session: AsyncSession, charge_id: str, specs: list[FilterSpec]) -> None:
    await session.execute(delete(ChargeFilter).where(ChargeFilter.charge_id == charge_id))
    if specs:
        await session.execute(
            insert(ChargeFilter),
            [
                {
                    "id": new_id(),
                    "charge_id": charge_id,
                    "key": s.key,
                    "values": list(s.values),
                    "properties": dict(s.properties),
                    "position": position,
                }
                for position, s in enumerate(specs)
            ],
        )


async def _allowed(session: AsyncSession, metric_id: str) -> dict[str, list[str]]:
    found = (await metrics.filters_of(session, [metric_id]))[metric_id]
    return {f.key: list(f.values) for f in found}


async def create_charge(session: AsyncSession, *, body: ChargeCreate, clock: Clock) -> ChargeView:
    """Checks in the contract's order: validation, plan (404), metric (404), one charge per
    (plan, metric) (409), the model's requirements (400), then the Improve rules."""
    await plans.get_plan(session, body.plan_id)
    metric = await metrics.get_metric(session, body.billable_metric_id)
    taken = await session.scalar(
        select(Charge.id).where(
            Charge.plan_id == body.plan_id, Charge.billable_metric_id == metric.id
        )
    )
    if taken is not None:
        raise Conflict("A charge for this metric already exists on this plan")
    model = body.charge_model
    if model in RANGE_MODELS and not body.graduated_ranges:
        raise BusinessRule(f"{model} charge model requires graduatedRanges")
    if model not in RANGE_MODELS and body.properties is None:
        raise BusinessRule(f"{model} charge model requires properties")
    specs = check_settings(model, properties=body.properties, ranges=body.graduated_ranges)
    filters = _filter_specs(body.filters or [])
    check_filters(model, filters, await _allowed(session, metric.id))
    now = clock.now()
    charge = Charge(
        id=new_id(),
        plan_id=body.plan_id,
        billable_metric_id=metric.id,
        charge_model=model,
        billing_timing=body.billing_timing,
        invoice_display_name=body.invoice_display_name,
        min_amount_cents=body.min_amount_cents,
        prorated=body.prorated,
        properties=dict(body.properties or {}),
        created_at=now,
        updated_at=now,
    )
    session.add(charge)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("A charge for this metric already exists on this plan") from exc
    await _write_ranges(session, charge.id, specs or [])
    await _write_filters(session, charge.id, filters)
    log.info("charge.created", charge_id=charge.id, plan_id=charge.plan_id, model=model)
    return (await _views(session, [charge]))[0]


async def list_charges(session: AsyncSession, *, plan_id: str | None) -> list[ChargeView]:
    stmt = select(Charge).order_by(*newest_first(Charge))
    if plan_id is not None:
        stmt = stmt.where(Charge.plan_id == plan_id)
    return await _views(session, list(await session.scalars(stmt)))


async def charges_of_plan(session: AsyncSession, plan_id: str) -> list[ChargeView]:
    """Oldest first; an unknown plan is a 404 (the contract's SHOULD)."""
    await plans.get_plan(session, plan_id)
    return (await views_of_plans(session, [plan_id]))[plan_id]


async def charge_detail(session: AsyncSession, charge_id: str) -> tuple[ChargeView, Plan]:
    charge = await _get(session, charge_id)
    return (await _views(session, [charge]))[0], await plans.get_plan(session, charge.plan_id)


async def update_charge(
    session: AsyncSession, charge_id: str, *, body: ChargePatch, clock: Clock
) -> ChargeView:
    """Each sent field replaces the stored one (ranges and filters as whole sets), in the
    request's one transaction; the model's requirements are checked again (Improve)."""
    nulls = body.explicit_nulls()
    if nulls:
        raise Invalid(nulls[0], f"{nulls[0]} should not be null")
    charge = await _get(session, charge_id)
    model = charge.charge_model
    specs = check_settings(model, properties=body.properties, ranges=body.graduated_ranges)
    changes = body.model_dump(exclude_unset=True)
    for name in ("billing_timing", "invoice_display_name", "min_amount_cents", "prorated"):
        if name in changes:
            setattr(charge, name, changes[name])
    if body.properties is not None:
        charge.properties = dict(body.properties)
    if body.filters is not None:
        filters = _filter_specs(body.filters)
        check_filters(model, filters, await _allowed(session, charge.billable_metric_id))
        await _write_filters(session, charge.id, filters)
    if body.graduated_ranges is not None:
        await _write_ranges(session, charge.id, specs or [])
    charge.updated_at = clock.now()
    await session.flush()
    log.info("charge.updated", charge_id=charge.id, fields=sorted(changes))
    return (await _views(session, [charge]))[0]


async def delete_charge(session: AsyncSession, charge_id: str) -> None:
    """Ranges and filters go with it (foreign keys); events stay."""
    charge = await _get(session, charge_id)
    await session.delete(charge)
    await session.flush()
    log.info("charge.deleted", charge_id=charge_id)
