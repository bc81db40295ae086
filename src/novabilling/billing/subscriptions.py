"""Subscription requests and what they mean for invoices, in the request's transaction.

``subscriptions.service`` changes the subscription itself (state, log, webhook, e-mail);
this module adds the billing side, so a subscription and its invoices never disagree:

- create: an ACTIVE IN_ADVANCE subscription without a trial gets its first invoice in the
  same transaction (invoice-composition.md: "subscription start, IN_ADVANCE plan"),
  unless it is back-dated so far that its first period is past the catch-up window: then
  the billing tick bills its current period only (``renewals.CATCH_UP_WINDOW``);
- cancel ``now``: a FINALIZED ``ORDER_CHANGE`` credit note for the unused part of the
  period against the latest invoice (subscriptions.md), when it has one;
- change plan (upgrade): proration credit only for a period that was invoiced, plus the
  contract's credit note for the unused old price;
- resume: a period that ended while paused is skipped; what was in use is billed once
  (IN_ARREARS: the period in use when it was paused; IN_ADVANCE: the period it resumes in).

A subscription of a customer on a test clock does all of this at the clock's time.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.billing.renewals import IN_ADVANCE, TickContext, far_behind, issue_period_invoice
from novabilling.billing.test_clocks import clock_for_customer, clock_for_subscription
from novabilling.errors import Invalid
from novabilling.invoices import credit_notes
from novabilling.invoices.models import CANCELED, Invoice
from novabilling.kit.clock import Clock
from novabilling.payments import methods
from novabilling.plans.models import Plan
from novabilling.subscriptions import service as subscriptions
from novabilling.subscriptions.models import Subscription
from novabilling.subscriptions.schemas import (
    CancelIn,
    ChangePlanIn,
    SubscriptionCreate,
    SubscriptionPatch,
    SubscriptionView,
)
from novabilling.tenancy.profiles import TenantProfile


def _context(tenant: TenantProfile, clock: Clock) -> TickContext:
    return TickContext(tenant=tenant, now=clock.now(), clock=clock)


async def _period_invoiced(session: AsyncSession, sub: Subscription) -> bool:
    found = await session.scalar(
        select(Invoice.id).where(
            Invoice.subscription_id == sub.id,
            Invoice.period_start == sub.current_period_start,
            Invoice.status != CANCELED,
        )
    )
    return found is not None


async def create(
    session: AsyncSession, *, data: SubscriptionCreate, tenant: TenantProfile, clock: Clock
) -> SubscriptionView:
    clock = await clock_for_customer(session, data.customer_id, clock)
    view = await subscriptions.create_subscription(
        session, data=data, tenant_id=tenant.id, clock=clock
    )
    sub = view.sub
    if data.payment_method_id is not None:  # after the endpoint's own checks (contract)
        await methods.usable_for(session, data.payment_method_id, customer_id=sub.customer_id)
        sub.payment_method_id = data.payment_method_id
        await session.flush()
    if (
        sub.status == "ACTIVE"
        and sub.billing_timing == IN_ADVANCE
        and sub.trial_end is None
        and sub.current_period_end > sub.current_period_start
        and not far_behind(tenant, sub.current_period_end, clock.now())
    ):
        await issue_period_invoice(
            session,
            _context(tenant, clock),
            sub,
            period=(sub.current_period_start, sub.current_period_end),
            amount_minor=sub.amount_minor,
            plan=view.plan,
        )
    return view


async def update(
    session: AsyncSession, subscription_id: str, *, body: SubscriptionPatch, clock: Clock
) -> SubscriptionView:
    """PATCH: ``metadata`` and/or ``paymentMethodId`` (missing 404, another customer's
    400, null clears); nothing is changed when a check fails."""
    sent = body.model_fields_set
    if not sent:
        raise Invalid("metadata", "metadata or paymentMethodId must be sent")
    sub = await subscriptions.get_for_update(session, subscription_id)
    if "payment_method_id" in sent and body.payment_method_id is not None:
        await methods.usable_for(session, body.payment_method_id, customer_id=sub.customer_id)
    view = None
    if "metadata" in sent:
        view = await subscriptions.update_metadata(
            session, subscription_id, metadata=body.metadata, clock=clock
        )
    if "payment_method_id" in sent:
        view = await subscriptions.set_payment_method(
            session, sub, body.payment_method_id, clock=clock
        )
    assert view is not None
    return view


async def cancel(
    session: AsyncSession,
    subscription_id: str,
    *,
    body: CancelIn,
    tenant: TenantProfile,
    clock: Clock,
) -> SubscriptionView:
    clock = await clock_for_subscription(session, subscription_id, clock)
    before = await subscriptions.get_for_update(session, subscription_id)
    period = (before.current_period_start, before.current_period_end)
    price, timing, currency = before.amount_minor, before.billing_timing, before.currency
    plan = await session.get(Plan, before.plan_id)
    view = await subscriptions.cancel(
        session, subscription_id, body=body, tenant_id=tenant.id, clock=clock
    )
    if body.cancel_at == "now" and timing == IN_ADVANCE:
        await credit_notes.issue_order_change(
            session,
            subscription_id=subscription_id,
            price_minor=price,
            currency=currency,
            period=period,
            at=clock.now(),
            metadata={"type": "cancellation_proration", "planName": plan.name if plan else ""},
        )
    return view


async def change_plan(
    session: AsyncSession,
    subscription_id: str,
    *,
    body: ChangePlanIn,
    tenant: TenantProfile,
    clock: Clock,
) -> SubscriptionView:
    clock = await clock_for_subscription(session, subscription_id, clock)
    sub = await subscriptions.get_for_update(session, subscription_id)
    old_plan = await session.get(Plan, sub.plan_id)
    invoiced = await _period_invoiced(session, sub)
    view, proration = await subscriptions.change_plan(
        session,
        subscription_id,
        body=body,
        tenant_id=tenant.id,
        clock=clock,
        period_invoiced=invoiced,
    )
    if proration is not None and invoiced and proration.unused_minor > 0:
        await credit_notes.issue_order_change(
            session,
            subscription_id=subscription_id,
            price_minor=proration.price_minor,
            currency=sub.currency,
            period=proration.period,
            at=proration.cut,
            metadata={
                "type": "proration_credit",
                "oldPlanId": old_plan.id if old_plan else None,
                "oldPlanName": old_plan.name if old_plan else "",
                "creditedOnNextInvoice": True,
            },
        )
    return view


async def resume(
    session: AsyncSession, subscription_id: str, *, tenant: TenantProfile, clock: Clock
) -> SubscriptionView:
    clock = await clock_for_subscription(session, subscription_id, clock)
    view, skipped = await subscriptions.resume(
        session, subscription_id, tenant_id=tenant.id, clock=clock
    )
    if skipped is None:
        return view
    sub = view.sub
    ctx = _context(tenant, clock)
    period = skipped.current if sub.billing_timing == IN_ADVANCE else skipped.ended
    try:
        async with session.begin_nested():  # a period already billed stays billed once
            await issue_period_invoice(
                session, ctx, sub, period=period, amount_minor=sub.amount_minor, plan=view.plan
            )
    except IntegrityError:
        pass
    return view


async def pause(
    session: AsyncSession, subscription_id: str, *, tenant_id: str, clock: Clock
) -> SubscriptionView:
    clock = await clock_for_subscription(session, subscription_id, clock)
    return await subscriptions.pause(session, subscription_id, tenant_id=tenant_id, clock=clock)
