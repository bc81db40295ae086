"""Expiring idempotency records (``kit.idempotency``): the scheduler's hourly hook.

``schedule_expiry`` is called by the scheduler every minute with the tenants it schedules;
at minute 0 of each hour it enqueues one ``idempotency.expire`` job per tenant (job id per
tenant and hour, so a second scheduler adds nothing). The job deletes that tenant's records
past their 24 h. Correctness never waits for it: a claim on an expired key replaces the old
record itself; the sweep only keeps the table small.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog

from novabilling.kit import idempotency
from novabilling.kit.jobs import QUEUE_BILLING, Job, JobHandler, enqueue_many
from novabilling.runtime import Runtime

log = structlog.get_logger(__name__)

EXPIRE_JOB = "idempotency.expire"


async def schedule_expiry(runtime: Runtime, tenant_ids: Sequence[str], *, at: datetime) -> int:
    """Enqueue this hour's expiry job per tenant (only at minute 0); returns how many."""
    if at.minute != 0 or runtime.jobs is None or not tenant_ids:
        return 0
    hour = at.strftime("%Y%m%d%H")
    batch = [
        {"name": EXPIRE_JOB, "data": {"tenant_id": t}, "job_id": f"{t}:idem:{hour}"}
        for t in tenant_ids
    ]
    await enqueue_many(runtime.jobs, QUEUE_BILLING, batch)
    return len(batch)


async def expire_for_tenant(runtime: Runtime, tenant_id: str) -> int:
    maker = await runtime.engines.sessionmaker(tenant_id)
    async with maker() as session:
        removed = await idempotency.expire(session, now=runtime.clock.now())
        await session.commit()
    if removed:
        log.info("idempotency.expired", tenant_id=tenant_id, removed=removed)
    return removed


def handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    async def run(job: Job) -> None:
        await expire_for_tenant(runtime, str(job.data["tenant_id"]))

    return {(QUEUE_BILLING, EXPIRE_JOB): run}
