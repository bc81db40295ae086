"""POST /api/auth/forgot-password in constant time (issue 14, defect 15).

The request only queues ``auth.password_reset`` with the address and answers; the job
looks the account up, creates the single-use token (``service.forgot_password``) and
mails the link. Known and unknown addresses cost the caller the same one enqueue, so
neither the answer nor its timing tells whether an account exists. One job per address
per minute (dedup id), so a burst of requests sends at most one mail a minute.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from novabilling.auth import service
from novabilling.kit.crypto import sha256_hex
from novabilling.kit.jobs import QUEUE_EMAILS, Job, JobHandler
from novabilling.notifications import messages

if TYPE_CHECKING:
    from novabilling.runtime import Runtime

log = structlog.get_logger(__name__)

SEND = "auth.password_reset"
ATTEMPTS = 3


async def request_reset(runtime: Runtime, *, email: str) -> None:
    """Queue the reset mail for ``email`` (whether or not an account has it)."""
    assert runtime.jobs is not None
    address = email.strip().lower()
    minute = int(runtime.clock.now().timestamp() // 60)
    await runtime.jobs.enqueue(
        QUEUE_EMAILS,
        SEND,
        {"email": address},
        job_id=f"pwreset:{sha256_hex(address)[:32]}:{minute}",
        attempts=ATTEMPTS,
    )


async def send_reset(runtime: Runtime, job: Job) -> None:
    email = str(job.data["email"])
    token = await service.forgot_password(runtime, email=email)
    if token is None:
        return  # no such (active) account: nothing to send, nothing to tell
    message = messages.password_reset(
        account_name=email,
        reset_url=f"{runtime.settings.public_url}/reset-password",
        token=token,
        expires_minutes=int(service.RESET_TTL.total_seconds() // 60),
        sender=runtime.sender,
        recipient=email,
    )
    await runtime.mailer.send(message)  # a failure is retried by the queue (new token)
    log.info("auth.reset_email_sent")


def handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    async def run(job: Job) -> None:
        await send_reset(runtime, job)

    return {(QUEUE_EMAILS, SEND): run}
