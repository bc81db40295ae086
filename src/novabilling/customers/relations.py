"""What customers read from (and delete in) the domains built on top of them.

The subscriptions, invoices and payments domains land after customers. Until a domain's
module exists, its functions here answer honestly "nothing yet" (``[]``, ``0``, ``{}``);
they never guess at tables that are not there. Owners of those domains fill this file in
(or provide the hook named below in their ``service`` module, which is called when present):

| function here                   | hook in ``novabilling.<domain>.service``                   |
|---------------------------------|------------------------------------------------------------|
| ``subscriptions_for_customer``  | ``subscriptions.list_for_customer(session, customer_id)``  |
| ``invoices_for_customer``       | ``invoices.list_for_customer(session, customer_id, limit)``|
| ``payments_for_customer``       | ``payments.list_for_customer(session, customer_id)``       |
| ``delete_for_customer``         | ``<domain>.delete_for_customer(session, customer_id)``     |

``list_for_customer`` hooks return wire dicts in the contract's order (newest first).
Counts and sums query the models directly once their module exists
(``Subscription.customer_id/status``, ``Invoice.customer_id/status/total_minor/currency``;
invoices listed with ``invoices.schemas.invoice_out`` until a hook exists).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from types import ModuleType
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.kit.money import to_wire

Wire = list[dict[str, Any]]


def _optional(module: str) -> ModuleType | None:
    """The module, or None when it (or its package) does not exist yet."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise


def _hook(domain: str, name: str) -> Callable[..., Awaitable[Any]] | None:
    module = _optional(f"novabilling.{domain}.service")
    fn = getattr(module, name, None) if module is not None else None
    return cast("Callable[..., Awaitable[Any]] | None", fn)


async def subscriptions_for_customer(session: AsyncSession, customer_id: str) -> Wire:
    """Subscription objects with embedded ``plan`` (no prices), newest first."""
    fn = _hook("subscriptions", "list_for_customer")
    return list(await fn(session, customer_id)) if fn else []


async def invoices_for_customer(
    session: AsyncSession, customer_id: str, *, limit: int | None = None
) -> Wire:
    """Invoice objects (no embeds), newest first; at most ``limit`` when given."""
    fn = _hook("invoices", "list_for_customer")
    if fn is not None:
        return list(await fn(session, customer_id, limit))
    models = _optional("novabilling.invoices.models")
    schemas = _optional("novabilling.invoices.schemas")
    if models is None or schemas is None:
        return []
    inv: Any = models.Invoice
    stmt = (
        select(inv)
        .where(inv.customer_id == customer_id)
        .order_by(inv.created_at.desc(), inv.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return [schemas.invoice_out(invoice) for invoice in await session.scalars(stmt)]


async def payments_for_customer(session: AsyncSession, customer_id: str) -> Wire:
    """Payment objects of all the customer's invoices, newest invoice first."""
    fn = _hook("payments", "list_for_customer")
    return list(await fn(session, customer_id)) if fn else []


async def active_subscription_counts(
    session: AsyncSession, customer_ids: list[str]
) -> dict[str, int]:
    """ACTIVE subscriptions per customer id (missing ids: 0)."""
    models = _optional("novabilling.subscriptions.models")
    if models is None or not customer_ids:
        return {}
    sub: Any = models.Subscription
    rows = await session.execute(
        select(sub.customer_id, func.count())
        .where(sub.customer_id.in_(customer_ids), sub.status == "ACTIVE")
        .group_by(sub.customer_id)
    )
    return {cid: int(n) for cid, n in rows.all()}


async def total_spent(session: AsyncSession, customer_ids: list[str]) -> dict[str, Decimal]:
    """Sum of PAID invoice amounts per customer in major units, currencies mixed
    (contract: a JSON number). Missing ids: 0."""
    models = _optional("novabilling.invoices.models")
    if models is None or not customer_ids:
        return {}
    inv: Any = models.Invoice
    rows = await session.execute(
        select(inv.customer_id, inv.currency, func.sum(inv.total_minor))
        .where(inv.customer_id.in_(customer_ids), inv.status == "PAID")
        .group_by(inv.customer_id, inv.currency)
    )
    out: dict[str, Decimal] = {}
    for cid, currency, minor in rows.all():
        out[cid] = out.get(cid, Decimal(0)) + Decimal(to_wire(int(minor or 0), currency))
    return out


async def delete_blocker(session: AsyncSession, customer_id: str) -> str | None:
    """Why the customer cannot be deleted, or None.

    ACTIVE subscriptions block (contract). Invoices are kept by a RESTRICT foreign key and
    the invoices domain has no ``delete_for_customer`` hook, so a customer with invoices
    is refused with a 400 instead of failing on the constraint (contract "Improve")."""
    if (await active_subscription_counts(session, [customer_id])).get(customer_id):
        return "Cannot delete customer with active subscriptions"
    models = _optional("novabilling.invoices.models")
    if models is not None and _hook("invoices", "delete_for_customer") is None:
        inv: Any = models.Invoice
        found = await session.scalar(select(inv.id).where(inv.customer_id == customer_id).limit(1))
        if found is not None:
            return "Cannot delete customer with invoices"
    return None


async def delete_for_customer(session: AsyncSession, customer_id: str) -> None:
    """Delete what goes with the customer (payments, invoices, subscriptions, ...), in
    dependency order, through each domain's hook when present."""
    for domain in ("payments", "invoices", "subscriptions", "wallets"):
        fn = _hook(domain, "delete_for_customer")
        if fn is not None:
            await fn(session, customer_id)
