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


_PATTERNS = {
    r"^[a-z0-9_]+$": "must contain only lowercase letters, digits and underscores",
    r'^[^"\\\x00-\x1f]+$': 'must not contain ", \\ or control characters',
}
_CURRENCY_RULES = ("string_too_short", "string_too_long", "string_pattern_mismatch")


def _choices(expected: str) -> str:
    """``"'now' or 'period_end'"`` -> ``"now, period_end"``."""
    return expected.replace("'", "").replace(" or ", ", ")


def _plural(n: Any, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def human(kind: str, field: str, ctx: dict[str, Any], fallback: str) -> str:
    """A pydantic error as a sentence about ``field`` for a person (issue 13):
    ``currency must be a 3-letter ISO code``, not ``String should have at most 3
    characters``. Custom validators' messages (``must be an email``) pass through."""
    name = field.rsplit(".", 1)[-1]
    if kind in _CURRENCY_RULES and name.lower().endswith("currency"):
        return "must be a 3-letter ISO currency code (e.g. NGN, USD)"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return "must not be empty" if n == 1 else f"must be at least {_plural(n, 'character')}"
    if kind == "string_too_long":
        return f"must be at most {_plural(ctx.get('max_length'), 'character')}"
    if kind == "too_short":
        return f"must contain at least {_plural(ctx.get('min_length'), 'item')}"
    if kind == "too_long":
        return f"must contain at most {_plural(ctx.get('max_length'), 'item')}"
    if kind == "string_pattern_mismatch":
        return _PATTERNS.get(str(ctx.get("pattern")), "has an invalid format")
    if kind in ("literal_error", "enum"):
        return f"must be one of: {_choices(str(ctx.get('expected', '')))}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "less_than_equal": ("at most", "le"),
        "greater_than": ("greater than", "gt"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {ctx.get(key)}"
    simple = {
        "string_type": "must be a string",
        "string_unicode": "must be a string",
        "int_type": "must be an integer",
        "int_parsing": "must be an integer",
        "int_from_float": "must be a whole number",
        "float_type": "must be a number",
        "float_parsing": "must be a number",
        "decimal_type": "must be a number",
        "decimal_parsing": "must be a number",
        "bool_type": "must be a boolean (true or false)",
        "bool_parsing": "must be a boolean (true or false)",
        "dict_type": "must be an object",
        "model_type": "must be an object",
        "model_attributes_type": "must be an object",
        "list_type": "must be an array",
        "datetime_type": "must be a valid ISO 8601 date string",
        "datetime_parsing": "must be a valid ISO 8601 date string",
        "datetime_from_date_parsing": "must be a valid ISO 8601 date string",
        "date_parsing": "must be a valid ISO 8601 date string",
        "none_required": "must be null",
        "union_tag_invalid": "has an unknown type",
    }
    return simple.get(kind, fallback)


_JSON_TYPES = ("application/json", "+json")


def wrong_content_type(request: Request, exc: RequestValidationError) -> FieldError | None:
    """A body sent as something else than JSON: say so, instead of a type error."""
    content_type = request.headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if not media or media == "application/json" or media.endswith("+json"):
        return None
    if not any(tuple(err.get("loc", ()))[:1] == ("body",) for err in exc.errors()):
        return None
    return FieldError("body", f"body must be sent as application/json (Content-Type was {media})")


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
        else:
            text = human(kind, field, dict(err.get("ctx") or {}), text)
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
        content = wrong_content_type(request, exc)
        errors = [content] if content is not None else field_errors(exc)
        return error_response(request, 400, "Validation failed", errors)

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
