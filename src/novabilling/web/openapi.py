"""The OpenAPI document says what the API does: validation errors are 400 with the
contract's error body (README §7), never FastAPI's 422 ``HTTPValidationError``.

``install(app)`` wraps ``app.openapi`` so the generated schema is post-processed once
(then cached by FastAPI as usual): every operation's ``422`` response becomes a ``400``
pointing at the ``ErrorResponse`` schema, and FastAPI's ``HTTPValidationError`` /
``ValidationError`` schemas are dropped when nothing refers to them any more.
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


def install(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = contract_errors(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
