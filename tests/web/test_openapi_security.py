"""The OpenAPI document declares the bearer schemes (contract README §2) so the console's
Authorize button works: data routes take an API key or an access token, /api/tenants/me*
only an access token, auth/currencies/webhooks/health nothing; every secured operation
documents its 401 with the contract's error body."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantCreds, assert_error

_METHODS = {"get", "post", "put", "patch", "delete"}


async def _operations(client: httpx.AsyncClient) -> list[tuple[str, str, dict[str, Any]]]:
    spec = (await client.get("/api/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["apiKey"] == {**schemes["apiKey"], "type": "http", "scheme": "bearer"}
    assert schemes["accessToken"]["type"] == "http"
    assert schemes["accessToken"]["scheme"] == "bearer"
    return [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if method in _METHODS
    ]


async def test_each_operation_declares_the_credential_it_takes(client: httpx.AsyncClient) -> None:
    operations = await _operations(client)
    seen = {"session": 0, "data": 0, "public": 0}
    for path, method, op in operations:
        if path.startswith("/api/tenants/me"):
            assert op["security"] == [{"accessToken": []}], (path, method)
            seen["session"] += 1
        elif path.startswith(("/api/auth", "/api/currencies", "/webhooks", "/health")):
            assert "security" not in op, (path, method)
            # no credential: a 401 here is a wrong password, refresh token or signature
            unauthorized = op["responses"].get("401", {}).get("description", "")
            assert "credential" not in unauthorized, (path, method)
            seen["public"] += 1
        else:
            assert op["security"] == [{"apiKey": []}, {"accessToken": []}], (path, method)
            seen["data"] += 1
        if "security" in op:
            error = op["responses"]["401"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/ErrorResponse"}
    assert all(seen.values()), seen


async def test_the_declared_schemes_are_what_the_server_accepts(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    # data route: API key and access token both work; nothing -> 401
    assert (await client.get("/api/customers", headers=tenant.key_headers)).status_code == 200
    assert (await client.get("/api/customers", headers=tenant.token_headers)).status_code == 200
    assert_error(await client.get("/api/customers"), 401)
    # session route: the access token only
    assert (await client.get("/api/tenants/me", headers=tenant.token_headers)).status_code == 200
    assert_error(await client.get("/api/tenants/me", headers=tenant.key_headers), 401)
