"""Outbound tenant webhooks (contract webhooks.md, "Outbound tenant webhooks").

Any service calls ``emit(tenant_id, "payment.succeeded", {...})`` inside its unit of work;
after the commit the ``webhooks`` queue job ``webhook.deliver`` POSTs
``{"event", "data", "timestamp"}`` to the tenant's ``webhookUrl`` (if any) with
``X-Event-Type``, ``X-Webhook-Signature`` = hex HMAC-SHA256(body bytes, tenant
webhookSecret) and, as the contract's replay-protection improvement, ``X-Webhook-Timestamp``
plus ``X-Webhook-Signature-V2`` = hex HMAC-SHA256(``"{timestamp}.{body}"``). 10 s timeout;
non-2xx or network error -> retried by the queue: 3 attempts, exponential backoff from 2 s.
In production only public hosts are called (``kit.netguard``: checked, resolved, pinned;
redirects never followed).
The body (and so the signature) is fixed when the event is emitted: a retry sends the very
same bytes. Every attempt is written to the tenant's delivery log (``webhooks.deliveries``;
``GET /api/webhooks/deliveries``), whose id is chosen here at emission; ``requeue`` sends
a logged delivery again (``POST /api/webhooks/deliveries/{id}/retry``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import httpx
import structlog
from sqlalchemy import select

from novabilling.kit.crypto import hmac_sha256_hex
from novabilling.kit.ids import new_id
from novabilling.kit.jobs import QUEUE_WEBHOOKS, Job, JobHandler, enqueue_after_commit
from novabilling.kit.netguard import Pinned, UnsafeDestination, check_public_url, resolve_public
from novabilling.kit.timestamps import to_wire
from novabilling.tenancy.models import Tenant
from novabilling.webhooks.deliveries import Attempt, record_attempt

if TYPE_CHECKING:
    from novabilling.kit.clock import Clock
    from novabilling.runtime import Runtime

log = structlog.get_logger(__name__)

DELIVER = "webhook.deliver"
ATTEMPTS = 3
TIMEOUT_SECONDS = 10.0
_TRANSPORT_KEY = "webhooks.outbound_transport"  # set by ``use_transport``


def use_transport(runtime: Runtime, transport: httpx.AsyncBaseTransport) -> None:
    """Send this runtime's deliveries through ``transport`` (tests, demos: an ASGI app or
    a mock instead of the network)."""
    runtime.extras[_TRANSPORT_KEY] = transport


class DeliveryFailed(Exception):
    """Non-2xx or network error: the queue retries."""


def body_bytes(event: str, data: dict[str, Any], timestamp: str) -> bytes:
    return json.dumps(
        {"event": event, "data": data, "timestamp": timestamp}, separators=(",", ":")
    ).encode()


def signature(secret: str, body: bytes) -> str:
    return hmac_sha256_hex(secret, body)


# False while a unit of work runs for a tenant known to have no webhookUrl (see
# ``subscribed``); True (queue, the delivery job decides) everywhere else.
_subscribed: ContextVar[bool] = ContextVar("nb_webhooks_subscribed", default=True)


@contextmanager
def subscribed(has_webhook_url: bool) -> Iterator[None]:
    """Run a unit of work knowing whether its tenant has a ``webhookUrl``. Without one,
    ``emit`` queues nothing: no outbox row, no queue push, no delivery job that would only
    find no URL - on the hottest writes (customers) that was most of the request's work.
    The request's tenant profile is cached per process (``principal_cache_seconds``): an
    API process other than the one that saved a new webhookUrl sees it within that time."""
    previous = _subscribed.get()
    token = _subscribed.set(has_webhook_url)
    try:
        yield
    finally:
        try:
            _subscribed.reset(token)
        except ValueError:  # exited in another context (a framework's teardown)
            _subscribed.set(previous)


def emit(
    tenant_id: str, event: str, data: dict[str, Any], *, clock: Clock, key: str | None = None
) -> None:
    """Queue ``event`` for the tenant after the current commit. ``key`` (e.g. the payment
    id) makes the event once-only: a handler that runs twice sends it once. Nothing is
    queued inside ``subscribed(False)``."""
    if not _subscribed.get():
        return
    timestamp = to_wire(clock.now())
    job_id = f"wh:{tenant_id}:{event}:{key}" if key else None
    enqueue_after_commit(
        QUEUE_WEBHOOKS,
        DELIVER,
        {
            "tenant_id": tenant_id,
            "event": event,
            "data": data,
            "timestamp": timestamp,
            "delivery_id": new_id(),
        },
        job_id=job_id,
        attempts=ATTEMPTS,
    )


def requeue(
    tenant_id: str,
    *,
    delivery_id: str,
    event: str,
    data: dict[str, Any],
    timestamp: str,
    round_: int,
) -> None:
    """Queue a logged delivery again after the commit: the same body (and signature),
    ``ATTEMPTS`` more tries, counted on the same log row. ``round_`` (the row's attempts
    so far) keeps the job id fresh for each retry request."""
    enqueue_after_commit(
        QUEUE_WEBHOOKS,
        DELIVER,
        {
            "tenant_id": tenant_id,
            "event": event,
            "data": data,
            "timestamp": timestamp,
            "delivery_id": delivery_id,
        },
        job_id=f"wh-retry:{tenant_id}:{delivery_id}:{round_}",
        attempts=ATTEMPTS,
    )


async def deliver(runtime: Runtime, job: Job) -> None:
    tenant_id = str(job.data["tenant_id"])
    event = str(job.data["event"])
    async with runtime.central() as central:
        tenant = await central.scalar(select(Tenant).where(Tenant.id == tenant_id))
    if tenant is None or not tenant.webhook_url:
        return
    secret = runtime.encryptor.decrypt(tenant.webhook_secret_encrypted, aad=tenant_id.encode())
    timestamp = str(job.data["timestamp"])
    body = body_bytes(event, dict(job.data["data"]), timestamp)
    headers = {
        "Content-Type": "application/json",
        "X-Event-Type": event,
        "X-Webhook-Signature": signature(secret, body) if secret else "",
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature-V2": signature(secret, timestamp.encode() + b"." + body),
    }
    transport = runtime.extras.get(_TRANSPORT_KEY)
    attempt = job.attempts_made + 1
    try:
        target = await destination(
            tenant.webhook_url, public_only=runtime.settings.webhooks_public_only
        )
    except UnsafeDestination:
        log.warning("webhook.destination_refused", webhook_event=event, attempt=attempt)
        await record_attempt(
            runtime,
            job,
            url=tenant.webhook_url,
            attempt=Attempt(False, error="destination refused"),
        )
        raise DeliveryFailed("destination refused") from None
    try:
        async with httpx.AsyncClient(
            transport=transport, timeout=TIMEOUT_SECONDS, follow_redirects=False
        ) as client:
            response = await client.post(
                target.url,
                content=body,
                headers={**headers, **target.headers},
                extensions=target.extensions,
            )
    except httpx.HTTPError as exc:
        log.warning("webhook.delivery_failed", webhook_event=event, attempt=attempt, error=str(exc))
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        await record_attempt(
            runtime, job, url=tenant.webhook_url, attempt=Attempt(False, error=error)
        )
        raise DeliveryFailed(str(exc)) from exc
    ok = 200 <= response.status_code < 300
    await record_attempt(
        runtime,
        job,
        url=tenant.webhook_url,
        attempt=Attempt(
            ok, code=response.status_code, error=None if ok else f"HTTP {response.status_code}"
        ),
    )
    if not ok:
        log.warning(
            "webhook.delivery_failed",
            webhook_event=event,
            attempt=attempt,
            status=response.status_code,
        )
        raise DeliveryFailed(f"HTTP {response.status_code}")
    log.info("webhook.delivered", webhook_event=event, attempt=attempt)


async def destination(url: str, *, public_only: bool) -> Pinned:
    """Where to send: as configured, or (``public_only``, production) the URL checked,
    its host resolved to public addresses only and pinned to one of them. Redirects are
    never followed (a 3xx is a failed delivery), so none can lead to a private range."""
    if not public_only:
        return Pinned(url=httpx.URL(url), headers={}, extensions={})
    return await resolve_public(check_public_url(url))


def handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    async def run(job: Job) -> None:
        await deliver(runtime, job)

    return {(QUEUE_WEBHOOKS, DELIVER): run}
