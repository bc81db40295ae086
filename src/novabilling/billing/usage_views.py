"""What a subscription's usage comes to before it is invoiced (beyond the original; what
Lago and Stripe metering users expect):

- ``current_usage``: ``GET /api/subscriptions/{id}/usage`` - the running period's usage
  per charge: units and amount so far (overrides applied; the ``minAmountCents`` floor
  shown apart as ``minimum``, since it applies at period end), and what interim invoices
  already billed;
- ``upcoming_invoice``: ``GET /api/subscriptions/{id}/upcoming-invoice`` - the draft the
  invoice builder would make at the end of the running period from what is known now
  (fee, override price, usage so far, true-up, pending lines, taxes), never stored. A
  scheduled plan change is not applied to the preview.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.billing import taxation
from novabilling.billing.metering import Due, meter
from novabilling.billing.renewals import IN_ADVANCE, TickContext, pending_lines, period_inputs
from novabilling.errors import BusinessRule
from novabilling.invoices import builder
from novabilling.invoices.billed import billed_for_periods
from novabilling.kit.clock import Clock
from novabilling.kit.money import decimal_to_number, to_number
from novabilling.kit.periods import next_period
from novabilling.kit.timestamps import to_wire
from novabilling.subscriptions import service as subscriptions
from novabilling.subscriptions.models import Subscription
from novabilling.tenancy.profiles import TenantProfile
from novabilling.usage.charges import views_of_plans
from novabilling.usage.rating import MINIMUM, Subject, rate

__all__ = [
    "SubscriptionUsageOut",
    "UpcomingInvoiceOut",
    "current_usage",
    "upcoming_invoice",
]

Number = float | int


class UsageBucketOut(BaseModel):
    filterId: str | None = Field(  # noqa: N815 - wire names
        description="The charge filter of this bucket; null for the charge's own events"
    )
    description: str
    units: Number
    amount: Number


class UsageChargeOut(BaseModel):
    chargeId: str  # noqa: N815
    billableMetricId: str  # noqa: N815
    code: str
    name: str
    chargeModel: str  # noqa: N815
    billingTiming: str  # noqa: N815
    units: Number
    amount: Number = Field(description="Priced usage so far, before the minimum")
    minimum: Number = Field(description="Shortfall to minAmountCents if the period ended now")
    billed: Number = Field(description="Already billed for this period by interim invoices")
    buckets: list[UsageBucketOut]


class SubscriptionUsageOut(BaseModel):
    subscriptionId: str  # noqa: N815
    currency: str
    periodStart: str  # noqa: N815
    periodEnd: str  # noqa: N815
    amount: Number = Field(description="Sum of the charges' amounts so far")
    billed: Number
    charges: list[UsageChargeOut]


class InvoiceItemOut(BaseModel):
    description: str
    quantity: Number
    unitAmount: Number  # noqa: N815
    amount: Number
    type: str | None
    chargeId: str | None = None  # noqa: N815
    periodStart: str | None = None  # noqa: N815
    periodEnd: str | None = None  # noqa: N815


class UpcomingInvoiceOut(BaseModel):
    subscriptionId: str  # noqa: N815
    customerId: str  # noqa: N815
    currency: str
    issuedAt: str = Field(description="When it will be issued: the end of the period")  # noqa: N815
    periodStart: str  # noqa: N815
    periodEnd: str  # noqa: N815
    status: str = Field(description="DRAFT, PENDING or PAID, as it would be issued")
    subtotal: Number
    taxAmount: Number  # noqa: N815
    amount: Number
    dueDate: str  # noqa: N815
    items: list[InvoiceItemOut]


async def _subscription(session: AsyncSession, subscription_id: str) -> Subscription:
    sub = (await subscriptions.get_subscription(session, subscription_id)).sub
    if sub.status == "CANCELED":
        raise BusinessRule("A canceled subscription has no running period")
    return sub


async def current_usage(session: AsyncSession, subscription_id: str) -> dict[str, Any]:
    """The running period's usage per charge (contract-style wire dict)."""
    sub = await _subscription(session, subscription_id)
    currency = sub.currency.upper()
    period = (sub.current_period_start, sub.current_period_end)
    subject = Subject(sub.id, sub.customer_id, sub.plan_id, currency, period, sub.started_at)
    rated = (await rate(session, [subject]))[sub.id]
    billed = (await billed_for_periods(session, [(sub.id, period[0])]))[(sub.id, period[0])]
    charges = []
    total = billed_total = 0
    for view in (await views_of_plans(session, [sub.plan_id]))[sub.plan_id]:
        own = [r for r in rated if r.charge_id == view.charge.id]
        buckets = [r for r in own if r.bucket != MINIMUM]
        units = sum((r.units for r in buckets), Decimal(0))
        amount = sum(r.amount_minor for r in buckets)
        minimum = sum(r.amount_minor for r in own if r.bucket == MINIMUM)
        already = billed.charge_minor(view.charge.id)
        total += amount
        billed_total += already
        charges.append(
            {
                "chargeId": view.charge.id,
                "billableMetricId": view.metric.id,
                "code": view.metric.code,
                "name": view.charge.invoice_display_name or view.metric.name,
                "chargeModel": view.charge.charge_model,
                "billingTiming": view.charge.billing_timing,
                "units": decimal_to_number(units),
                "amount": to_number(amount, currency),
                "minimum": to_number(minimum, currency),
                "billed": to_number(already, currency),
                "buckets": [
                    {
                        "filterId": r.bucket or None,
                        "description": r.description,
                        "units": decimal_to_number(r.units),
                        "amount": to_number(r.amount_minor, currency),
                    }
                    for r in buckets
                ],
            }
        )
    return {
        "subscriptionId": sub.id,
        "currency": currency,
        "periodStart": to_wire(period[0]),
        "periodEnd": to_wire(period[1]),
        "amount": to_number(total, currency),
        "billed": to_number(billed_total, currency),
        "charges": charges,
    }


