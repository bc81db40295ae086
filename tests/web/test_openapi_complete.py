"""Every operation of the OpenAPI document is complete (issue 13): a typed success body,
an explicit summary, the error answers it can give with the contract's error body, and
the optional bodies the invoice actions read. The models only document: routes keep
returning dicts (nothing is validated per request)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from novabilling.app import create_app
from novabilling.config import Settings
from novabilling.kit.wire import WireOut
from novabilling.web.openapi import declared_model

METHODS = ("get", "put", "post", "delete", "patch")
ERROR_REF = "#/components/schemas/ErrorResponse"


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings(env="test", log_level="WARNING"))


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in METHODS
    ]


def typed(schema: dict[str, Any], spec: dict[str, Any]) -> bool:
    """A schema with known properties: a component with properties, a list of those, or
    a choice between those."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        target = spec["components"]["schemas"][name]
        return bool(target.get("properties")) or typed(target, spec)
    if schema.get("type") == "array":
        return typed(schema.get("items", {}), spec)
    if "anyOf" in schema or "oneOf" in schema:
        return all(typed(s, spec) for s in schema.get("anyOf", schema.get("oneOf", [])))
    return schema.get("type") == "object" and bool(schema.get("properties"))


def test_every_operation_has_a_typed_success_body(spec: dict[str, Any]) -> None:
    untyped = []
    for method, path, op in operations(spec):
        ok = {code: r for code, r in op["responses"].items() if code.startswith("2")}
        assert ok, (method, path)
        for code, response in ok.items():
            content = response.get("content", {})
            if "application/pdf" in content:  # a document: binary by definition
                assert content["application/pdf"]["schema"]["format"] == "binary"
                continue
            schema = content.get("application/json", {}).get("schema", {})
            if not typed(schema, spec):
                untyped.append(f"{method.upper()} {path} {code}")
    assert not untyped, "untyped success bodies (use responses=returns(Model)):\n" + "\n".join(
        untyped
    )
    assert len(operations(spec)) >= 88


def test_every_operation_has_an_explicit_summary(app: FastAPI, spec: dict[str, Any]) -> None:
    missing = [
        f"{sorted(context.methods or [])} {context.path}"
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and context.include_in_schema
        and not context.summary
    ]
    assert not missing, "routes without summary=...:\n" + "\n".join(missing)
    for method, path, op in operations(spec):
        assert op.get("summary"), (method, path)


def _error(op: dict[str, Any], code: str) -> bool:
    response = op["responses"].get(code)
    if response is None:
        return False
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref") == ERROR_REF


def test_every_operation_documents_its_errors(spec: dict[str, Any]) -> None:
    public = ("/api/auth", "/api/currencies")
    for method, path, op in operations(spec):
        takes_input = bool(op.get("parameters") or op.get("requestBody"))
        if takes_input:
            assert _error(op, "400"), (method, path, "400")
        if path.startswith("/api/") and not path.startswith(public):
            assert _error(op, "401"), (method, path, "401")
        if "{" in path:
            assert _error(op, "404"), (method, path, "404")
        if path.startswith("/api/") and method != "get" and not path.startswith(public):
            assert _error(op, "409"), (method, path, "409")
    refresh = spec["paths"]["/api/auth/refresh"]["post"]
    assert _error(refresh, "401")
    create = spec["paths"]["/api/subscriptions"]["post"]
    assert _error(create, "404")  # an unknown customer or plan in the body


def test_invoice_actions_document_their_optional_bodies(spec: dict[str, Any]) -> None:
    expected = {
        "checkout": {"provider", "callbackUrl"},
        "mark-paid": {"paymentMethod"},
        "send-email": {"email"},
    }
    for action, fields in expected.items():
        op = spec["paths"][f"/api/invoices/{{invoice_id}}/{action}"]["post"]
        body = op["requestBody"]
        assert body["required"] is False
        schema = body["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == fields, action


def test_examples_are_given(spec: dict[str, Any]) -> None:
    customer = spec["components"]["schemas"]["CustomerOut"]
    assert customer["properties"]["createdAt"]["examples"] == ["2026-03-01T09:15:02.123Z"]
    amount = spec["components"]["schemas"]["InvoiceOut"]["properties"]["amount"]
    assert amount["examples"]
    error = spec["components"]["schemas"]["ErrorResponse"]
    assert error["properties"]["message"]["examples"]


def test_models_only_document(app: FastAPI) -> None:
    """No route validates or re-serialises its answer through a documentation model: the
    per-request path stays orjson over the dict the route built."""
    declared = 0
    for context in iter_route_contexts(app.routes):
        if not isinstance(context.original_route, APIRoute):
            continue
        if declared_model(context) is not None:
            declared += 1
        field = context.response_field
        if field is not None:
            annotation = getattr(field.field_info, "annotation", None)
            assert not (isinstance(annotation, type) and issubclass(annotation, WireOut)), (
                context.path
            )
    assert declared >= 80
