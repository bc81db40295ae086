"""The one mapping from errors to the contract's body (contract README §7):
``{statusCode, message, errors, timestamp, path}``; never 422, never ``detail``."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from novabilling.errors import DomainError, FieldError, Invalid, RateLimited, Unauthorized
from novabilling.kit.clock import SystemClock
from novabilling.kit.timestamps import to_wire
from novabilling.web.responses import JSONBytes as ORJSONResponse

log = structlog.get_logger(__name__)

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal server error",
    503: "Service Unavailable",
}


def _path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else request.url.path
    query = request.url.query
    return path + (f"?{query}" if query else "")


def error_response(
    request: Request,
    status: int,
    message: str,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> ORJSONResponse:
    body = {
        "statusCode": status,
        "message": message,
        "errors": [{"field": e.field, "message": e.message} for e in errors] if errors else None,
        "timestamp": to_wire(SystemClock().now()),
        "path": _path(request),
    }
    rate_headers: dict[str, str] | None = getattr(request.state, "rate_limit_headers", None)
    if rate_headers:
        headers = {**rate_headers, **(headers or {})}
    return ORJSONResponse(body, status_code=status, headers=headers)


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    # pydantic puts the validator kind in the loc for tagged/function validators
    parts = [p for p in parts if not p.startswith("function-") and p != "[key]"]
    return ".".join(parts) or "body"


def field_errors(exc: RequestValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors():
        kind = err.get("type", "")
        loc = tuple(err.get("loc", ()))
        if kind == "json_invalid":
            out.append(FieldError("body", "body must be valid JSON"))
            continue
        if kind == "extra_forbidden":
            name = str(loc[-1]) if loc else "unknown"
            parent = _field_path(loc[:-1])
            full = name if parent == "body" else f"{parent}.{name}"
            out.append(FieldError("property", f"property {full} should not exist"))
            continue
        field = _field_path(loc)
        text = str(err.get("msg", "is invalid"))
        if text.startswith("Value error, "):
            text = text[len("Value error, ") :]
        if kind == "missing":
            text = "should not be empty"
        out.append(FieldError(field, f"{field} {text}" if not text.startswith(field) else text))
    return out


async def auth_first(request: Request) -> ORJSONResponse | None:
    """Auth is checked before validation: a bad body without a credential is a 401."""
    guard = getattr(request.app.state, "auth_guard", None)
    if guard is None:
        return None
    try:
        await guard(request)
    except Unauthorized as exc:
        return error_response(request, 401, exc.message)
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> ORJSONResponse:
        headers = None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        if exc.status >= 500:
            log.error("request.failed", error=exc.message)
        errors = exc.errors if isinstance(exc, Invalid) else None
        return error_response(request, exc.status, exc.message, errors, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> ORJSONResponse:
        denied = await auth_first(request)
        if denied is not None:
            return denied
        return error_response(request, 400, "Validation failed", field_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> ORJSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else _REASONS.get(exc.status_code)
        if exc.status_code == 404 and message == "Not Found":
            message = f"Cannot {request.method} {request.url.path}"
        return error_response(request, exc.status_code, message or "Error")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> ORJSONResponse:
        log.exception("request.unhandled", error_type=type(exc).__name__)
        return error_response(request, 500, "Internal server error")
