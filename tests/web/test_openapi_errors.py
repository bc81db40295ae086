"""/api/openapi.json documents what the API answers on bad input: 400 with the contract's
error body (README §7), never FastAPI's 422 / ``HTTPValidationError``."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantCreds

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "null": type(None),
}


def conforms(value: Any, schema: dict[str, Any]) -> bool:
    """The JSON Schema keywords the error body schema uses."""
    if "anyOf" in schema:
        return any(conforms(value, option) for option in schema["anyOf"])
    kind = schema.get("type")
    if kind is not None and not isinstance(value, _TYPES[kind]):
        return False
    if kind == "integer" and isinstance(value, bool):
        return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        if not set(schema.get("required", ())) <= set(value):
            return False
        if schema.get("additionalProperties") is False and not set(value) <= set(props):
            return False
        return all(conforms(v, props[k]) for k, v in value.items() if k in props)
    if isinstance(value, list) and "items" in schema:
        return all(conforms(item, schema["items"]) for item in value)
    return True


async def _spec(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/api/openapi.json")
    assert r.status_code == 200
    spec: dict[str, Any] = r.json()
    assert "HTTPValidationError" not in r.text and '"ValidationError"' not in r.text
    assert '"422"' not in r.text
    return spec


async def test_operations_document_400_not_422(client: httpx.AsyncClient) -> None:
    spec = await _spec(client)
    ref = {"$ref": "#/components/schemas/ErrorResponse"}
    validated = 0
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            assert "422" not in responses, (method, path)
            takes_input = bool(op.get("parameters") or op.get("requestBody"))
            if takes_input:
                assert responses["400"]["content"]["application/json"]["schema"] == ref, (
                    method,
                    path,
                )
                validated += 1
    assert validated >= 40  # every operation with a body, query or path parameter
    post = spec["paths"]["/api/customers"]["post"]["responses"]
    assert set(post) == {"201", "400", "401", "409"}  # 409: Idempotency-Key conflicts
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    error = schemas["ErrorResponse"]
    assert set(error["required"]) == {"statusCode", "message", "errors", "timestamp", "path"}


async def test_real_error_bodies_match_the_documented_schema(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    error = (await _spec(client))["components"]["schemas"]["ErrorResponse"]
    bad = await client.post(
        "/api/customers", headers=tenant.key_headers, json={"email": "not-an-email", "x": 1}
    )
    assert bad.status_code == 400 and bad.json()["errors"]
    missing = await client.get("/api/customers/nope", headers=tenant.key_headers)
    assert missing.status_code == 404 and missing.json()["errors"] is None
    for response in (bad, missing):
        assert conforms(response.json(), error), response.json()
    # the checker is not vacuous: FastAPI's own 422 shape does not pass
    assert not conforms({"detail": [{"loc": ["body"], "msg": "x", "type": "y"}]}, error)
    assert not conforms({**bad.json(), "errors": [{"field": 1, "message": "m"}]}, error)
