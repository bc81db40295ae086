"""/health, /health/ready, /metrics, and the offline API docs (contract README §1, §10)."""

from __future__ import annotations

import re
import socket

import httpx
import pytest

from tests.conftest import Backend
from tests.tenancy import app_client

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_health_shape(client: httpx.AsyncClient) -> None:
    r = await client.get("/health", headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"status", "timestamp", "uptime"}
    assert body["status"] == "ok"
    assert TS.match(body["timestamp"])
    assert isinstance(body["uptime"], int | float) and not isinstance(body["uptime"], bool)
    assert body["uptime"] >= 0
    assert "x-ratelimit-limit" not in r.headers


async def test_ready(client: httpx.AsyncClient, backend: Backend) -> None:
    r = await client.get("/health/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == "ok"
    if backend.name == "postgres":
        assert body["checks"]["redis"] == "ok"


async def test_ready_is_503_when_redis_is_down(backend: Backend) -> None:
    settings = backend.settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{_closed_port()}/0"}
    )
    async with app_client(settings, probe=False) as (client, _):
        r = await client.get("/health/ready")
        assert r.status_code == 503, r.text
        assert r.json()["status"] == "unavailable"
        assert r.json()["checks"]["redis"].startswith("down")
        assert r.json()["checks"]["database"] == "ok"
        # liveness stays up
        assert (await client.get("/health")).status_code == 200


async def test_ready_is_503_when_the_database_is_down(backend: Backend) -> None:
    if backend.name != "postgres":
        pytest.skip("a SQLite file database cannot be 'down'")
    assert backend.settings.database_url is not None
    url = re.sub(r"@[^/]+/", f"@127.0.0.1:{_closed_port()}/", backend.settings.database_url)
    settings = backend.settings.model_copy(update={"database_url": url})
    async with app_client(settings, probe=False) as (client, _):
        r = await client.get("/health/ready")
        assert r.status_code == 503
        assert r.json()["checks"]["database"].startswith("down")


@pytest.mark.parametrize("path", ["/api/docs", "/api/reference", "/api/docs/", "/api/reference/"])
async def test_docs_pages_are_served_offline(client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "/api/docs/static/swagger-ui-bundle.js" in html
    assert "/api/openapi.json" in html
    assert not re.search(r"""(src|href)=["']https?://""", html), "docs must not load from a CDN"
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html


@pytest.mark.parametrize(
    ("asset", "kind"),
    [("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "css")],
)
async def test_docs_static_bundle(client: httpx.AsyncClient, asset: str, kind: str) -> None:
    r = await client.get(f"/api/docs/static/{asset}")
    assert r.status_code == 200
    assert kind in r.headers["content-type"]
    assert len(r.content) > 10_000


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"]
    paths = spec["paths"]
    for path in ("/api/auth/register", "/api/auth/login", "/api/tenants/me", "/health"):
        assert path in paths, sorted(paths)
    for path, operations in paths.items():
        assert path.startswith(("/api/", "/health", "/webhooks/")), path
        for method, op in operations.items():
            assert method in ("get", "post", "put", "patch", "delete"), (path, method)
            assert "responses" in op
    # every $ref resolves
    refs = set(re.findall(r'"\$ref":\s*"#/components/schemas/([^"]+)"', r.text))
    assert refs <= set(spec.get("components", {}).get("schemas", {}))


async def test_metrics(client: httpx.AsyncClient) -> None:
    await client.get("/health")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "nb_http_requests_total" in r.text
    assert "nb_http_request_seconds_bucket" in r.text
