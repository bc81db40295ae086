"""Pure ASGI middleware (cheap on the hot path): request id, security headers, body size
limit, Prometheus metrics and a structured access log bound to the request id."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import orjson
import structlog
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from novabilling.kit.clock import SystemClock
from novabilling.kit.db import is_unavailable
from novabilling.kit.timestamps import to_wire

log = structlog.get_logger("novabilling.access")

REQUESTS = Counter("nb_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "nb_http_request_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"SAMEORIGIN"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        b"script-src 'self' 'unsafe-inline'",
    ),
]
_QUIET_PATHS = ("/health", "/metrics")
RETRY_AFTER_SECONDS = 5


def _request_path(scope: Scope) -> str:
    """The path as sent, with its query string (contract README §7 ``path``)."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else scope["path"]
    query = scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


def _error_body(scope: Scope, status: int, message: str) -> bytes:
    return orjson.dumps(
        {
            "statusCode": status,
            "message": message,
            "errors": None,
            "timestamp": to_wire(SystemClock().now()),
            "path": _request_path(scope),
        }
    )


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._reject_large(scope, send, request_id)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLarge()
            return message

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                out = list(message.get("headers", []))
                out.append((b"x-request-id", request_id.encode()))
                out.extend(_SECURITY_HEADERS)
                message["headers"] = out
            await send(message)

        try:
            await self.app(scope, limited_receive, send_wrapper)
        except _BodyTooLarge:
            if response_started:
                raise
            await self._reject_large(scope, send, request_id)
            status = 413
        except Exception as exc:
            # Answer unexpected failures here, inside this middleware, so the 500 carries
            # X-Request-Id and the security headers (Starlette's outermost error handler
            # would answer without them).
            if response_started:
                raise
            if is_unavailable(exc):
                # the database (or another backing service) is down or restarting: not a
                # bug, a retry later may succeed (issue 14, defect 9)
                log.warning("request.unavailable", error_type=type(exc).__name__)
                body = _error_body(scope, 503, "Service Unavailable")
                start = _json_start(503, body)
                start["headers"].append((b"retry-after", str(RETRY_AFTER_SECONDS).encode()))
                await send_wrapper(start)
            else:
                log.exception("request.unhandled", error_type=type(exc).__name__)
                body = _error_body(scope, 500, "Internal server error")
                await send_wrapper(_json_start(500, body))
            await send_wrapper({"type": "http.response.body", "body": body})
        finally:
            self._record(scope, status, time.perf_counter() - started)

    async def _reject_large(self, scope: Scope, send: Send, request_id: str) -> None:
        body = _error_body(scope, 413, "Payload Too Large")
        start = _json_start(413, body)
        start["headers"].append((b"x-request-id", request_id.encode()))
        start["headers"].extend(_SECURITY_HEADERS)
        await send(start)
        await send({"type": "http.response.body", "body": body})

    @staticmethod
    def _record(scope: Scope, status: int, elapsed: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        REQUESTS.labels(method, template, str(status)).inc()
        LATENCY.labels(method, template).observe(elapsed)
        if scope["path"] not in _QUIET_PATHS:
            log.info(
                "http.request",
                method=method,
                path=scope["path"],
                route=template,
                status=status,
                ms=round(elapsed * 1000, 2),
            )


def _json_start(status: int, body: bytes) -> Message:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }


class _BodyTooLarge(BaseException):  # noqa: N818
    """Raised from ``receive`` when a streamed body passes the limit. A BaseException so
    FastAPI's body reader (``except Exception`` -> 400 "error parsing the body") lets it
    through to this middleware, which answers 413."""
