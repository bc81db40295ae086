"""Wire shapes of /api/subscriptions (contract subscriptions.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from novabilling.customers.models import Customer
from novabilling.customers.schemas import CustomerOut, customer_out
from novabilling.kit.timestamps import InstantInput, to_wire
from novabilling.kit.wire import FreeForm, Timestamp, WireModel, WireOut
from novabilling.plans.models import Plan, PlanPrice
from novabilling.plans.schemas import PlanOut, plan_out
from novabilling.subscriptions.models import Subscription
from novabilling.subscriptions.transitions import Status

NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=255)]
CurrencyCode = Annotated[str, StringConstraints(min_length=1, max_length=3)]
TrialDays = Annotated[int, Field(ge=0, le=365)]


class SubscriptionCreate(WireModel):
    customer_id: NonEmpty
    plan_id: NonEmpty
    currency: CurrencyCode
    trial_days: TrialDays | None = None
    metadata: dict[str, Any] | None = None
    external_id: NonEmpty | None = None
    # Import helpers (contract: period start, period end, back-dating, status override).
    start_date: InstantInput | None = None
    current_period_end: InstantInput | None = None
    created_at: InstantInput | None = None
    canceled_at: InstantInput | None = None
    status: Status | None = None
    # Improve (payment-methods.md): a saved method of the same customer, charged at renewals.
    payment_method_id: NonEmpty | None = None


class SubscriptionPatch(WireModel):
    """``metadata`` (replaced as a whole) and/or ``paymentMethodId`` (null clears it);
    either may be sent alone; anything else is an unknown key (400)."""

    metadata: dict[str, Any] | None = None
    payment_method_id: NonEmpty | None = None


class CancelIn(WireModel):
    cancel_at: Literal["now", "period_end"]


class ChangePlanIn(WireModel):
    new_plan_id: NonEmpty
    prorate: bool = False


@dataclass
class SubscriptionView:
    """A subscription with what its responses embed."""

    sub: Subscription
    customer: Customer
    plan: Plan
    prices: list[PlanPrice] | None = None
    invoices: list[dict[str, Any]] | None = None


def _at(value: Any) -> str | None:
    return to_wire(value) if value is not None else None


def subscription_out(sub: Subscription) -> dict[str, Any]:
    """The bare Subscription object (no embeds)."""
    return {
        "id": sub.id,
        "customerId": sub.customer_id,
        "planId": sub.plan_id,
        "externalId": sub.external_id,
        "previousPlanId": sub.previous_plan_id,
        "paymentMethodId": sub.payment_method_id,
        "status": sub.status,
        "currency": sub.currency,
        "billingTiming": sub.billing_timing,
        "currentPeriodStart": to_wire(sub.current_period_start),
        "currentPeriodEnd": to_wire(sub.current_period_end),
        "cancelAt": _at(sub.cancel_at),
        "canceledAt": _at(sub.canceled_at),
        "trialStart": _at(sub.trial_start),
        "trialEnd": _at(sub.trial_end),
        "startedAt": to_wire(sub.started_at),
        "createdAt": to_wire(sub.created_at),
        "updatedAt": to_wire(sub.updated_at),
        "metadata": sub.meta,
        "lastProgressiveBillingAt": _at(sub.last_progressive_billing_at),
    }


def with_plan(
    sub: Subscription, plan: Plan, prices: list[PlanPrice] | None = None
) -> dict[str, Any]:
    """Subscription + embedded ``plan`` (customers' sub-list and detail use this)."""
    return {**subscription_out(sub), "plan": plan_out(plan, prices)}


def view_out(view: SubscriptionView) -> dict[str, Any]:
    """Subscription + ``customer`` + ``plan`` (+ ``prices`` / ``invoices`` when loaded)."""
    out = {
        **subscription_out(view.sub),
        "customer": customer_out(view.customer),
        "plan": plan_out(view.plan, view.prices),
    }
    if view.invoices is not None:
        out["invoices"] = view.invoices
    return out


class SubscriptionOut(WireOut):
    """The bare Subscription object."""

    id: str
    customer_id: str
    plan_id: str
    external_id: str | None
    previous_plan_id: str | None
    payment_method_id: str | None
    status: Status
    currency: str
    billing_timing: str
    current_period_start: Timestamp
    current_period_end: Timestamp
    cancel_at: Timestamp | None
    canceled_at: Timestamp | None
    trial_start: Timestamp | None
    trial_end: Timestamp | None
    started_at: Timestamp
    created_at: Timestamp
    updated_at: Timestamp
    metadata: FreeForm | None
    last_progressive_billing_at: Timestamp | None


class SubscriptionWithPlanOut(SubscriptionOut):
    """A subscription with its ``plan``."""

    plan: PlanOut


class SubscriptionViewOut(SubscriptionWithPlanOut):
    """A subscription with its ``customer`` and ``plan``."""

    customer: CustomerOut
