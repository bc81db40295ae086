"""Plan overrides: one customer's prices, minimum commitment and charge settings on one
plan (contract plan-overrides.md), and how billing reads them.

The inner arrays are validated (contract Improve): prices one per currency, upper-cased,
within the currency's decimals; charge settings only for charges of the plan, one per
charge, following that charge model's rules (``usage.charges.check_settings``). They are
stored as sent, amounts as JSON numbers.

For billing: ``for_pairs`` (bulk read), ``price_minor``, ``minimum_e4``,
``charge_settings``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers import service as customers
from novabilling.customers.models import Customer
from novabilling.errors import Conflict, Invalid, NotFound
from novabilling.kit.clock import Clock
from novabilling.kit.ids import new_id
from novabilling.kit.money import (
    MAX_MINOR,
    decimal_to_number,
    normalize_code,
    parse_amount,
    to_minor,
)
from novabilling.kit.pagination import paginate
from novabilling.plans import service as plans
from novabilling.plans.models import Plan
from novabilling.usage.charge_rules import RangeSpec
from novabilling.usage.charges import check_settings
from novabilling.usage.models import Charge, PlanOverride
from novabilling.usage.override_schemas import (
    ChargeOverrideIn,
    OverrideCreate,
    OverridePatch,
    PriceOverrideIn,
)

__all__ = [
    "Embedded",
    "charge_settings",
    "create_override",
    "delete_override",
    "for_pairs",
    "get_override",
    "list_overrides",
    "minimum_e4",
    "price_minor",
    "update_override",
]

log = structlog.get_logger(__name__)
E4 = 10_000


@dataclass
class Embedded:
    override: PlanOverride
    customer: dict[str, Any]
    plan: dict[str, Any]


def _prices(items: list[PriceOverrideIn]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"overriddenPrices.{index}"
        code = normalize_code(item.currency, field=f"{where}.currency")
        to_minor(item.amount, code, field=f"{where}.amount", currency_field=f"{where}.currency")
        if any(seen["currency"] == code for seen in out):
            raise Invalid(f"{where}.currency", f"{where}.currency {code} is listed twice")
        out.append({"currency": code, "amount": decimal_to_number(item.amount)})
    return out


def _e4(value: Decimal | None) -> int | None:
    if value is None:
        return None
    field = "overriddenMinimumCommitment"
    scaled = parse_amount(value, field=field) * E4
    if scaled != scaled.to_integral_value():
        raise Invalid(field, f"{field} must have at most 4 decimal places")
    if scaled < 0:
        raise Invalid(field, f"{field} must not be less than 0")
    if scaled >= MAX_MINOR:
        raise Invalid(field, f"{field} is too large")
    return int(scaled)


async def _charges(
    session: AsyncSession, plan_id: str, items: list[ChargeOverrideIn]
) -> list[dict[str, Any]]:
    models = dict(
        (
            await session.execute(
                select(Charge.id, Charge.charge_model).where(Charge.plan_id == plan_id)
            )
        ).all()
    )
    out: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        where = f"overriddenCharges.{index}"
        model = models.get(item.charge_id)
        if model is None:
            raise Invalid(f"{where}.chargeId", f"{where}.chargeId is not a charge of this plan")
        if any(seen["chargeId"] == item.charge_id for seen in out):
            raise Invalid(f"{where}.chargeId", f"{where}.chargeId is listed twice")
        check_settings(
            model,
            properties=item.properties,
            ranges=item.graduated_ranges,
            field_prefix=f"{where}.",
        )
        entry: dict[str, Any] = {"chargeId": item.charge_id}
        if item.properties is not None:
            entry["properties"] = item.properties
        if item.graduated_ranges is not None:
            entry["graduatedRanges"] = [
                {
                    "fromValue": r.from_value,
                    "toValue": r.to_value,
                    "perUnitAmount": decimal_to_number(r.per_unit_amount),
                    "flatAmount": decimal_to_number(r.flat_amount or Decimal(0)),
                }
                for r in item.graduated_ranges
            ]
        out.append(entry)
    return out


def _customer_embed(customer: Customer) -> dict[str, Any]:
    return {"id": customer.id, "name": customer.name, "email": customer.email}


def _plan_embed(plan: Plan) -> dict[str, Any]:
    return {"id": plan.id, "name": plan.name, "code": plan.code}


async def create_override(
    session: AsyncSession, *, body: OverrideCreate, clock: Clock
) -> PlanOverride:
    """Validation (400), customer (404), plan (404), the charges of the plan (400), one
    override per (customer, plan) (409)."""
    prices = _prices(body.overridden_prices) if body.overridden_prices is not None else None
    minimum = _e4(body.overridden_minimum_commitment)
    await customers.get_customer(session, body.customer_id)
    await plans.get_plan(session, body.plan_id)
    charges = (
        await _charges(session, body.plan_id, body.overridden_charges)
        if body.overridden_charges is not None
        else None
    )
    taken = await session.scalar(
        select(PlanOverride.id).where(
            PlanOverride.customer_id == body.customer_id, PlanOverride.plan_id == body.plan_id
        )
    )
    if taken is not None:
        raise Conflict("A plan override already exists for this customer and plan")
    now = clock.now()
    item = PlanOverride(
        id=new_id(),
        customer_id=body.customer_id,
        plan_id=body.plan_id,
        overridden_prices=prices,
        overridden_minimum_commitment_e4=minimum,
        overridden_charges=charges,
        metadata_=body.metadata,
        created_at=now,
        updated_at=now,
    )
    session.add(item)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("A plan override already exists for this customer and plan") from exc
    log.info("plan_override.created", override_id=item.id, plan_id=item.plan_id)
    return item


async def _embedded(session: AsyncSession, items: list[PlanOverride]) -> list[Embedded]:
    customer_ids = {i.customer_id for i in items}
    plan_ids = {i.plan_id for i in items}
    found_customers = {
        c.id: c
        for c in await session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
    }
    found_plans = {
        p.id: p for p in await session.scalars(select(Plan).where(Plan.id.in_(plan_ids)))
    }
    return [
        Embedded(
            i,
            _customer_embed(found_customers[i.customer_id]),
            _plan_embed(found_plans[i.plan_id]),
        )
        for i in items
    ]


async def list_overrides(
    session: AsyncSession,
    *,
    customer_id: str | None,
    plan_id: str | None,
    page: int,
    limit: int,
) -> tuple[list[Embedded], int]:
    stmt = select(PlanOverride)
    if customer_id is not None:
        stmt = stmt.where(PlanOverride.customer_id == customer_id)
    if plan_id is not None:
        stmt = stmt.where(PlanOverride.plan_id == plan_id)
    rows, total = await paginate(session, stmt, page, limit)
    return await _embedded(session, rows), total


async def _get(session: AsyncSession, override_id: str) -> PlanOverride:
    item = await session.get(PlanOverride, override_id)
    if item is None:
        raise NotFound("Plan override not found")
    return item


async def get_override(session: AsyncSession, override_id: str) -> Embedded:
    return (await _embedded(session, [await _get(session, override_id)]))[0]


async def update_override(
    session: AsyncSession, override_id: str, *, body: OverridePatch, clock: Clock
) -> PlanOverride:
    sent = body.model_fields_set
    prices = _prices(body.overridden_prices) if body.overridden_prices is not None else None
    minimum = _e4(body.overridden_minimum_commitment)
    item = await _get(session, override_id)
    if "overridden_prices" in sent:
        item.overridden_prices = prices
    if "overridden_minimum_commitment" in sent:
        item.overridden_minimum_commitment_e4 = minimum
    if "overridden_charges" in sent:
        item.overridden_charges = (
            await _charges(session, item.plan_id, body.overridden_charges)
            if body.overridden_charges is not None
            else None
        )
    if "metadata" in sent:
        item.metadata_ = body.metadata
    item.updated_at = clock.now()
    await session.flush()
    log.info("plan_override.updated", override_id=item.id, fields=sorted(sent))
    return item


async def delete_override(session: AsyncSession, override_id: str) -> None:
    item = await _get(session, override_id)
    await session.delete(item)
    await session.flush()
    log.info("plan_override.deleted", override_id=override_id)


# --- what billing reads ---------------------------------------------------------------


async def for_pairs(
    session: AsyncSession, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], PlanOverride]:
    """The overrides of these (customer id, plan id) pairs, by pair."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    customer_ids = sorted({c for c, _ in wanted})
    rows = await session.scalars(
        select(PlanOverride).where(PlanOverride.customer_id.in_(customer_ids))
    )
    chosen = set(wanted)
    return {(o.customer_id, o.plan_id): o for o in rows if (o.customer_id, o.plan_id) in chosen}


