"""The OpenAPI document says what the API does: validation errors are 400 with the
contract's error body (README §7), never FastAPI's 422 ``HTTPValidationError``; and which
credential each operation takes (contract README §2), so the console's Authorize works.

``install(app, public_prefixes=...)`` wraps ``app.openapi`` so the generated schema is
post-processed once (then cached by FastAPI as usual): every operation's ``422`` response
becomes a ``400`` pointing at the ``ErrorResponse`` schema, FastAPI's
``HTTPValidationError`` / ``ValidationError`` schemas are dropped when nothing refers to
them any more, and every ``/api`` operation outside ``public_prefixes`` declares its bearer
scheme (``/api/tenants/me*``: the access token; the rest: an API key or an access token)
with the 401 it answers without one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

ERROR_SCHEMA = "ErrorResponse"
_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

ERROR_BODY: dict[str, Any] = {
    "title": ERROR_SCHEMA,
    "description": "Every 4xx/5xx answer. `errors` is null except on validation failures.",
    "type": "object",
    "required": ["statusCode", "message", "errors", "timestamp", "path"],
    "additionalProperties": False,
    "properties": {
        "statusCode": {"type": "integer", "examples": [400]},
        "message": {"type": "string", "examples": ["Validation failed"]},
        "errors": {
            "anyOf": [
                {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "additionalProperties": False,
                        "properties": {
                            "field": {"type": "string", "examples": ["email"]},
                            "message": {
                                "type": "string",
                                "examples": ["email must be an email"],
                            },
                        },
                    },
                },
                {"type": "null"},
            ]
        },
        "timestamp": {
            "type": "string",
            "format": "date-time",
            "examples": ["2026-03-01T09:15:02.123Z"],
        },
        "path": {"type": "string", "examples": ["/api/customers?page=0"]},
    },
}

API_KEY_SCHEME = "apiKey"
ACCESS_TOKEN_SCHEME = "accessToken"
SESSION_PREFIX = "/api/tenants/me"
SECURITY_SCHEMES: dict[str, Any] = {
    API_KEY_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "API key",
        "description": "A tenant API key (returned by register, shown again by "
        "`GET /api/tenants/me`): `Authorization: Bearer <key>`. Data routes "
        "also take an access token.",
    },
    ACCESS_TOKEN_SCHEME: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The `accessToken` of `POST /api/auth/login` (or register / "
        "refresh). Required by `/api/tenants/me*`.",
    },
}

_UNAUTHORIZED: dict[str, Any] = {
    "description": "Missing, malformed, expired or revoked credential",
    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
}

_BAD_REQUEST: dict[str, Any] = {
    "description": "Validation failed (one entry per broken rule in `errors`), malformed "
    "JSON, or a business rule",
    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
}


def contract_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``schema`` in place (and return it): 422 -> 400 + ``ErrorResponse``."""
    rewritten = False
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses.setdefault("400", dict(_BAD_REQUEST))
                rewritten = True
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    if rewritten:
        components[ERROR_SCHEMA] = ERROR_BODY
    for name in _FASTAPI_SCHEMAS:
        body = components.pop(name, None)
        if body is not None and f'"#/components/schemas/{name}"' in json.dumps(schema):
            components[name] = body  # still referred to (not FastAPI's own): keep it
    return schema


def security(schema: dict[str, Any], *, public_prefixes: tuple[str, ...]) -> dict[str, Any]:
    """Declare the bearer schemes and each ``/api`` operation's credential, in place."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/") or path.startswith(public_prefixes):
            continue
        if path.startswith(SESSION_PREFIX):
            requirement: list[dict[str, list[str]]] = [{ACCESS_TOKEN_SCHEME: []}]
        else:
            requirement = [{API_KEY_SCHEME: []}, {ACCESS_TOKEN_SCHEME: []}]
        for method, operation in operations.items():
            if method in _METHODS and isinstance(operation, dict):
                operation["security"] = requirement
                operation.setdefault("responses", {}).setdefault("401", dict(_UNAUTHORIZED))
    components = schema.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    components.setdefault("schemas", {})[ERROR_SCHEMA] = ERROR_BODY
    return schema


IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Any 1-255 visible ASCII characters, unique per operation you mean "
    "(e.g. a UUID). Repeating a request with the same key and the same body within 24 h "
    "replays the first 2xx answer (status and body, header `Idempotent-Replayed: true`) "
    "without doing the work again. Keys are per tenant.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}

_IDEMPOTENCY_CONFLICT: dict[str, Any] = {
    "description": "Idempotency-Key already used with a different request, or the first "
    "request with this key is still being processed (retry later)",
    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}},
}


def idempotency(schema: dict[str, Any], *, public_prefixes: tuple[str, ...]) -> dict[str, Any]:
    """Every mutating ``/api`` operation outside the public ones takes ``Idempotency-Key``."""
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/api/") or path.startswith(public_prefixes):
            continue
        for method, operation in operations.items():
            if method in ("post", "put", "patch", "delete") and isinstance(operation, dict):
                operation.setdefault("parameters", []).append(dict(IDEMPOTENCY_PARAMETER))
                responses = operation.setdefault("responses", {})
                responses.setdefault("400", dict(_BAD_REQUEST))  # a malformed key
                responses.setdefault("409", dict(_IDEMPOTENCY_CONFLICT))
    return schema


def install(app: FastAPI, *, public_prefixes: tuple[str, ...]) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = contract_errors(generate())
            schema = security(schema, public_prefixes=public_prefixes)
            app.openapi_schema = idempotency(schema, public_prefixes=public_prefixes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
