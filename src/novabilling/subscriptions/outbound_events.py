"""Outbound tenant webhooks of the subscription request use cases (contract webhooks.md,
"Outbound tenant webhooks").

``publish`` turns the transition a use case just recorded in ``subscription_events`` into
its webhook, queued with ``webhooks.outbound.emit`` inside the request's unit of work (sent
after the commit, dropped on a rollback). The webhook key is ``"{subscription id}:{transition
id}"``: one job per recorded action, so a retried job is sent once while two actions of the
same kind (pause, resume, pause) are two webhooks.

Dunning's cancellation (retries used up) goes through ``publish`` too. The billing
engine's own events (renewed, trial_ended, the cancellation when a scheduled ``cancelAt``
is reached) are emitted by ``billing.renewals`` with keys of its own.
"""

from __future__ import annotations

from typing import Any

from novabilling.kit.clock import Clock
from novabilling.kit.timestamps import to_wire
from novabilling.subscriptions.models import Subscription, SubscriptionEvent
from novabilling.webhooks import outbound

__all__ = ["EVENTS", "publish"]

# transition reason (lifecycle/service ``record_event``) -> outbound event
EVENTS = {
    "created": "subscription.created",
    "canceled": "subscription.canceled",
    "cancel_scheduled": "subscription.canceled",
    "dunning_exhausted": "subscription.canceled",  # retries used up (billing.dunning)
    "paused": "subscription.paused",
    "resumed": "subscription.resumed",
    "plan_changed": "subscription.plan_changed",
    "plan_change_scheduled": "subscription.plan_change_scheduled",
    # choosing the current plan drops a scheduled change: from the period end on, the
    # subscription stays on (is scheduled for) its current plan
    "plan_change_unscheduled": "subscription.plan_change_scheduled",
}


def _data(sub: Subscription, transition: SubscriptionEvent) -> dict[str, Any]:
    data: dict[str, Any] = {"subscriptionId": sub.id, "customerId": sub.customer_id}
    logged = transition.data or {}
    reason = transition.reason
    if reason == "created":
        data |= {"planId": sub.plan_id, "status": sub.status, "currency": sub.currency}
    elif reason in ("canceled", "dunning_exhausted"):
        data["cancelAt"] = "immediate"
    elif reason == "cancel_scheduled":
        data["cancelAt"] = logged["cancelAt"]
    elif reason == "plan_changed":
        data |= {
            "oldPlanId": logged["fromPlanId"],
            "newPlanId": logged["toPlanId"],
            "proration": {"type": "upgrade", "effectiveImmediately": True},
        }
    elif reason in ("plan_change_scheduled", "plan_change_unscheduled"):
        data |= {
            "oldPlanId": logged["fromPlanId"],
            "newPlanId": logged["toPlanId"],
            "effectiveAt": logged.get("effectiveAt") or to_wire(sub.current_period_end),
        }
    return data


def publish(
    tenant_id: str, sub: Subscription, transition: SubscriptionEvent, *, clock: Clock
) -> None:
    """Queue the webhook of ``transition`` (a row just recorded for ``sub``)."""
    event = EVENTS.get(transition.reason)
    if event is None:
        raise ValueError(f"no outbound event for subscription transition {transition.reason!r}")
    key = f"{sub.id}:{transition.id}"
    outbound.emit(tenant_id, event, _data(sub, transition), clock=clock, key=key)
