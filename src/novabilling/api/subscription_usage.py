"""/api/subscriptions/{id}/usage and /upcoming-invoice: a subscription's usage so far and
the invoice it is heading for (beyond the original, as in Lago and Stripe)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.billing import usage_views
from novabilling.web.deps import RuntimeDep, TenantProfileDep, TenantSession

router = APIRouter(prefix="/api/subscriptions", tags=["subscriptions"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The subscription is CANCELED"},
    404: {"description": "Subscription not found"},
}


@router.get(
    "/{subscription_id}/usage",
    response_model=usage_views.SubscriptionUsageOut,
    summary="Usage of the running period per charge: units and amount so far",
    responses=_ERRORS,
)
async def subscription_usage(session: TenantSession, subscription_id: str) -> dict[str, Any]:
    """Events of [currentPeriodStart, currentPeriodEnd) aggregated and priced by the
    plan's charges with the customer's overrides, per charge and filter bucket.
    ``minimum`` is what ``minAmountCents`` would add if the period ended now; ``billed``
    what interim invoices (IN_ADVANCE charges, progressive billing) already billed."""
    return await usage_views.current_usage(session, subscription_id)


@router.get(
    "/{subscription_id}/upcoming-invoice",
    response_model=usage_views.UpcomingInvoiceOut,
    response_model_exclude_unset=True,  # items as on invoices: usage keys on usage lines
    summary="Preview of the invoice issued when the running period ends (not stored)",
    responses=_ERRORS,
)
async def upcoming_invoice(
    session: TenantSession,
    subscription_id: str,
    tenant: TenantProfileDep,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """The invoice builder's draft with what is known now: the plan fee (or the
    customer's override price), the usage so far, the minimum-commitment true-up, lines
    waiting for the next invoice, and taxes. Nothing is stored or numbered."""
    return await usage_views.upcoming_invoice(
        session, subscription_id, tenant=tenant, clock=runtime.clock
    )
