"""The subscription e-mails (``notifications.jobs``): created, trial started, trial
ending, trial converted, paused, resumed, plan changed, canceled - each rendered from the
subscription as it is when the job runs, with its plan's price in the subscription's
currency."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.customers.models import Customer
from novabilling.kit.jobs import QUEUE_EMAILS, JobHandler, PermanentJobError
from novabilling.notifications import jobs as emails
from novabilling.notifications import messages
from novabilling.notifications.views import Mailbox, SubscriptionView, TenantView
from novabilling.plans.models import Plan, PlanPrice
from novabilling.runtime import Runtime
from novabilling.subscriptions.models import Subscription
from novabilling.tenancy.profiles import TenantProfile
from novabilling.tenants.mail import EmailWork, email_handler, mailer_for


async def subscription_view(
    session: AsyncSession, tenant: TenantProfile, subscription_id: str
) -> SubscriptionView:
    sub = await session.get(Subscription, subscription_id)
    if sub is None:
        raise PermanentJobError(f"subscription {subscription_id} not found")
    customer = await session.get(Customer, sub.customer_id)
    plan = await session.get(Plan, sub.plan_id)
    if customer is None or plan is None:
        raise PermanentJobError(f"subscription {subscription_id} lost its customer or plan")
    amount = await session.scalar(
        select(PlanPrice.amount_minor).where(
            PlanPrice.plan_id == plan.id, PlanPrice.currency == sub.currency.upper()
        )
    )
    return SubscriptionView(
        tenant=TenantView.from_settings(tenant.name, tenant.settings),
        customer_name=customer.name or customer.email,
        customer_email=customer.email,
        plan_name=plan.name,
        status=sub.status,
        currency=sub.currency,
        amount_minor=int(amount or 0),
        billing_interval=plan.billing_interval.lower(),
        trial_ends_at=sub.trial_end,
        current_period_end=sub.current_period_end,
        canceled_at=sub.canceled_at,
        ends_at=sub.canceled_at or sub.cancel_at,
    )


Compose = Callable[..., EmailMessage]


def _work(compose: Compose) -> EmailWork:
    async def work(
        runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
    ) -> EmailMessage:
        view = await subscription_view(session, tenant, str(data["subscription_id"]))
        _, sender = mailer_for(runtime, tenant)
        return compose(view, sender=sender, recipient=view.customer_email)

    return work


async def _trial_ending(
    runtime: Runtime, session: AsyncSession, tenant: TenantProfile, data: dict[str, Any]
) -> EmailMessage | None:
    view = await subscription_view(session, tenant, str(data["subscription_id"]))
    if view.status != "TRIALING" or view.trial_ends_at is None:
        return None
    sender: Mailbox = mailer_for(runtime, tenant)[1]
    return messages.trial_ending(
        view, now=runtime.clock.now(), sender=sender, recipient=view.customer_email
    )


def handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    composed = {
        emails.SUBSCRIPTION_CREATED: messages.subscription_created,
        emails.TRIAL_STARTED: messages.trial_started,
        emails.TRIAL_CONVERTED: messages.trial_converted,
        emails.SUBSCRIPTION_CANCELED: messages.subscription_canceled,
        emails.SUBSCRIPTION_PAUSED: messages.subscription_paused,
        emails.SUBSCRIPTION_RESUMED: messages.subscription_resumed,
        emails.SUBSCRIPTION_PLAN_CHANGED: messages.subscription_plan_changed,
    }
    out = {
        (QUEUE_EMAILS, name): email_handler(runtime, _work(compose))
        for name, compose in composed.items()
    }
    out[(QUEUE_EMAILS, emails.TRIAL_ENDING)] = email_handler(runtime, _trial_ending)
    return out