def price_minor(item: PlanOverride | None, currency: str) -> int | None:
    """The override's price in ``currency`` (minor units), if it has one."""
    if item is None:
        return None
    for entry in item.overridden_prices or []:
        if str(entry.get("currency", "")).upper() == currency.upper():
            return to_minor(entry.get("amount"), currency, field="amount")
    return None


def minimum_e4(item: PlanOverride | None) -> int | None:
    return item.overridden_minimum_commitment_e4 if item is not None else None


def charge_settings(
    item: PlanOverride | None,
) -> dict[str, tuple[dict[str, Any] | None, tuple[RangeSpec, ...] | None]]:
    """Per charge id: (properties or None, ranges or None) replacing the charge's."""
    out: dict[str, tuple[dict[str, Any] | None, tuple[RangeSpec, ...] | None]] = {}
    for entry in (item.overridden_charges if item is not None else None) or []:
        ranges = entry.get("graduatedRanges")
        specs = (
            tuple(
                RangeSpec(
                    from_value=int(r["fromValue"]),
                    to_value=None if r.get("toValue") is None else int(r["toValue"]),
                    per_unit=parse_amount(r["perUnitAmount"], field="perUnitAmount"),
                    flat=parse_amount(r.get("flatAmount", 0), field="flatAmount"),
                )
                for r in ranges
            )
            if ranges is not None
            else None
        )
        out[str(entry["chargeId"])] = (entry.get("properties"), specs)
    return out
