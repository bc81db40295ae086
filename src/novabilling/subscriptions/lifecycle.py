"""State changes of one subscription: every change goes through ``transitions.check`` and
is recorded in ``subscription_events``. Used by the request use cases (``service``) and by
the billing engine (renewals, trials, dunning). Functions flush, never commit.

Money on a re-anchor (an upgrade) becomes ``pending_invoice_items`` for the next invoice
(``prorations.proration_lines``). Pause and resume keep the period dates (contract): a
period that ended while paused is skipped on resume, never billed twice, never credited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import BusinessRule
from novabilling.kit.periods import index_at, next_period, period_bounds, period_end
from novabilling.kit.proration import unused_credit
from novabilling.kit.timestamps import to_wire
from novabilling.subscriptions.models import PendingInvoiceItem, Subscription, SubscriptionEvent
from novabilling.subscriptions.prorations import IN_ADVANCE, PlanTarget, proration_lines
from novabilling.subscriptions.transitions import Action, Status, check

__all__ = [
    "PENDING_PLAN_KEY",
    "PlanTarget",
    "Proration",
    "Skipped",
    "advance_period",
    "cancel_now",
    "clear_scheduled_change",
    "due_action",
    "mark_past_due",
    "pause",
    "reactivate",
    "record_event",
    "reanchor",
    "resume",
    "schedule_cancel",
    "schedule_change",
    "skip_far_periods",
    "swap_plan",
]

log = structlog.get_logger(__name__)

PENDING_PLAN_KEY = "pendingPlanChange"


async def record_event(
    session: AsyncSession,
    sub: Subscription,
    *,
    from_status: str | None,
    reason: str,
    at: datetime,
    data: dict[str, Any] | None = None,
) -> SubscriptionEvent:
    """Append one row to the subscription's log (``to_status`` = its current status)."""
    event = SubscriptionEvent(
        subscription_id=sub.id,
        from_status=from_status,
        to_status=sub.status,
        reason=reason,
        at=at,
        data=data,
    )
    session.add(event)
    await session.flush()
    log.info(f"subscription.{reason}", subscription_id=sub.id, status=sub.status)
    return event


def _move(sub: Subscription, action: Action, now: datetime) -> str:
    """Apply ``action``'s target status; returns the previous status."""
    old = sub.status
    sub.status = check(action, old).value
    sub.updated_at = now
    return old


def _clamp(at: datetime, start: datetime, end: datetime) -> datetime:
    return min(max(at, start), end)


def due_action(sub: Subscription, *, now: datetime) -> str | None:
    """What the billing engine should do with ``sub`` at ``now``:
    ``"cancel"`` (scheduled cancellation reached), ``"trial_end"``, ``"renew"`` or None."""
    if sub.status == Status.CANCELED:
        return None
    if sub.cancel_at is not None and sub.cancel_at <= now:
        return "cancel"
    if sub.current_period_end > now:
        return None
    if sub.status == Status.TRIALING:
        return "trial_end"
    if sub.status in (Status.ACTIVE, Status.PAST_DUE):
        return "renew"
    return None


def _apply_scheduled_change(sub: Subscription, boundary: datetime) -> dict[str, Any] | None:
    if sub.scheduled_plan_id is None:
        return None
    change = {"fromPlanId": sub.plan_id, "toPlanId": sub.scheduled_plan_id}
    sub.previous_plan_id = sub.plan_id
    sub.plan_id = sub.scheduled_plan_id
    sub.amount_minor = sub.scheduled_amount_minor or 0
    if sub.scheduled_interval and sub.scheduled_interval != sub.billing_interval:
        sub.billing_interval = sub.scheduled_interval
        sub.billing_anchor = boundary
    clear_scheduled_change(sub)
    return change


