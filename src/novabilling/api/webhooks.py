"""POST /webhooks/{provider}[/{tenantKey}]: no /api prefix, no credential (contract
webhooks.md). Thin: raw bytes in, ``inbound.receive``, the contract's 200 body out.

The intake is the hottest write path (providers burst), so it is served by plain Starlette
routes (``intake_routes``, mounted by app.py ahead of every API router): no dependency
injection, no body model, the answer pre-serialised. Rate limiting (contract README §9),
the error bodies (the app's exception handlers) and the middleware (request id, metrics,
access log) are the same as everywhere. ``router`` declares the same two operations with
the same handler, for the OpenAPI document (they would serve the same answers).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.routing import Match, Route
from starlette.types import Scope

from novabilling.errors import Invalid
from novabilling.kit.jsonguard import JsonRejected, parse_body
from novabilling.kit.wire import WireOut
from novabilling.payments import inbound
from novabilling.web.deps import check_rate_limit, get_runtime
from novabilling.web.openapi import returns
from novabilling.web.responses import JSONBytes

BARE = "/webhooks/{provider}"
JSON_PROVIDERS = frozenset({"paystack", "flutterwave", "stripe", "mpesa"})


def _check_json(body: bytes) -> None:
    """The JSON providers' bodies: strict JSON, <= 32 levels, int64, finite, no NUL."""
    try:
        parse_body(body)
    except JsonRejected as exc:
        raise Invalid(exc.field, exc.message) from None


PER_TENANT = "/webhooks/{provider}/{tenant_key}"


async def intake(request: Request) -> JSONBytes:
    params = request.path_params
    body = await request.body()
    if params["provider"].lower() in JSON_PROVIDERS:
        _check_json(body)  # hostile nesting / values: 400 before any other work
    headers = await check_rate_limit(request, request.scope["route"].path)
    answer = await inbound.receive(
        get_runtime(request),
        provider=params["provider"],
        tenant_key=params.get("tenant_key"),
        body=body,
        headers=request.headers,
    )
    return JSONBytes(answer, headers=headers)


class _IntakeRoute(Route):
    """A Starlette route that records itself in the scope (as FastAPI's routes do), so
    the metrics and the access log label requests with the path template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def intake_routes() -> list[Route]:
    return [
        _IntakeRoute(BARE, intake, methods=["POST"], include_in_schema=False),
        _IntakeRoute(PER_TENANT, intake, methods=["POST"], include_in_schema=False),
    ]


router = APIRouter(tags=["webhooks"])


class StripeAck(WireOut):
    """Stripe's answer."""

    received: bool


class ProviderAck(WireOut):
    """Paystack's, Flutterwave's and M-Pesa's answer."""

    status: str = Field(examples=["success"])


ACK = returns(
    StripeAck | ProviderAck,
    description="Received (applied once, however often the provider repeats it)",
    errors={
        401: "Invalid or missing signature, or not confirmed by the provider",
        404: "Unknown provider",
    },
)


@router.post(
    BARE, summary="Provider webhook (tenant found from our payment reference)", responses=ACK
)
async def provider_webhook(provider: str, request: Request) -> JSONBytes:
    """Same handler; the intake route ahead of it answers first."""
    return await intake(request)


@router.post(PER_TENANT, summary="Provider webhook for one tenant", responses=ACK)
async def tenant_webhook(provider: str, tenant_key: str, request: Request) -> JSONBytes:
    """Same handler; the intake route ahead of it answers first."""
    return await intake(request)
