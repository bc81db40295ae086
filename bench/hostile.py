"""Hostile-input sweep (issue 14's adversarial run, re-measurable): every operation of the
OpenAPI document, as two tenants, with junk, NUL characters, deep nesting, huge integers,
non-finite numbers, calendar-edge dates and unknown ids; plus unparsable raw requests.
A poller times /health all along. Prints requests tried, the status histogram, every 5xx
and the slowest /health answer.

    uv run python bench/hostile.py [--postgres postgresql+asyncpg://postgres@127.0.0.1:5432]

Without ``--postgres`` it runs the embedded default (SQLite files in a temp dir); with it,
central and tenant databases are created on that server under a unique prefix and dropped
afterwards. Logging is the development default (console renderer) at INFO, to a file.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import uvicorn
from sqlalchemy.engine import make_url

from novabilling.app import create_app
from novabilling.bootstrap import build_runtime
from novabilling.config import Settings
from novabilling.kit.logging import configure_logging
from novabilling.tenancy.operations import migrate_central
from novabilling.web.server import ContractHttpToolsProtocol

NUL = "\u0000"
DEEP = '{"a": ' * 300 + "1" + "}" * 300
VERY_DEEP = "[" * 5000 + "]" * 5000
EDGE_DATES = ["0001-01-01", "0001-01-01T00:00:00+01:00", "9999-12-31", "9999-12-31T23:59:59-01:00"]
RAW_REQUESTS = [
    b"GARBAGE\r\n\r\n",
    b"GET /api/customers HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
    b"POST /api/customers HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
]


def _values(prop: dict[str, Any]) -> list[Any]:
    kind = prop.get("type")
    hostile: list[Any] = [f"x{NUL}y", 10**20, -(2**70), "x" * 70_000, None, [], {}]
    if kind in ("string", None) or "format" in prop:
        hostile += EDGE_DATES
    return hostile


def _bodies(schema: dict[str, Any] | None) -> list[bytes]:
    bodies = [b"{}", b"[]", b"null", b"{nope", DEEP.encode(), VERY_DEEP.encode(), b'{"a": NaN}']
    bodies += [b'{"a": 1e400}', json.dumps({"metadata": json.loads(DEEP)}).encode()]
    for name, prop in ((schema or {}).get("properties") or {}).items():
        for value in _values(prop if isinstance(prop, dict) else {}):
            bodies.append(json.dumps({name: value}).encode())
    return bodies


def _resolve(spec: dict[str, Any], schema: dict[str, Any] | None) -> dict[str, Any] | None:
    if schema and "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        resolved: dict[str, Any] = spec["components"]["schemas"].get(name, {})
        return resolved
    return schema


async def _poll_health(port: int, stop: asyncio.Event, worst: list[float]) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        while not stop.is_set():
            started = time.perf_counter()
            await client.get("/health")
            worst.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)


async def _raw(port: int, data: bytes) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    head = answer.split(b"\r\n", 1)[0].split(b" ")
    ok_json = b"application/json" in answer
    return int(head[1]) if len(head) > 1 and ok_json else -1


async def _tenant(client: httpx.AsyncClient) -> dict[str, Any]:
    email = f"hostile-{secrets.token_hex(4)}@test.local"
    r = await client.post(
        "/api/auth/register",
        json={"name": "Ada", "email": email, "password": "x" * 12, "companyName": "Hostile"},
    )
    r.raise_for_status()
    body: dict[str, Any] = r.json()
    return body


async def sweep(port: int) -> dict[str, Any]:
    statuses: collections.Counter[int] = collections.Counter()
    errors: list[str] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
        me, other = await _tenant(client), await _tenant(client)
        key = {"Authorization": f"Bearer {me['apiKey']}"}
        token = {"Authorization": f"Bearer {me['accessToken']}"}
        theirs = await client.post(
            "/api/customers",
            json={"externalId": "c1", "email": "c1@test.local", "currency": "USD"},
            headers={"Authorization": f"Bearer {other['apiKey']}"},
        )
        foreign_id = theirs.json()["id"]
        spec = (await client.get("/api/openapi.json")).json()
        for template, operations in spec["paths"].items():
            for method, op in operations.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                headers = token if template.startswith("/api/tenants/me") else key
                schema = _resolve(
                    spec,
                    (op.get("requestBody") or {})
                    .get("content", {})
                    .get("application/json", {})
                    .get("schema"),
                )
                queries = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
                for ident in ("nonexistent_id", foreign_id, "id%00x", "i" * 3000):
                    path = template
                    while "{" in path:
                        start, end = path.index("{"), path.index("}")
                        path = path[:start] + ident + path[end + 1 :]
                    variants: list[tuple[str, bytes | None]] = [(path, None)]
                    for name in queries:
                        for value in ["a%00b", "-1", "1e400", *EDGE_DATES, "x" * 3000]:
                            variants.append((f"{path}?{name}={value}", None))
                    if method in ("post", "put", "patch"):
                        variants += [(path, body) for body in _bodies(schema)]
                    for url, body in variants:
                        r = await client.request(
                            method.upper(),
                            url,
                            content=body,
                            headers={**headers, "content-type": "application/json"},
                        )
                        statuses[r.status_code] += 1
                        if r.status_code >= 500 and len(errors) < 30:
                            errors.append(f"{method.upper()} {url[:120]} -> {r.status_code}")
                    if "{" not in template:
                        break
        for raw in RAW_REQUESTS:
            statuses[await _raw(port, raw)] += 1
    return {"statuses": dict(sorted(statuses.items())), "errors": errors}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", help="a PostgreSQL server URL (default: embedded SQLite)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="nb-hostile-"))
    prefix = f"nbhostile_{secrets.token_hex(3)}_"
    extra: dict[str, Any] = {}
    if args.postgres:
        url = make_url(args.postgres)
        admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username)
        await admin.execute(f'CREATE DATABASE "{prefix}central"')
        await admin.close()
        extra = {
            "database_url": f"{args.postgres}/{prefix}central",
            "tenant_database_url": f"{args.postgres}/postgres",
            "tenant_db_prefix": f"{prefix}t_",
        }
    settings = Settings(
        env="development", data_dir=data, rate_limit="0", run_scheduler=False, **extra
    )
    await migrate_central(settings)
    runtime = build_runtime(settings)
    app = create_app(settings, runtime=runtime)
    log_file = (data / "server.log").open("w")
    configure_logging(json=False, level="INFO", stream=log_file)
    port = 18000 + secrets.randbelow(2000)
    server = uvicorn.Server(
        uvicorn.Config(
            app, port=port, http=ContractHttpToolsProtocol, log_config=None, lifespan="off"
        )
    )
    serving = asyncio.create_task(server.serve())
    for _ in range(600):
        if server.started:
            break
        await asyncio.sleep(0.05)
    stop, latencies = asyncio.Event(), []
    poller = asyncio.create_task(_poll_health(port, stop, latencies))
    started = time.perf_counter()
    try:
        result = await sweep(port)
    finally:
        stop.set()
        await poller
        server.should_exit = True
        await serving
        await runtime.close()
        if args.postgres:
            url = make_url(args.postgres)
            admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username)
            for row in await admin.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"
            ):
                await admin.execute(f'ALTER DATABASE "{row["datname"]}" WITH IS_TEMPLATE false')
                await admin.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')
            for row in await admin.fetch(
                "SELECT rolname FROM pg_roles WHERE rolname LIKE $1", prefix + "%"
            ):
                await admin.execute(f'DROP ROLE "{row["rolname"]}"')
            await admin.close()
    total = sum(result["statuses"].values())
    fivexx = sum(n for status, n in result["statuses"].items() if status >= 500 or status < 0)
    print(
        json.dumps(
            {
                "backend": "postgresql" if args.postgres else "sqlite",
                "requests": total,
                "seconds": round(time.perf_counter() - started, 1),
                "5xx_or_not_json": fivexx,
                "statuses": result["statuses"],
                "errors": result["errors"],
                "health_checks": len(latencies),
                "health_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
                "log_lines": sum(1 for _ in (data / "server.log").open()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