async def advance_period(
    session: AsyncSession, sub: Subscription, *, now: datetime
) -> tuple[datetime, datetime]:
    """Move a due subscription into its next period; returns ``(start, end)`` of it.

    TRIALING -> ACTIVE with the first paid period starting at ``trial_end``; ACTIVE and
    PAST_DUE keep their status. A scheduled plan change is applied at the boundary. The
    boundary must have passed (``current_period_end <= now``) and no cancellation may be
    due, so a second call for the same period raises ``BusinessRule`` instead of skipping
    a period. One period per call: a subscription behind by several periods stays due.
    """
    boundary = sub.current_period_end
    if boundary > now:
        raise BusinessRule("Subscription period has not ended yet")
    if sub.cancel_at is not None and sub.cancel_at <= boundary:
        raise BusinessRule("Subscription is due for cancellation, not renewal")
    trial = sub.status == Status.TRIALING
    old = _move(sub, Action.TRIAL_END if trial else Action.RENEW, now)
    change = _apply_scheduled_change(sub, boundary)
    if trial:
        sub.billing_anchor = boundary
    try:
        start, end = next_period(sub.billing_anchor, sub.billing_interval, boundary)
    except ValueError:  # boundary off the anchor's schedule (import): re-anchor there
        sub.billing_anchor = boundary
        start, end = period_bounds(boundary, sub.billing_interval, 0)
    previous = (sub.current_period_start, boundary)
    sub.current_period_start, sub.current_period_end = start, end
    if sub.cancel_at_period_end:
        sub.cancel_at = end
    data: dict[str, Any] = {
        "previousPeriod": [to_wire(previous[0]), to_wire(previous[1])],
        "period": [to_wire(start), to_wire(end)],
    }
    if change:
        data["planChange"] = change
    await record_event(
        session,
        sub,
        from_status=old,
        reason="trial_ended" if trial else "renewed",
        at=now,
        data=data,
    )
    return start, end


async def skip_far_periods(
    session: AsyncSession, sub: Subscription, *, now: datetime
) -> tuple[int, datetime] | None:
    """Bounded catch-up (issue 14, defect 5): move a subscription that is far behind,
    without invoices, to the period that ENDED last before ``now``, so that one renewal
    remains: it bills the period containing ``now`` (IN_ADVANCE) or the one that just
    ended (IN_ARREARS). A trial that ended before its first paid period also ended becomes
    ACTIVE on the way (``trial_ended``). A scheduled plan change applies at the first
    skipped boundary, as a renewal would apply it. Records one ``periods_skipped`` event;
    returns ``(periods skipped, first skipped boundary)`` or None when nothing moved."""
    boundary = sub.current_period_end
    if boundary > now or (sub.cancel_at is not None and sub.cancel_at <= boundary):
        return None
    if sub.status == Status.TRIALING:
        if period_end(boundary, sub.billing_interval, 1) > now:
            return None  # the first paid period contains now: the trial end bills it
        await advance_period(session, sub, now=now)  # ACTIVE in [trial end, + interval)
    elif sub.status in (Status.ACTIVE, Status.PAST_DUE):
        _apply_scheduled_change(sub, boundary)
    else:
        return None
    try:
        next_period(sub.billing_anchor, sub.billing_interval, sub.current_period_end)
    except ValueError:  # off the anchor's schedule (import): re-anchor at the period end
        sub.billing_anchor = sub.current_period_end
    ends_at = index_at(sub.billing_anchor, sub.billing_interval, sub.current_period_end)
    last = index_at(sub.billing_anchor, sub.billing_interval, now) - 1  # ended last
    count = last - ends_at + 1
    if count <= 0:  # the next period contains now: a plain renewal
        await session.flush()
        return 0, boundary
    skipped_from = (sub.current_period_start, sub.current_period_end)
    start, end = period_bounds(sub.billing_anchor, sub.billing_interval, last)
    sub.current_period_start, sub.current_period_end = start, end
    if sub.cancel_at_period_end:
        sub.cancel_at = end
    sub.updated_at = now
    data = {
        "skippedFrom": [to_wire(skipped_from[0]), to_wire(skipped_from[1])],
        "period": [to_wire(start), to_wire(end)],
        "periodsSkipped": count,
    }
    await record_event(
        session, sub, from_status=sub.status, reason="periods_skipped", at=now, data=data
    )
    log.warning(
        "subscription.periods_skipped",
        subscription_id=sub.id,
        periods=count,
        skipped_from=to_wire(skipped_from[0]),
        resumes_at=to_wire(end),
    )
    return count, boundary


