"""/health (liveness, contract shape), /health/ready (DB + Redis), /metrics.

Load balancers poll ``/health`` all the time: ``lean_routes`` serves it ahead of the
API routers (no walk of FastAPI's route tree, which cost more than the answer itself);
the FastAPI operation declares it for the OpenAPI document and gives the same answer."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.routing import Route

from novabilling.kit.db import is_unavailable
from novabilling.kit.timestamps import to_wire
from novabilling.kit.wire import Timestamp, WireOut
from novabilling.web.deps import get_runtime
from novabilling.web.openapi import returns
from novabilling.web.responses import JSONBytes
from novabilling.web.routing import LeanRoute

router = APIRouter(include_in_schema=True, tags=["health"])


class HealthOut(WireOut):
    status: str
    timestamp: Timestamp
    uptime: float


class ReadyOut(WireOut):
    status: str
    checks: dict[str, str]
    timestamp: Timestamp


READY = {
    **returns(ReadyOut, description="Every dependency answers"),
    503: {"model": ReadyOut, "description": "A dependency is down (`checks` says which)"},
}


def _liveness(request: Request) -> dict[str, Any]:
    runtime = get_runtime(request)
    return {
        "status": "ok",
        "timestamp": to_wire(runtime.clock.now()),
        "uptime": round(time.monotonic() - runtime.started_at, 3),
    }


async def lean_health(request: Request) -> JSONBytes:
    return JSONBytes(_liveness(request))


def lean_routes() -> list[Route]:
    return [LeanRoute("/health", lean_health, methods=["GET"], include_in_schema=False)]


@router.get("/health", summary="Liveness", responses=returns(HealthOut))
async def health(request: Request) -> dict[str, Any]:
    """Served by the lean route ahead of this one (same answer)."""
    return _liveness(request)


@router.get("/health/ready", summary="Readiness: the database and Redis answer", responses=READY)
async def ready(request: Request) -> JSONBytes:
    runtime = get_runtime(request)
    checks: dict[str, str] = {}
    for attempt in (1, 2):  # a pooled connection killed by a restart fails once, then
        try:  # the pool is invalidated: only a second failure means "down"
            async with runtime.central_engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
            break
        except Exception as exc:
            checks["database"] = f"down: {type(exc).__name__}"
            if attempt == 2 or not is_unavailable(exc):
                break
    if runtime.redis is not None:
        try:
            await runtime.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"down: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": checks,
        "timestamp": to_wire(runtime.clock.now()),
    }
    return JSONBytes(body, status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
