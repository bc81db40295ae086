"""Subscriptions (contract subscriptions.md): the subscription's own side of each request
use case (state, transition log, outbound webhook, customer e-mail) and the queries the
billing engine and other domains call. What a change means for invoices (the first
invoice, credit notes, periods skipped while paused) is the billing engine's part
(``billing.subscriptions``), which calls these in the same transaction.

For the billing engine (keyword-only after ``session``, flush never commit):
``due_for_renewal``, ``due_for_retry``, ``due_action``, ``advance_period``,
``mark_past_due``, ``reactivate``, ``cancel_now``, ``record_event``, ``get_for_update``,
``pending_items``. For customers/plans/analytics: ``count_active``,
``active_count_of``, ``list_for_customer`` (wire dicts), ``lock_for_customer``,
``delete_for_customer`` (called by ``billing.accounts``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.errors import Conflict, Invalid, NotFound
from novabilling.kit.clock import Clock
from novabilling.kit.pagination import paginate
from novabilling.kit.periods import period_end
from novabilling.notifications import jobs as emails
from novabilling.plans import service as plans_service
from novabilling.plans.models import Plan
from novabilling.subscriptions import lifecycle, outbound_events
from novabilling.subscriptions.lifecycle import (
    PENDING_PLAN_KEY,
    advance_period,
    cancel_now,
    due_action,
    mark_past_due,
    reactivate,
    record_event,
)
from novabilling.subscriptions.models import PendingInvoiceItem, Subscription, SubscriptionEvent
from novabilling.subscriptions.prorations import PlanTarget
from novabilling.subscriptions.repository import (
    active_count_of,
    count_active,
    count_for_plan,
    due_for_renewal,
    due_for_retry,
    pending_items,
    subscriptions_of_customer,
)
from novabilling.subscriptions.schemas import (
    CancelIn,
    ChangePlanIn,
    SubscriptionCreate,
    SubscriptionView,
    with_plan,
)
from novabilling.subscriptions.transitions import Action, Status, check, parse_status

__all__ = [
    "active_count_of",
    "advance_period",
    "cancel",
    "cancel_now",
    "change_plan",
    "count_active",
    "count_for_plan",
    "create_subscription",
    "delete_for_customer",
    "due_action",
    "due_for_renewal",
    "due_for_retry",
    "get_for_update",
    "get_subscription",
    "list_for_customer",
    "list_subscriptions",
    "lock_for_customer",
    "mark_past_due",
    "pause",
    "pending_items",
    "subscriptions_of_customer",
    "reactivate",
    "record_event",
    "resume",
    "update_metadata",
]

log = structlog.get_logger(__name__)


# --- loading -------------------------------------------------------------------------


async def get_for_update(session: AsyncSession, subscription_id: str) -> Subscription:
    """The subscription, row-locked on PostgreSQL, or ``NotFound``."""
    sub = await session.scalar(
        select(Subscription).where(Subscription.id == subscription_id).with_for_update()
    )
    if sub is None:
        raise NotFound("Subscription not found")
    return sub


async def _view(session: AsyncSession, sub: Subscription, *, prices: bool) -> SubscriptionView:
    views = await _views(session, [sub], prices=prices)
    return views[0]


async def _views(
    session: AsyncSession, subs: list[Subscription], *, prices: bool
) -> list[SubscriptionView]:
    customer_ids = list({s.customer_id for s in subs})
    plan_ids = list({s.plan_id for s in subs})
    customers = {
        c.id: c
        for c in await session.scalars(select(Customer).where(Customer.id.in_(customer_ids)))
    }
    plans = {p.id: p for p in await session.scalars(select(Plan).where(Plan.id.in_(plan_ids)))}
    price_map = await plans_service.prices_of(session, plan_ids) if prices else {}
    return [
        SubscriptionView(
            sub=s,
            customer=customers[s.customer_id],
            plan=plans[s.plan_id],
            prices=price_map.get(s.plan_id) if prices else None,
        )
        for s in subs
    ]


async def _plan_target(
    session: AsyncSession, plan_id: str, currency: str, *, field: str
) -> tuple[Plan, PlanTarget]:
    """An active plan with a price in ``currency`` or ``Invalid`` (400, not 404)."""
    plan = await session.get(Plan, plan_id)
    if plan is None or not plan.is_active:
        state = "does not exist" if plan is None else "is not active"
        raise Invalid(field, f"{field} {plan_id} {state}")
    price = await plans_service.price_for(session, plan.id, currency)
    if price is None:
        raise Invalid("currency", f"currency {currency} has no price on plan {plan.code}")
    target = PlanTarget(plan.id, plan.name, price.amount_minor, plan.billing_interval)
    return plan, target


# --- request use cases ---------------------------------------------------------------


def _initial_period(
    data: SubscriptionCreate, interval: str, start: datetime
) -> tuple[datetime, datetime]:
    """(anchor, current period end): the anchor is ``start`` unless an imported
    ``currentPeriodEnd`` is off its schedule, then the boundary itself."""
    natural = period_end(start, interval, 1)
    end = data.current_period_end or natural
    if end <= start:
        raise Invalid("currentPeriodEnd", "currentPeriodEnd must be after the start date")
    return (start if end == natural else end), end


async def create_subscription(
    session: AsyncSession, *, data: SubscriptionCreate, tenant_id: str, clock: Clock
) -> SubscriptionView:
    """Outbound ``subscription.created`` (as every request use case below: its webhook is
    queued in the request's unit of work, ``outbound_events``)."""
    customer = await session.get(Customer, data.customer_id)
    if customer is None:
        raise NotFound("Customer not found")
    currency = data.currency.upper()
    plan, target = await _plan_target(session, data.plan_id, currency, field="planId")
    now = clock.now()
    start = data.start_date or now
    anchor, end = _initial_period(data, target.interval, start)
    status, trial_start, trial_end = Status.ACTIVE, None, None
    if data.trial_days:
        status, trial_start = Status.TRIALING, start
        trial_end = end = anchor = start + timedelta(days=data.trial_days)
    status = data.status or status
    canceled_at = (data.canceled_at or now) if status is Status.CANCELED else None
    sub = Subscription(
        customer_id=customer.id,
        plan_id=plan.id,
        external_id=data.external_id,
        status=status.value,
        currency=currency,
        amount_minor=target.amount_minor,
        billing_interval=target.interval,
        billing_timing=plan.billing_timing,
        billing_anchor=anchor,
        current_period_start=start,
        current_period_end=end,
        trial_start=trial_start,
        trial_end=trial_end,
        canceled_at=canceled_at,
        ended_at=canceled_at,
        meta=data.metadata,
        started_at=start,
        created_at=data.created_at or now,
        updated_at=now,
    )
    if data.external_id and await session.scalar(
        select(Subscription.id).where(Subscription.external_id == data.external_id)
    ):
        raise Conflict("A subscription with this externalId already exists")
    session.add(sub)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict("A subscription with this externalId already exists") from exc
    created = await record_event(session, sub, from_status=None, reason="created", at=now)
    _announce(tenant_id, sub, created, clock=clock)
    return SubscriptionView(sub=sub, customer=customer, plan=plan)


# transition reason -> the customer e-mail it sends
_EMAILS = {
    "created": emails.SUBSCRIPTION_CREATED,
    "canceled": emails.SUBSCRIPTION_CANCELED,
    "paused": emails.SUBSCRIPTION_PAUSED,
    "resumed": emails.SUBSCRIPTION_RESUMED,
    "plan_changed": emails.SUBSCRIPTION_PLAN_CHANGED,
    "plan_change_scheduled": emails.SUBSCRIPTION_PLAN_CHANGED,
}


def _announce(
    tenant_id: str, sub: Subscription, transition: SubscriptionEvent, *, clock: Clock
) -> None:
    """The outbound webhook and the customer e-mail of a recorded transition."""
    outbound_events.publish(tenant_id, sub, transition, clock=clock)
    name = _EMAILS.get(transition.reason)
    if name == emails.SUBSCRIPTION_CREATED and sub.status == Status.TRIALING:
        name = emails.TRIAL_STARTED
    if name is not None:
        emails.queue(tenant_id, name, {"subscription_id": sub.id}, key=f"{sub.id}:{transition.id}")


async def get_subscription(session: AsyncSession, subscription_id: str) -> SubscriptionView:
    """Subscription + customer + plan with prices."""
    sub = await session.get(Subscription, subscription_id)
    if sub is None:
        raise NotFound("Subscription not found")
    return await _view(session, sub, prices=True)


async def list_subscriptions(
    session: AsyncSession,
    *,
    page: int,
    limit: int,
    status: str | None = None,
    customer_id: str | None = None,
    plan_id: str | None = None,
) -> tuple[list[SubscriptionView], int]:
    stmt = select(Subscription)
    if status is not None:
        parsed = parse_status(status)
        if parsed is None:
            allowed = ", ".join(s.value for s in Status)
            raise Invalid("status", f"status must be one of the following values: {allowed}")
        stmt = stmt.where(Subscription.status == parsed.value)
    if customer_id is not None:
        stmt = stmt.where(Subscription.customer_id == customer_id)
    if plan_id is not None:
        stmt = stmt.where(Subscription.plan_id == plan_id)
    rows, total = await paginate(session, stmt, page, limit)
    # paginate yields Row tuples for a multi-column entity select; accept both shapes.
    subs = [r if isinstance(r, Subscription) else r[0] for r in rows]
    return await _views(session, subs, prices=True), total


async def update_metadata(
    session: AsyncSession, subscription_id: str, *, metadata: dict[str, Any] | None, clock: Clock
) -> SubscriptionView:
    """Replace metadata; a scheduled plan change stays visible as ``pendingPlanChange``."""
    sub = await get_for_update(session, subscription_id)
    pending = (sub.meta or {}).get(PENDING_PLAN_KEY)
    if sub.scheduled_plan_id is not None and pending is not None:
        metadata = {**(metadata or {}), PENDING_PLAN_KEY: pending}
    sub.meta = metadata
    sub.updated_at = clock.now()
    await session.flush()
    log.info("subscription.updated", subscription_id=sub.id)
    return await _view(session, sub, prices=False)


async def set_payment_method(
    session: AsyncSession, sub: Subscription, payment_method_id: str | None, *, clock: Clock
) -> SubscriptionView:
    """Point ``sub`` (locked by the caller) at a saved method (checked by the caller:
    payments sit above this package), or clear it with None."""
    sub.payment_method_id = payment_method_id
    sub.updated_at = clock.now()
    await session.flush()
    log.info("subscription.payment_method_set", subscription_id=sub.id)
    return await _view(session, sub, prices=False)


async def cancel(
    session: AsyncSession, subscription_id: str, *, body: CancelIn, tenant_id: str, clock: Clock
) -> SubscriptionView:
    """``subscription.canceled`` with ``cancelAt`` "immediate" or the period end (the
    billing engine sends its own one when it cancels at the period end)."""
    sub = await get_for_update(session, subscription_id)
    if body.cancel_at == "now":
        transition = await cancel_now(session, sub, now=clock.now(), reason="canceled")
    else:
        transition = await lifecycle.schedule_cancel(session, sub, now=clock.now())
    _announce(tenant_id, sub, transition, clock=clock)
    return await _view(session, sub, prices=False)


async def pause(
    session: AsyncSession, subscription_id: str, *, tenant_id: str, clock: Clock
) -> SubscriptionView:
    sub = await get_for_update(session, subscription_id)
    transition = await lifecycle.pause(session, sub, now=clock.now())
    _announce(tenant_id, sub, transition, clock=clock)
    return await _view(session, sub, prices=False)


async def resume(
    session: AsyncSession, subscription_id: str, *, tenant_id: str, clock: Clock
) -> tuple[SubscriptionView, lifecycle.Skipped | None]:
    """PAUSED -> ACTIVE with its period dates kept. When the period ended while paused,
    the subscription moves to the period containing now (on its own schedule); the
    periods skipped are returned for the billing engine (nothing is credited)."""
    sub = await get_for_update(session, subscription_id)
    transition, skipped = await lifecycle.resume(session, sub, now=clock.now())
    _announce(tenant_id, sub, transition, clock=clock)
    return await _view(session, sub, prices=False), skipped


async def change_plan(
    session: AsyncSession,
    subscription_id: str,
    *,
    body: ChangePlanIn,
    tenant_id: str,
    clock: Clock,
    period_invoiced: bool,
) -> tuple[SubscriptionView, lifecycle.Proration | None]:
    """Upgrade (new price strictly higher in the subscription currency): immediate, period
    restarts now on the new plan, proration lines recorded (``prorate``: credit and charge;
    otherwise only the credit - and a credit only when ``period_invoiced``: an unbilled
    period is never credited). Downgrade or equal: scheduled for the period end.
    During a trial an upgrade switches the plan and keeps the trial period. Outbound
    ``subscription.plan_changed`` / ``subscription.plan_change_scheduled``."""
    sub = await get_for_update(session, subscription_id)
    old = check(Action.CHANGE_PLAN, sub.status).value
    plan, target = await _plan_target(session, body.new_plan_id, sub.currency, field="newPlanId")
    current = await session.get(Plan, sub.plan_id)
    current_price = await plans_service.price_for(session, sub.plan_id, sub.currency)
    now = clock.now()
    data: dict[str, Any] = {"fromPlanId": sub.plan_id, "toPlanId": plan.id}
    proration = None
    if plan.id == sub.plan_id:
        lifecycle.clear_scheduled_change(sub)
        reason = "plan_change_unscheduled"
    elif target.amount_minor > (current_price.amount_minor if current_price else 0):
        reason = "plan_changed"
        if sub.status == Status.TRIALING:
            lifecycle.swap_plan(sub, target)
        else:
            proration = await lifecycle.reanchor(
                session,
                sub,
                now=now,
                target=target,
                old_name=current.name if current else "",
                charge=body.prorate,
                credit=period_invoiced,
            )
            data["prorationMinor"] = sum(line.amount_minor for line in proration.lines)
    else:
        lifecycle.schedule_change(sub, target)
        reason = "plan_change_scheduled"
        data["effectiveAt"] = (sub.meta or {})[PENDING_PLAN_KEY]["effectiveAt"]
    sub.updated_at = now
    await session.flush()
    transition = await record_event(session, sub, from_status=old, reason=reason, at=now, data=data)
    _announce(tenant_id, sub, transition, clock=clock)
    return await _view(session, sub, prices=False), proration


# --- reads and deletion for the customer account (billing.accounts) --------------------


async def list_for_customer(session: AsyncSession, customer_id: str) -> list[dict[str, Any]]:
    """Wire objects of a customer's subscriptions, each with ``plan`` (no prices), newest
    first (``GET /api/customers/{id}/subscriptions`` and the customer detail)."""
    subs = await subscriptions_of_customer(session, customer_id)
    plan_ids = {s.plan_id for s in subs}
    plans = {p.id: p for p in await session.scalars(select(Plan).where(Plan.id.in_(plan_ids)))}
    return [with_plan(s, plans[s.plan_id]) for s in subs]


async def lock_for_customer(session: AsyncSession, customer_id: str) -> list[Subscription]:
    """A customer's subscriptions, row-locked on PostgreSQL (customer deletion checks their
    statuses, then deletes them, in one transaction)."""
    stmt = (
        select(Subscription)
        .where(Subscription.customer_id == customer_id)
        .order_by(Subscription.id)
        .with_for_update()
    )
    return list(await session.scalars(stmt))


async def delete_for_customer(session: AsyncSession, customer_id: str) -> None:
    """Delete a customer's subscriptions with their transition log and pending proration
    lines (explicit deletes; the ON DELETE CASCADE foreign keys are a second net)."""
    ids = select(Subscription.id).where(Subscription.customer_id == customer_id)
    await session.execute(
        delete(SubscriptionEvent).where(SubscriptionEvent.subscription_id.in_(ids))
    )
    await session.execute(
        delete(PendingInvoiceItem).where(
            or_(
                PendingInvoiceItem.customer_id == customer_id,
                PendingInvoiceItem.subscription_id.in_(ids),
            )
        )
    )
    await session.execute(delete(Subscription).where(Subscription.customer_id == customer_id))
    log.info("subscription.deleted_for_customer", customer_id=customer_id)