async def mark_past_due(
    session: AsyncSession, sub: Subscription, *, now: datetime, next_retry_at: datetime | None
) -> Subscription:
    """Collection failed: ACTIVE/TRIALING/PAST_DUE -> PAST_DUE with the next retry time."""
    old = _move(sub, Action.PAYMENT_FAILED, now)
    sub.next_retry_at = next_retry_at
    data = {"nextRetryAt": to_wire(next_retry_at) if next_retry_at else None}
    await record_event(session, sub, from_status=old, reason="payment_failed", at=now, data=data)
    return sub


async def reactivate(session: AsyncSession, sub: Subscription, *, now: datetime) -> Subscription:
    """Collection succeeded: PAST_DUE -> ACTIVE (an ACTIVE one just drops its retry time)."""
    if sub.status == Status.ACTIVE:
        sub.next_retry_at = None
        await session.flush()
        return sub
    old = _move(sub, Action.REACTIVATE, now)
    sub.next_retry_at = None
    await record_event(session, sub, from_status=old, reason="reactivated", at=now)
    return sub


def _unused_credit_of_period(sub: Subscription, at: datetime) -> int:
    """Unused share of the current period's price after ``at`` (0 unless IN_ADVANCE and
    past the trial: nothing was paid otherwise)."""
    if sub.billing_timing != IN_ADVANCE or sub.status == Status.TRIALING:
        return 0
    start, end = sub.current_period_start, sub.current_period_end
    if end <= start:
        return 0
    return unused_credit(sub.amount_minor, start, end, _clamp(at, start, end))


async def cancel_now(
    session: AsyncSession, sub: Subscription, *, now: datetime, reason: str
) -> SubscriptionEvent:
    """Any live status -> CANCELED at ``now``; returns the recorded transition. Its data
    carries ``unusedCreditMinor`` (IN_ADVANCE: the paid, unused part of the period) for the
    credit note."""
    credit = _unused_credit_of_period(sub, sub.paused_at or now)
    old = _move(sub, Action.CANCEL, now)
    sub.canceled_at = now
    sub.ended_at = now
    sub.next_retry_at = None
    clear_scheduled_change(sub)
    data = {
        "unusedCreditMinor": credit,
        "currency": sub.currency,
        "period": [to_wire(sub.current_period_start), to_wire(sub.current_period_end)],
    }
    return await record_event(session, sub, from_status=old, reason=reason, at=now, data=data)


async def schedule_cancel(
    session: AsyncSession, sub: Subscription, *, now: datetime
) -> SubscriptionEvent:
    """``cancelAt: period_end``: cancel when the current period ends (status unchanged);
    returns the recorded transition."""
    old = _move(sub, Action.SCHEDULE_CANCEL, now)
    sub.cancel_at = sub.current_period_end
    sub.cancel_at_period_end = True
    data = {"cancelAt": to_wire(sub.cancel_at)}
    return await record_event(
        session, sub, from_status=old, reason="cancel_scheduled", at=now, data=data
    )


async def pause(session: AsyncSession, sub: Subscription, *, now: datetime) -> SubscriptionEvent:
    """ACTIVE -> PAUSED; returns the recorded transition."""
    old = _move(sub, Action.PAUSE, now)
    sub.paused_at = now
    return await record_event(session, sub, from_status=old, reason="paused", at=now)


@dataclass(frozen=True)
class Proration:
    """An upgrade's settlement of the old period: its bounds, where its use stopped, the
    unused share of its price (credited only when it was invoiced) and the lines
    recorded for the next invoice."""

    period: tuple[datetime, datetime]
    cut: datetime
    price_minor: int
    unused_minor: int
    lines: list[PendingInvoiceItem]


