"""Add-ons (contract add-ons.md): the catalogue with per-currency prices, applying one to
a customer (a pending one-time charge) and removing a pending one.

Amounts are minor units of their currency; more decimals than the currency has are 400.
An applied add-on without ``amount`` takes the add-on's price in ``currency`` (400 naming
``amount`` when it has none).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import Select, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.add_ons.models import AddOn, AddOnPrice, AppliedAddOn
from novabilling.add_ons.schemas import AddOnApply, AddOnCreate, AddOnPatch, PriceIn
from novabilling.customers import service as customers
from novabilling.errors import BusinessRule, FieldRule, Invalid, NotFound
from novabilling.kit import money
from novabilling.kit.clock import Clock
from novabilling.kit.ids import new_id
from novabilling.kit.pagination import newest_first, paginate
from novabilling.subscriptions.models import Subscription

__all__ = [
    "apply_add_on",
    "create_add_on",
    "delete_add_on",
    "get_add_on",
    "list_add_ons",
    "list_applied",
    "remove_applied",
    "update_add_on",
]

log = structlog.get_logger(__name__)

TAKEN = "An add-on with this code already exists"
NO_PRICE = "At least one price is required"


async def _prices_of(session: AsyncSession, ids: list[str]) -> dict[str, list[AddOnPrice]]:
    out: dict[str, list[AddOnPrice]] = {i: [] for i in ids}
    if ids:
        rows = await session.scalars(
            select(AddOnPrice)
            .where(AddOnPrice.add_on_id.in_(ids))
            .order_by(AddOnPrice.currency, AddOnPrice.id)
        )
        for price in rows:
            out[price.add_on_id].append(price)
    return out


async def get_add_on(session: AsyncSession, add_on_id: str) -> tuple[AddOn, list[AddOnPrice]]:
    add_on = await session.get(AddOn, add_on_id)
    if add_on is None:
        raise NotFound("Add-on not found")
    return add_on, (await _prices_of(session, [add_on.id]))[add_on.id]


def _price_rows(add_on_id: str, prices: list[PriceIn]) -> list[dict[str, Any]]:
    if not prices:
        raise FieldRule("prices", NO_PRICE)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, price in enumerate(prices):
        field = f"prices.{n}.currency"
        currency = money.normalize_code(price.currency, field=field)
        money.exponent(currency, field=field)
        if currency in seen:
            raise Invalid(field, f"{field} {currency} has a price already")
        seen.add(currency)
        minor = money.to_minor(
            price.amount, currency, field=f"prices.{n}.amount", currency_field=field
        )
        rows.append(
            {"id": new_id(), "add_on_id": add_on_id, "currency": currency, "amount_minor": minor}
        )
    return rows


async def create_add_on(
    session: AsyncSession, *, body: AddOnCreate, clock: Clock
) -> tuple[AddOn, list[AddOnPrice]]:
    """validation -> code taken (400) -> no price (400); two prices in one currency 400."""
    code = body.code.lower()
    if await session.scalar(select(AddOn.id).where(AddOn.code == code)) is not None:
        raise FieldRule("code", TAKEN)
    now = clock.now()
    add_on = AddOn(
        id=new_id(),
        name=body.name,
        code=code,
        description=body.description,
        invoice_display_name=body.invoice_display_name,
        created_at=body.created_at or now,
        updated_at=now,
    )
    rows = _price_rows(add_on.id, body.prices)
    try:
        async with session.begin_nested():
            session.add(add_on)
    except IntegrityError as exc:
        raise FieldRule("code", TAKEN) from exc
    await session.execute(insert(AddOnPrice), rows)
    log.info("add_on.created", add_on_id=add_on.id, code=code)
    return await get_add_on(session, add_on.id)


async def list_add_ons(
    session: AsyncSession, *, page: int, limit: int
) -> tuple[list[tuple[AddOn, list[AddOnPrice]]], int]:
    rows, total = await paginate(session, select(AddOn), page, limit, *newest_first(AddOn))
    prices = await _prices_of(session, [a.id for a in rows])
    return [(a, prices[a.id]) for a in rows], total


async def update_add_on(
    session: AsyncSession, add_on_id: str, *, body: AddOnPatch, clock: Clock
) -> tuple[AddOn, list[AddOnPrice]]:
    """``prices`` replaces the whole set (``[]`` is 400, as on create)."""
    for name in ("name", "prices"):
        if name in body.model_fields_set and getattr(body, name) is None:
            raise Invalid(name, f"{name} should not be null")
    add_on, _ = await get_add_on(session, add_on_id)
    rows = _price_rows(add_on.id, body.prices) if body.prices is not None else None
    for name in ("name", "description", "invoice_display_name"):
        if name in body.model_fields_set:
            setattr(add_on, name, getattr(body, name))
    add_on.updated_at = clock.now()
    await session.flush()
    if rows is not None:
        await session.execute(delete(AddOnPrice).where(AddOnPrice.add_on_id == add_on.id))
        await session.execute(insert(AddOnPrice), rows)
    log.info("add_on.updated", add_on_id=add_on.id, fields=sorted(body.model_fields_set))
    return await get_add_on(session, add_on.id)


async def delete_add_on(session: AsyncSession, add_on_id: str) -> None:
    """The add-on and its prices; applied add-ons stay."""
    add_on, _ = await get_add_on(session, add_on_id)
    await session.execute(delete(AddOnPrice).where(AddOnPrice.add_on_id == add_on.id))
    await session.delete(add_on)
    await session.flush()
    log.info("add_on.deleted", add_on_id=add_on_id)


async def apply_add_on(session: AsyncSession, *, body: AddOnApply, clock: Clock) -> AppliedAddOn:
    """validation -> add-on (404) -> customer (404) -> subscription (404) -> another
    customer's subscription (400); no ``amount``: the add-on's price in ``currency``."""
    currency = money.normalize_code(body.currency)
    money.exponent(currency)
    add_on, prices = await get_add_on(session, body.add_on_id)
    customer = await customers.get_customer(session, body.customer_id)
    if body.subscription_id is not None:
        sub = await session.get(Subscription, body.subscription_id)
        if sub is None:
            raise NotFound("Subscription not found")
        if sub.customer_id != customer.id:
            raise BusinessRule("Subscription does not belong to this customer")
    if body.amount is not None:
        minor = money.to_minor(body.amount, currency, field="amount")
    else:
        price = next((p for p in prices if p.currency == currency), None)
        if price is None:
            raise Invalid("amount", f"amount is required: the add-on has no {currency} price")
        minor = price.amount_minor
    applied = AppliedAddOn(
        id=new_id(),
        add_on_id=add_on.id,
        customer_id=customer.id,
        subscription_id=body.subscription_id,
        amount_minor=minor,
        currency=currency,
        invoice_id=None,
        created_at=clock.now(),
    )
    session.add(applied)
    await session.flush()
    log.info("add_on.applied", add_on_id=add_on.id, customer_id=customer.id)
    return applied


async def list_applied(
    session: AsyncSession,
    *,
    page: int,
    limit: int,
    customer_id: str | None,
    invoiced: str | None,
) -> tuple[list[AppliedAddOn], int]:
    """``invoiced``: ``true`` -> billed only, any other value -> pending only."""
    stmt: Select[Any] = select(AppliedAddOn)
    if customer_id is not None:
        stmt = stmt.where(AppliedAddOn.customer_id == customer_id)
    if invoiced is not None:
        column = AppliedAddOn.invoice_id
        stmt = stmt.where(column.is_not(None) if invoiced == "true" else column.is_(None))
    return await paginate(session, stmt, page, limit, *newest_first(AppliedAddOn))


async def remove_applied(session: AsyncSession, applied_id: str) -> None:
    applied = await session.scalar(
        select(AppliedAddOn).where(AppliedAddOn.id == applied_id).with_for_update()
    )
    if applied is None:
        raise NotFound("Applied add-on not found")
    if applied.invoice_id is not None:
        raise BusinessRule("Cannot remove an add-on that has already been invoiced")
    await session.delete(applied)
    await session.flush()
    log.info("add_on.removed", applied_add_on_id=applied_id)
