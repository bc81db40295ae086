"""Contract error body, request ids, security headers, body limit, CORS and per-route rate
limiting (contract README §7, §9, §10), on SQLite (memory limiter) and PostgreSQL + Redis."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from novabilling.app import create_app
from novabilling.runtime import Runtime
from tests.conftest import Backend, TenantCreds, assert_error
from tests.tenancy import app_client

ORIGIN = "http://localhost:4001"


def _no_detail_anywhere(response: httpx.Response) -> None:
    assert response.status_code != 422, response.text
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        if isinstance(body, dict):
            assert "detail" not in body, body


# --- error body --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/does-not-exist?x=1&y=two"),
        ("GET", "/nope"),
        ("POST", "/api/nothing/here"),
        ("GET", "/api/auth/register"),  # exists only as POST
    ],
)
async def test_unknown_routes_are_404_with_the_contract_body(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    r = await client.request(method, path)
    if r.status_code == 405:  # a known path with another method
        assert_error(r, 405)
    else:
        assert_error(r, 404)
    assert r.json()["path"] == path
    assert r.json()["errors"] is None
    _no_detail_anywhere(r)


async def test_trailing_slash_is_tolerated(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    plain = await client.get("/api/currencies")
    slashed = await client.get("/api/currencies/")
    assert slashed.status_code == 200 and slashed.json() == plain.json()
    assert "location" not in slashed.headers
    me = await client.get("/api/tenants/me/", headers=tenant.token_headers)
    assert me.status_code == 200 and me.json()["id"] == tenant.id
    assert (await client.get("/health/")).status_code == 200
    r = await client.post(
        "/api/auth/login/", json={"email": tenant.email, "password": tenant.password}
    )
    assert r.status_code == 200
    # the error path keeps what the client sent
    r = await client.get("/api/tenants/me/?a=1")
    assert_error(r, 401)
    assert r.json()["path"] == "/api/tenants/me/?a=1"


async def test_validation_error_lists_each_broken_rule(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/auth/register",
        json={"name": "A", "email": "nope", "password": "x", "companyName": "B", "zzz": 1},
    )
    assert_error(r, 400)
    errors = r.json()["errors"]
    fields = [e["field"] for e in errors]
    assert set(fields) == {"name", "email", "password", "companyName", "property"}
    for entry in errors:
        assert set(entry) == {"field", "message"}
        assert entry["message"].split(" ")[0] == entry["field"]


async def test_unexpected_failure_is_a_generic_500(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from novabilling.auth import service

    async def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals: postgresql://user:pw@db")

    monkeypatch.setattr(service, "login", explode)
    r = await client.post(
        "/api/auth/login?trace=1",
        json={"email": "a@test.local", "password": "x"},
        headers={"Origin": ORIGIN, "X-Request-Id": "req-500-check"},
    )
    assert_error(r, 500)
    assert r.json()["message"] == "Internal server error"
    assert r.json()["path"] == "/api/auth/login?trace=1"
    assert "secret internals" not in r.text and "postgresql" not in r.text
    assert r.headers["x-request-id"] == "req-500-check"
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("auth", ["none", "key", "token"])
async def test_no_route_ever_answers_422_or_detail(
    client: httpx.AsyncClient, tenant: TenantCreds, auth: str
) -> None:
    """Sweep every documented operation with junk input: never 422, never ``detail``,
    never a 5xx."""
    spec = (await client.get("/api/openapi.json")).json()
    headers = {"none": {}, "key": tenant.key_headers, "token": tenant.token_headers}[auth]
    seen = 0
    for path, operations in spec["paths"].items():
        concrete = path
        while "{" in concrete:
            start, end = concrete.index("{"), concrete.index("}")
            concrete = concrete[:start] + "nonexistent_id" + concrete[end + 1 :]
        for method in operations:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            seen += 1
            for body in ({"__junk__": {"deep": [1]}}, None):
                r = await client.request(
                    method.upper(), concrete + "?junkParam=%ZZ", json=body, headers=headers
                )
                _no_detail_anywhere(r)
                assert r.status_code < 500, f"{method.upper()} {concrete}: {r.text}"
    assert seen >= 10


# --- request id, security headers ------------------------------------------------------------


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    r = await client.get("/health", headers={"X-Request-Id": "abc-123.DEF:ok"})
    assert r.headers["x-request-id"] == "abc-123.DEF:ok"
    r = await client.get("/api/currencies")
    generated = r.headers["x-request-id"]
    assert len(generated) >= 16
    r2 = await client.get("/api/currencies")
    assert r2.headers["x-request-id"] != generated
    # an unsafe id (spaces, too long) is replaced, never reflected
    r = await client.get("/health", headers={"X-Request-Id": "bad id <script>"})
    assert r.headers["x-request-id"] != "bad id <script>"
    r = await client.get("/health", headers={"X-Request-Id": "x" * 500})
    assert len(r.headers["x-request-id"]) <= 100


@pytest.mark.parametrize("path", ["/health", "/api/currencies", "/api/nope", "/api/tenants/me"])
async def test_security_headers_on_every_answer(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] in ("SAMEORIGIN", "DENY")
    assert "default-src" in r.headers["content-security-policy"]
    assert r.headers.get("x-request-id")


# --- body size ---------------------------------------------------------------------------------


async def test_body_over_the_limit_is_413(client: httpx.AsyncClient, runtime: Runtime) -> None:
    limit = runtime.settings.max_body_bytes
    big = b'{"name": "' + b"x" * (limit + 10) + b'"}'
    r = await client.post(
        "/api/auth/register?big=1",
        content=big,
        headers={"Content-Type": "application/json", "X-Request-Id": "too-big"},
    )
    assert_error(r, 413)
    assert r.json()["path"] == "/api/auth/register?big=1"
    assert r.headers["x-request-id"] == "too-big"
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    limit = runtime.settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    r = await client.post(
        "/api/auth/register", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(r, 413)


async def test_body_just_under_the_limit_is_parsed(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    pad = "x" * (runtime.settings.max_body_bytes - 200)
    r = await client.post(
        "/api/auth/login", json={"email": "a@test.local", "password": "x", "pad": pad}
    )
    assert_error(r, 400, "property")  # parsed and validated, not refused for size


# --- CORS --------------------------------------------------------------------------------------


async def test_cors_preflight_from_the_dashboard(client: httpx.AsyncClient) -> None:
    r = await client.options(
        "/api/customers",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "PATCH" in r.headers["access-control-allow-methods"]
    simple = await client.get("/api/currencies", headers={"Origin": "http://localhost:4002"})
    assert simple.headers["access-control-allow-origin"] == "http://localhost:4002"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_cors_refuses_unknown_origins(client: httpx.AsyncClient) -> None:
    r = await client.options(
        "/api/customers",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert r.headers.get("access-control-allow-origin") is None
    simple = await client.get("/api/currencies", headers={"Origin": "https://evil.example"})
    assert simple.headers.get("access-control-allow-origin") is None


# --- rate limiting -------------------------------------------------------------------------------


@pytest.fixture
async def limited(backend: Backend) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    settings = backend.settings.model_copy(
        update={"rate_limit": "3/60s", "redis_prefix": f"nbtest:rl:{secrets.token_hex(4)}"}
    )
    async with app_client(settings) as pair:
        yield pair


async def test_fourth_request_on_a_route_is_429(
    limited: tuple[httpx.AsyncClient, Runtime], backend: Backend
) -> None:
    client, runtime = limited
    expected = "RedisRateLimiter" if backend.name == "postgres" else "MemoryRateLimiter"
    assert type(runtime.limiter).__name__ == expected
    for remaining in (2, 1, 0):
        r = await client.get("/api/currencies")
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit"] == "3"
        assert r.headers["x-ratelimit-remaining"] == str(remaining)
        assert 0 < int(r.headers["x-ratelimit-reset"]) <= 60
    r = await client.get("/api/currencies?again=1")
    assert_error(r, 429)
    assert r.json()["message"] == "Too Many Requests"
    assert r.json()["path"] == "/api/currencies?again=1"
    assert 0 < int(r.headers["retry-after"]) <= 60
    assert r.headers["x-ratelimit-limit"] == "3"
    assert r.headers["x-ratelimit-remaining"] == "0"
    assert r.headers.get("x-request-id")

    # each route has its own counter
    other = await client.post("/api/auth/login", json={"email": "a@test.local", "password": "x"})
    assert other.status_code == 401
    assert other.headers["x-ratelimit-remaining"] == "2"
    # /health and docs are not limited
    for _ in range(6):
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/api/openapi.json")).status_code == 200


async def test_rate_limit_counts_across_ids_of_one_route(
    limited: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, _ = limited
    statuses = [(await client.get(f"/api/tenants/me/api-keys/{i}")).status_code for i in range(4)]
    # GET on that template does not exist (405/404 answer before limiting) or is limited
    # per template: either way no request is ever a 422
    assert 422 not in statuses
    statuses = [
        (await client.delete(f"/api/tenants/me/api-keys/k{i}")).status_code for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


async def test_rate_limit_off_means_no_headers(backend: Backend) -> None:
    settings = backend.settings.model_copy(update={"rate_limit": "0"})
    async with app_client(settings) as (client, runtime):
        assert runtime.limiter is None
        r = await client.get("/api/currencies")
        assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers


async def test_dead_redis_fails_open(backend: Backend) -> None:
    if backend.name != "postgres":
        pytest.skip("Redis limiter only on the PostgreSQL + Redis backend")
    settings = backend.settings.model_copy(
        update={"rate_limit": "3/60s", "redis_url": "redis://127.0.0.1:1/0"}
    )
    async with app_client(settings) as (client, _):
        for _ in range(5):
            assert (await client.get("/api/currencies")).status_code == 200


async def test_metrics_count_requests(client: httpx.AsyncClient) -> None:
    await client.get("/api/currencies")
    text = (await client.get("/metrics")).text
    assert "nb_http_requests_total" in text
    assert 'route="/api/currencies"' in text


def test_probe_helper_is_not_part_of_the_real_app(runtime: Runtime) -> None:
    app = create_app(runtime.settings, runtime=runtime)
    assert not getattr(app.state, "probe_installed", False)
    assert "/api/_probe" not in {getattr(route, "path", None) for route in app.routes}


async def test_webhook_intake_is_limited_per_route_and_labelled(
    limited: tuple[httpx.AsyncClient, Runtime],
) -> None:
    """The intake runs on lean Starlette routes: same limiter, headers, error body and
    metrics label (the path template) as the FastAPI routes."""
    client, _ = limited
    unsigned = {"content-type": "application/json"}
    answers = [
        await client.post(f"/webhooks/paystack/t{i}", content=b"{}", headers=unsigned)
        for i in range(4)
    ]
    assert [r.status_code for r in answers] == [401, 401, 401, 429]
    assert answers[0].headers["x-ratelimit-remaining"] == "2"
    assert answers[0].headers.get("x-request-id")
    assert_error(answers[3], 429)
    assert answers[3].json()["path"] == "/webhooks/paystack/t3"
    bare = await client.post("/webhooks/paystack", content=b"{}", headers=unsigned)
    assert bare.status_code == 401 and bare.headers["x-ratelimit-remaining"] == "2"
    metrics = (await client.get("/metrics")).text
    assert 'route="/webhooks/{provider}/{tenant_key}"' in metrics
