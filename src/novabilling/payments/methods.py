"""Saved payment methods (contract payment-methods.md and the customer sub-routes of
customers.md): create, list, get, set default, delete; and the checks of a subscription's
``paymentMethodId`` (``usable_for``).

Tokens are sealed like provider credentials (aad = tenant id) and returned masked.
(provider, token) is unique within the tenant (``token_hash``). A customer has at most one
default method: the first one saved is; deleting the default hands it to the newest
remaining one. A method used by an ACTIVE, TRIALING or PAST_DUE subscription cannot be
deleted (400, nothing changed); other subscriptions that pointed at it lose it.
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.errors import BusinessRule, NotFound
from novabilling.kit.clock import Clock
from novabilling.kit.crypto import Encryptor, sha256_hex
from novabilling.payments.method_schemas import PaymentMethodCreate, mask
from novabilling.payments.models import PaymentMethod
from novabilling.subscriptions.models import Subscription

__all__ = [
    "IN_USE",
    "create_method",
    "delete_method",
    "get_method",
    "list_for_customer",
    "set_default",
    "token_digest",
    "usable_for",
]

log = structlog.get_logger(__name__)

IN_USE = ("ACTIVE", "TRIALING", "PAST_DUE")
DUPLICATE = "Payment method already exists"


def token_digest(provider: str, token: str) -> str:
    return sha256_hex(f"{provider.lower()}:{token}")


async def create_method(
    session: AsyncSession,
    *,
    tenant_id: str,
    body: PaymentMethodCreate,
    encryptor: Encryptor,
    clock: Clock,
) -> PaymentMethod:
    """Checks: validation -> customer 404 -> (provider, token) exists 400 (Quirk)."""
    if await session.get(Customer, body.customer_id) is None:
        raise NotFound(f"Customer {body.customer_id} not found")
    digest = token_digest(body.provider, body.token_id)
    if await session.scalar(select(PaymentMethod.id).where(PaymentMethod.token_hash == digest)):
        raise BusinessRule(DUPLICATE)
    has_one = await session.scalar(
        select(PaymentMethod.id).where(PaymentMethod.customer_id == body.customer_id).limit(1)
    )
    now = clock.now()
    method = PaymentMethod(
        customer_id=body.customer_id,
        provider=body.provider,
        type=body.type,
        token_encrypted=encryptor.encrypt(body.token_id, aad=tenant_id.encode()),
        token_hash=digest,
        token_hint=mask(body.token_id),
        last4=body.last4,
        brand=body.brand,
        cardholder_name=body.cardholder_name,
        country=body.country,
        exp_month=body.exp_month,
        exp_year=body.exp_year,
        provider_customer_ref=body.provider_customer_id,
        is_default=has_one is None,
        created_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(method)
    except IntegrityError:  # the same token saved concurrently
        raise BusinessRule(DUPLICATE) from None
    log.info("payment_method.created", customer_id=body.customer_id, provider=body.provider)
    return method


async def list_for_customer(
    session: AsyncSession, customer_id: str, *, default_first: bool = True
) -> list[PaymentMethod]:
    """Default first (unless ``default_first`` is false), then newest first."""
    order: list[Any] = [PaymentMethod.created_at.desc(), PaymentMethod.id.desc()]
    if default_first:
        order.insert(0, PaymentMethod.is_default.desc())
    rows = await session.scalars(
        select(PaymentMethod).where(PaymentMethod.customer_id == customer_id).order_by(*order)
    )
    return list(rows.all())


async def get_method(
    session: AsyncSession, method_id: str, *, lock: bool = False, message: str | None = None
) -> PaymentMethod:
    stmt = select(PaymentMethod).where(PaymentMethod.id == method_id)
    if lock:
        stmt = stmt.with_for_update()
    method = await session.scalar(stmt)
    if method is None:
        raise NotFound(message or f"Payment method {method_id} not found")
    return method


async def _lock_customer_methods(session: AsyncSession, customer_id: str) -> None:
    """Serialise default changes of one customer (PostgreSQL row locks)."""
    await session.execute(
        select(PaymentMethod.id).where(PaymentMethod.customer_id == customer_id).with_for_update()
    )


async def set_default(session: AsyncSession, method_id: str, *, clock: Clock) -> PaymentMethod:
    method = await get_method(session, method_id)
    await _lock_customer_methods(session, method.customer_id)
    now = clock.now()
    await session.execute(
        update(PaymentMethod)
        .where(PaymentMethod.customer_id == method.customer_id, PaymentMethod.id != method.id)
        .values(is_default=False)
        .execution_options(synchronize_session=False)
    )
    method.is_default = True
    method.updated_at = now
    await session.flush()
    log.info("payment_method.default_set", payment_method_id=method.id)
    return method


async def delete_method(
    session: AsyncSession, method_id: str, *, clock: Clock, customer_id: str | None = None
) -> None:
    """``customer_id`` (the customer sub-route): a method of another customer is a 404."""
    method = await get_method(session, method_id, lock=True)
    if customer_id is not None and method.customer_id != customer_id:
        raise NotFound(f"Payment method {method_id} not found")
    using = await session.scalar(
        select(func.count())
        .select_from(Subscription)
        .where(Subscription.payment_method_id == method.id, Subscription.status.in_(IN_USE))
    )
    if using:
        raise BusinessRule(
            f"Cannot delete payment method: {using} active subscription(s) are using it"
        )
    now = clock.now()
    await session.execute(
        update(Subscription)
        .where(Subscription.payment_method_id == method.id)
        .values(payment_method_id=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    was_default = method.is_default
    await session.delete(method)
    await session.flush()
    if was_default:
        newest = await session.scalar(
            select(PaymentMethod)
            .where(PaymentMethod.customer_id == method.customer_id)
            .order_by(PaymentMethod.created_at.desc(), PaymentMethod.id.desc())
            .limit(1)
        )
        if newest is not None:
            newest.is_default = True
            newest.updated_at = now
            await session.flush()
    log.info("payment_method.deleted", payment_method_id=method_id)


async def usable_for(session: AsyncSession, method_id: str, *, customer_id: str) -> None:
    """A subscription's ``paymentMethodId``: missing 404, another customer's 400."""
    method = await session.get(PaymentMethod, method_id)
    if method is None:
        raise NotFound("Payment method not found")
    if method.customer_id != customer_id:
        raise BusinessRule("Payment method belongs to another customer")