def _spans(
    sub: Subscription,
) -> tuple[
    tuple[datetime, datetime], tuple[datetime, datetime] | None, tuple[datetime, datetime] | None
]:
    """(invoice period, fee period or None, usage period or None) of the invoice issued
    when the running period ends (contract invoice-composition.md, "When invoices are
    made")."""
    current = (sub.current_period_start, sub.current_period_end)
    trial = sub.status == "TRIALING"
    ending = sub.cancel_at is not None and sub.cancel_at <= current[1]
    coming = next_period(sub.billing_anchor, sub.billing_interval, current[1])
    if trial:  # the trial's usage is not billed; the first paid period's fee is next
        return coming, coming, None
    if sub.billing_timing != IN_ADVANCE:
        return current, current, current
    if ending:
        return (current[1], current[1]), None, current
    return coming, coming, current


async def upcoming_invoice(
    session: AsyncSession, subscription_id: str, *, tenant: TenantProfile, clock: Clock
) -> dict[str, Any]:
    """The builder's draft for the end of the running period (not stored)."""
    sub = await _subscription(session, subscription_id)
    try:
        period, fee_period, used = _spans(sub)
    except ValueError:  # a period end off the anchor's schedule: renewal re-anchors it
        raise BusinessRule("The subscription's next period is not known yet") from None
    ctx = TickContext(tenant=tenant, now=sub.current_period_end, clock=clock)
    plan = await ctx.plan(session, sub.plan_id)
    due = Due(
        sub,
        used,
        fee_included=fee_period is not None and fee_period == used,
        plan_minimum_e4=plan.minimum_commitment_e4 if plan is not None else None,
    )
    metered = (await meter(session, [due]))[sub.id]
    tax = (await taxation.load(session, [(sub.plan_id, sub.customer_id)])).of(
        sub.plan_id, sub.customer_id
    )
    inputs = period_inputs(
        ctx,
        sub,
        plan=plan,
        customer=await ctx.customer(session, sub.customer_id),
        period=period,
        fee_period=fee_period,
        amount_minor=sub.amount_minor,
        pending=await pending_lines(session, sub.id, clock.now()),
        metered=metered,
        tax=tax,
    )
    draft = builder.build(inputs)
    currency = inputs.currency
    return {
        "subscriptionId": sub.id,
        "customerId": sub.customer_id,
        "currency": currency,
        "issuedAt": to_wire(inputs.now),
        "periodStart": to_wire(period[0]),
        "periodEnd": to_wire(period[1]),
        "status": draft.status,
        "subtotal": to_number(draft.subtotal_minor, currency),
        "taxAmount": to_number(draft.tax_minor, currency),
        "amount": to_number(max(draft.total_minor, 0), currency),
        "dueDate": to_wire(draft.due_date),
        "items": draft.metadata.get("items", []),
    }
