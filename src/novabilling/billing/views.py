"""Reads that join domains (the router of each calls one function here):

- a plan with ``_count.subscriptions`` (plans.md);
- a subscription with its 10 newest invoices (subscriptions.md, GET by id);
- an invoice with its customer, subscription and payments (invoices.md, GET by id).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.invoices import schemas as invoice_schemas
from novabilling.invoices import service as invoices
from novabilling.payments import service as payments
from novabilling.plans import schemas as plan_schemas
from novabilling.plans import service as plans
from novabilling.subscriptions import schemas as subscription_schemas
from novabilling.subscriptions import service as subscriptions
from novabilling.subscriptions.models import Subscription

RECENT_INVOICES = 10


async def plan_detail(session: AsyncSession, plan_id: str) -> dict[str, Any]:
    plan = await plans.get_plan(session, plan_id)
    prices = await plans.prices_of(session, [plan.id])
    out = plan_schemas.plan_out(plan, prices[plan.id])
    out["_count"] = {"subscriptions": await subscriptions.count_for_plan(session, plan.id)}
    return out


async def subscription_detail(session: AsyncSession, subscription_id: str) -> dict[str, Any]:
    view = await subscriptions.get_subscription(session, subscription_id)
    view.invoices = await invoices.recent_for_subscription(
        session, subscription_id=view.sub.id, limit=RECENT_INVOICES
    )
    return subscription_schemas.view_out(view)


async def invoice_detail(session: AsyncSession, invoice_id: str) -> dict[str, Any]:
    """Invoice + customer + subscription (object or null) + payments (oldest first)."""
    invoice, customer = await invoices.with_customer(
        session, await invoices.get_invoice(session, invoice_id)
    )
    subscription = None
    if invoice.subscription_id is not None:
        sub = await session.scalar(
            select(Subscription).where(Subscription.id == invoice.subscription_id)
        )
        subscription = subscription_schemas.subscription_out(sub) if sub is not None else None
    return invoice_schemas.invoice_detail(
        invoice,
        customer,
        subscription=subscription,
        payments=await payments.list_for_invoice(session, invoice.id),
    )
