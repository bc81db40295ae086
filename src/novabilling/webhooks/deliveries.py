"""Writing the delivery log (``webhooks.models.WebhookDelivery``) from the delivery job:
after every attempt the row of that delivery (created by the first one) gets the attempt
count, the answer's status code or the network error, and its status. The log is a
record, not a gate: a tenant database that cannot be written to is logged and the
delivery goes on."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import SQLAlchemyError

from novabilling.kit.ids import new_id
from novabilling.kit.jobs import Job
from novabilling.webhooks.models import FAILED, PENDING, SUCCEEDED, WebhookDelivery

if TYPE_CHECKING:
    from novabilling.runtime import Runtime

log = structlog.get_logger(__name__)

ERROR_CHARS = 500


def delivery_id(job: Job) -> str:
    """The log row of this job: the id chosen when the event was emitted; a job queued
    before the log existed gets one derived from its job id (stable over its retries)."""
    given = job.data.get("delivery_id")
    if given:
        return str(given)
    if job.job_id:
        return "d" + hashlib.sha256(job.job_id.encode()).hexdigest()[:24]
    return new_id()


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one POST: ``code`` is the HTTP status (None: no answer)."""

    ok: bool
    code: int | None = None
    error: str | None = None


async def record_attempt(runtime: Runtime, job: Job, *, url: str | None, attempt: Attempt) -> None:
    tenant_id = str(job.data["tenant_id"])
    row_id = delivery_id(job)
    now = runtime.clock.now()
    status = SUCCEEDED if attempt.ok else FAILED if job.is_last_attempt else PENDING
    try:
        maker = await runtime.engines.sessionmaker(tenant_id)
        async with maker() as session:
            row = await session.get(WebhookDelivery, row_id)
            if row is None:
                row = WebhookDelivery(
                    id=row_id,
                    event=str(job.data["event"]),
                    attempts=0,
                    data=dict(job.data["data"]),
                    event_timestamp=str(job.data["timestamp"]),
                    created_at=now,
                )
                session.add(row)
            row.attempts += 1
            row.status = status
            row.last_response_code = attempt.code
            row.last_error = attempt.error[:ERROR_CHARS] if attempt.error else None
            row.url = url
            row.last_attempt_at = now
            row.updated_at = now
            if attempt.ok:
                row.delivered_at = now
            await session.commit()
    except SQLAlchemyError as exc:
        log.warning("webhook.log_failed", delivery_id=row_id, error=repr(exc))
