"""The OpenAPI document says what the API does: validation errors are 400 with the
contract's error body (README §7), never FastAPI's 422 ``HTTPValidationError``; and which
credential each operation takes (contract README §2), so the console's Authorize works.

``install(app, public_prefixes=...)`` wraps ``app.openapi`` so the generated schema is
post-processed once (then cached by FastAPI as usual): every operation's ``422`` response
becomes a ``400`` pointing at the ``ErrorResponse`` schema, FastAPI's
``HTTPValidationError`` / ``ValidationError`` schemas are dropped when nothing refers to
them any more, and every ``/api`` operation outside ``public_prefixes`` declares its bearer
scheme (``/api/tenants/me*``: the access token; the rest: an API key or an access token)
with the 401 it answers without one; an operation with a path id answers 404.

Typed answers without per-request cost: routes return plain dicts (built by the domain's
``schemas.py``) rendered by orjson; a route declares the model of its success body for the
document only, ``responses=returns(CustomerOut, 201, ...)``. The document is generated from
copies of the routes in which that model replaces the ``dict[str, Any]`` return annotation,
so nothing is validated or re-serialised per request (the schemathesis run in the tests
checks that the answers match the models).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.utils import create_model_field
from pydantic import BaseModel

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


_ERROR_CONTENT: dict[str, Any] = {
    "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}
}
_NOT_FOUND: dict[str, Any] = {
    "description": "No such object for this tenant (another tenant's id is unknown too)",
    "content": _ERROR_CONTENT,
}


PDF_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The document",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}
"""``responses=`` of a route answering a PDF (with ``response_class=Response``)."""


DOCUMENTED_MODEL = "documentedModel"
"""Where ``returns`` puts the model in ``responses``: not FastAPI's ``model`` key, for
which FastAPI builds a validator and serialiser per route and per included copy of it
(~1.5 MiB in an API process), never used per request here. ``_Documented`` hands it to
FastAPI as ``model`` when the document is generated."""


def returns(
    model: Any,
    status: int = 200,
    *,
    description: str = "Success",
    example: Any = None,
    errors: Mapping[int, str] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a route: its success body is ``model`` (a pydantic model, or
    ``list[Model]``), documented only - the route keeps returning a dict, nothing is
    validated per request. ``errors``: the error answers the route can give beyond the
    ones every operation documents (400 on input, 401 without a credential, 404 with a
    path id, 409 on mutations), each with the contract's error body."""
    ok: dict[str, Any] = {DOCUMENTED_MODEL: model, "description": description}
    if example is not None:
        ok["content"] = {"application/json": {"example": example}}
    out: dict[int | str, dict[str, Any]] = {status: ok}
    for code, text in (errors or {}).items():
        out[code] = {"description": text, "content": _ERROR_CONTENT}
    return out


def optional_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra=`` of a route that reads an optional JSON body itself: documents
    ``model`` as that body (its fields as the route reads them)."""
    schema = model.model_json_schema(by_alias=True)
    return {"requestBody": {"required": False, "content": {"application/json": {"schema": schema}}}}


def declared_model(route: Any) -> Any:
    """The success model a route declared with ``returns`` (None: none declared)."""
    status = route.status_code or 200
    responses = route.responses or {}
    entry = responses.get(status) or responses.get(str(status)) or {}
    return entry.get(DOCUMENTED_MODEL)


class _Documented(RouteContext):
    """A route as the document sees it: its declared model stands alone (FastAPI would
    merge it with the schema of the ``dict[str, Any]`` return annotation), under
    ``responses[status]["model"]`` as FastAPI documents it, with the response field FastAPI
    would have built for it when the route was declared."""

    def __getattr__(self, name: str) -> Any:
        if name == "response_field":
            return None
        return super().__getattr__(name)

    @cached_property
    def responses(self) -> dict[int | str, dict[str, Any]]:
        out: dict[int | str, dict[str, Any]] = {}
        for code, entry in super().__getattr__("responses").items():
            entry = dict(entry)
            if DOCUMENTED_MODEL in entry:
                entry["model"] = entry.pop(DOCUMENTED_MODEL)
            out[code] = entry
        return out

    @cached_property
    def response_fields(self) -> dict[int | str, Any]:
        fields = dict(super().__getattr__("response_fields"))
        unique_id = super().__getattr__("unique_id")
        for code, entry in super().__getattr__("responses").items():
            if DOCUMENTED_MODEL in entry:
                fields[code] = create_model_field(
                    name=f"Response_{code}_{unique_id}",
                    type_=entry[DOCUMENTED_MODEL],
                    mode="serialization",
                )
        return fields


def documented_routes(app: FastAPI) -> list[RouteContext]:
    out: list[RouteContext] = []
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and declared_model(context) is not None:
            context = _Documented(context.route, context._route_context)
        out.append(context)
    return out


def not_found(schema: dict[str, Any]) -> dict[str, Any]:
    """Every operation with a path parameter can answer 404 (unknown id), in place."""
    for path, operations in schema.get("paths", {}).items():
        if "{" not in path:
            continue
        for method, operation in operations.items():
            if method in _METHODS and isinstance(operation, dict):
                operation.setdefault("responses", {}).setdefault("404", dict(_NOT_FOUND))
    return schema


def error_bodies(schema: dict[str, Any]) -> dict[str, Any]:
    """Every 4xx/5xx a route declares without a body has the contract's error body."""
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in _METHODS or not isinstance(operation, dict):
                continue
            for code, response in operation.get("responses", {}).items():
                if code[:1] in ("4", "5") and "content" not in response:
                    response["content"] = _ERROR_CONTENT
    return schema


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


def generate(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document (as ``FastAPI.openapi`` makes it) over the documented routes."""
    return get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        terms_of_service=app.terms_of_service,
        contact=app.contact,
        license_info=app.license_info,
        routes=documented_routes(app),
        webhooks=app.webhooks.routes,
        tags=app.openapi_tags,
        servers=app.servers,
        separate_input_output_schemas=app.separate_input_output_schemas,
        external_docs=app.openapi_external_docs,
    )


def install(app: FastAPI, *, public_prefixes: tuple[str, ...]) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = error_bodies(not_found(contract_errors(generate(app))))
            schema = security(schema, public_prefixes=public_prefixes)
            app.openapi_schema = idempotency(schema, public_prefixes=public_prefixes)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