async def reanchor(
    session: AsyncSession,
    sub: Subscription,
    *,
    now: datetime,
    target: PlanTarget,
    old_name: str,
    charge: bool = True,
    credit: bool = True,
) -> Proration:
    """Start a new period ``[now, now + interval)`` on ``target``. Records the proration
    lines (see the module docstring); ``charge=False`` records no charge line,
    ``credit=False`` (the old period was never invoiced) no credit."""
    period = (sub.current_period_start, sub.current_period_end)
    cut = _clamp(now, *period) if period[1] > period[0] else now
    price = sub.amount_minor
    unused = _unused_credit_of_period(sub, cut)
    lines = proration_lines(
        sub, now=now, cut=cut, target=target, old_name=old_name, charge=charge, credit=credit
    )
    new_start, new_end = period_bounds(now, target.interval, 0)
    session.add_all(lines)
    swap_plan(sub, target)
    sub.billing_anchor = now
    sub.current_period_start, sub.current_period_end = new_start, new_end
    if sub.cancel_at_period_end:
        sub.cancel_at = new_end
    sub.updated_at = now
    await session.flush()
    return Proration(period=period, cut=cut, price_minor=price, unused_minor=unused, lines=lines)


def swap_plan(sub: Subscription, target: PlanTarget) -> None:
    """Point ``sub`` at ``target`` now (periods untouched); the old plan becomes previous."""
    if target.plan_id != sub.plan_id:
        sub.previous_plan_id = sub.plan_id
    sub.plan_id = target.plan_id
    sub.amount_minor = target.amount_minor
    sub.billing_interval = target.interval
    clear_scheduled_change(sub)


@dataclass(frozen=True)
class Skipped:
    """A subscription resumed after its period ended while paused: the period in use when
    it was paused (``ended``) and the period it resumes in (``current``); the periods
    between were never in use and are not billed."""

    ended: tuple[datetime, datetime]
    current: tuple[datetime, datetime]


def _skip_to(sub: Subscription, now: datetime) -> Skipped | None:
    """Move a period that ended while paused to the one containing ``now`` (on the
    subscription's own schedule)."""
    ended = (sub.current_period_start, sub.current_period_end)
    if ended[1] > now:
        return None
    index = index_at(sub.billing_anchor, sub.billing_interval, now)
    current = period_bounds(sub.billing_anchor, sub.billing_interval, index)
    sub.current_period_start, sub.current_period_end = current
    if sub.cancel_at_period_end:
        sub.cancel_at = current[1]
    return Skipped(ended=ended, current=current)


async def resume(
    session: AsyncSession, sub: Subscription, *, now: datetime
) -> tuple[SubscriptionEvent, Skipped | None]:
    """PAUSED -> ACTIVE, period dates kept (contract); a period that ended while paused
    moves on to the current one (``Skipped``: the billing engine bills what is due)."""
    paused_at = sub.paused_at or now
    old = _move(sub, Action.RESUME, now)
    skipped = _skip_to(sub, now)
    sub.paused_at = None
    data: dict[str, Any] = {"pausedAt": to_wire(paused_at)}
    if skipped is not None:
        data["endedPeriod"] = [to_wire(skipped.ended[0]), to_wire(skipped.ended[1])]
        data["period"] = [to_wire(skipped.current[0]), to_wire(skipped.current[1])]
    event = await record_event(session, sub, from_status=old, reason="resumed", at=now, data=data)
    return event, skipped


def schedule_change(sub: Subscription, target: PlanTarget) -> None:
    """Switch to ``target`` at the end of the current period (downgrade or equal price)."""
    sub.scheduled_plan_id = target.plan_id
    sub.scheduled_amount_minor = target.amount_minor
    sub.scheduled_interval = target.interval
    pending = {"newPlanId": target.plan_id, "effectiveAt": to_wire(sub.current_period_end)}
    sub.meta = {**(sub.meta or {}), PENDING_PLAN_KEY: pending}


def clear_scheduled_change(sub: Subscription) -> None:
    sub.scheduled_plan_id = None
    sub.scheduled_amount_minor = None
    sub.scheduled_interval = None
    if sub.meta and PENDING_PLAN_KEY in sub.meta:
        sub.meta = {k: v for k, v in sub.meta.items() if k != PENDING_PLAN_KEY}
