"""POST /api/auth/forgot-password answers in constant time (issue 14, defect 15): the
request only queues the job; looking the account up, creating the token and sending the
mail happen in the job, so a slow mail server cannot reveal that an account exists."""

from __future__ import annotations

import asyncio
import secrets
import time
from email.message import EmailMessage
from typing import Any

import httpx

from novabilling.kit.jobs import QUEUE_EMAILS
from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.runtime import Runtime
from novabilling.worker import build_handlers
from tests.conftest import TenantCreds

FORGOT = "/api/auth/forgot-password"


class SlowMailer:
    """A mail server that takes ``delay`` seconds per message."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        await asyncio.sleep(self.delay)
        self.sent.append(message)


class RecordingQueue:
    """Records what the request enqueues (the work itself is tested separately)."""

    def __init__(self) -> None:
        self.jobs: list[tuple[str, str, dict[str, Any], str | None]] = []

    async def enqueue(
        self, queue: str, name: str, data: dict[str, Any], *, job_id: str | None = None, **_: Any
    ) -> None:
        self.jobs.append((queue, name, data, job_id))

    async def close(self) -> None:
        return None


async def _in_process(runtime: Runtime) -> InProcessQueue:
    if runtime.jobs is not None:
        await runtime.jobs.close()
    queue = InProcessQueue(build_handlers(runtime))
    runtime.jobs = queue
    return queue


async def test_a_slow_mail_server_does_not_slow_the_answer(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = await _in_process(runtime)
    runtime.mailer = mailer = SlowMailer(delay=2.0)
    unknown = f"nobody-{secrets.token_hex(4)}@test.local"
    timings = {}
    for email in (tenant.email, unknown):
        started = time.perf_counter()
        r = await client.post(FORGOT, json={"email": email})
        timings[email] = time.perf_counter() - started
        assert r.status_code == 200
    assert timings[tenant.email] < 0.5, timings  # was >= 2 s: the mail was sent inline
    assert mailer.sent == []  # not yet: the job runs after the answer
    await queue.join()
    assert [str(m["To"]) for m in mailer.sent] == [tenant.email]


async def test_known_and_unknown_addresses_queue_the_same_job(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    if runtime.jobs is not None:
        await runtime.jobs.close()
    runtime.jobs = recorder = RecordingQueue()  # type: ignore[assignment]
    unknown = f"nobody-{secrets.token_hex(4)}@test.local"
    known = await client.post(FORGOT, json={"email": tenant.email.upper()})
    other = await client.post(FORGOT, json={"email": unknown})
    assert known.status_code == other.status_code == 200
    assert known.json() == other.json()
    assert [(q, n, d) for q, n, d, _ in recorder.jobs] == [
        (QUEUE_EMAILS, "auth.password_reset", {"email": tenant.email.lower()}),
        (QUEUE_EMAILS, "auth.password_reset", {"email": unknown}),
    ]
    assert all(job_id and tenant.email not in job_id for *_, job_id in recorder.jobs)


async def test_a_burst_sends_one_mail_a_minute(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    queue = await _in_process(runtime)
    runtime.mailer = mailer = SlowMailer(delay=0)
    for _ in range(5):
        assert (await client.post(FORGOT, json={"email": tenant.email})).status_code == 200
    await queue.join()
    assert len(mailer.sent) == 1
