"""Tenant databases over several PostgreSQL servers (NB_TENANT_DATABASE_URLS): a new
tenant goes to the server with the fewest tenants and its placement is recorded
centrally; ``tenants move`` moves a tenant's database with its data to another server
(writes answer 503 meanwhile, reads go on, row counts verified, nothing lost).

Two PostgreSQL clusters started by this module (initdb + pg_ctl on free ports) hold the
central database and the tenants: the shared server is not touched."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from novabilling.cli import app as cli
from novabilling.config import Settings, get_settings
from novabilling.errors import BusinessRule, NotFound
from novabilling.kit.db import make_engine
from novabilling.tenancy import operations, provisioning
from novabilling.tenancy.models import DatabaseConnection
from novabilling.tenancy.moving import move_tenant
from novabilling.tenancy.servers import server_name
from tests.conftest import TenantCreds, assert_error, register_tenant
from tests.servers import PostgresCluster
from tests.tenancy import app_client

PREFIX = "nbsrv_"


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[PostgresCluster, PostgresCluster]]:
    first = PostgresCluster(max_connections=40, name="srv-a")
    second = PostgresCluster(max_connections=40, name="srv-b")
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        first.stop()
        second.stop()


async def _fetch(cluster: PostgresCluster, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=cluster.port, user="postgres", database="postgres"
    )
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def settings(
    clusters: tuple[PostgresCluster, PostgresCluster], tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    first, second = clusters
    asyncio.run(_fetch(first, "CREATE DATABASE nbsrv_central"))
    made = Settings(
        env="test",
        data_dir=tmp_path_factory.mktemp("nb-servers"),
        database_url=first.url.rsplit("/", 1)[0] + "/nbsrv_central",
        tenant_database_urls=f"{first.url}, {second.url}",
        tenant_db_prefix=PREFIX,
        rate_limit="0",
        log_level="WARNING",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        tenant_url_ttl=0.5,
        run_scheduler=False,
    )
    asyncio.run(operations.migrate_central(made))
    return made


async def _placements(settings: Settings) -> dict[str, str | None]:
    engine = make_engine(settings.central_url, null_pool=True)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(DatabaseConnection.tenant_id, DatabaseConnection.server)
            )
            return dict(rows.tuples().all())
    finally:
        await engine.dispose()


async def _databases(cluster: PostgresCluster) -> set[str]:
    rows = await _fetch(cluster, "SELECT datname FROM pg_database WHERE NOT datistemplate")
    return {row[0] for row in rows}


async def test_new_tenants_go_to_the_server_with_the_fewest(
    settings: Settings, clusters: tuple[PostgresCluster, PostgresCluster]
) -> None:
    first, second = clusters
    names = [server_name(first.url), server_name(second.url)]
    before = await operations.tenants_per_server(settings)
    async with app_client(settings, probe=False) as (client, _):
        made = [await register_tenant(client, f"Placed {i}") for i in range(4)]
    after = await operations.tenants_per_server(settings)
    assert list(after) == names
    assert sum(after.values()) - sum(before.values()) == 4
    assert abs(after[names[0]] - after[names[1]]) <= 1  # balanced
    placements = await _placements(settings)
    on_server = {names[0]: await _databases(first), names[1]: await _databases(second)}
    for creds in made:
        server = placements[creds.id]
        assert server in names
        database = provisioning.database_name(settings, creds.id)
        assert database in on_server[server]  # recorded where it really is
        other = names[1] if server == names[0] else names[0]
        assert database not in on_server[other]


async def _seed(client: httpx.AsyncClient, creds: TenantCreds, count: int) -> list[str]:
    ids = []
    for i in range(count):
        r = await client.post(
            "/api/customers",
            json={"externalId": f"mv-{i}", "email": f"mv{i}@test.local", "currency": "NGN"},
            headers=creds.key_headers,
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def _read_ids(client: httpx.AsyncClient, creds: TenantCreds) -> list[str]:
    r = await client.get("/api/customers?limit=100", headers=creds.key_headers)
    if r.status_code == 503:  # the request that met a connection the move ended: retry once
        r = await client.get("/api/customers?limit=100", headers=creds.key_headers)
    assert r.status_code == 200, r.text
    return sorted(c["id"] for c in r.json()["data"])


async def test_move_a_tenant_with_its_data_writes_refused_meanwhile(
    settings: Settings, clusters: tuple[PostgresCluster, PostgresCluster]
) -> None:
    async with app_client(settings, probe=False) as (client, _):
        creds = await register_tenant(client, "Mover Ltd")
        ids = sorted(await _seed(client, creds, 7))
        source = (await _placements(settings))[creds.id]
        assert source is not None
        target = next(n for n in (await operations.tenants_per_server(settings)) if n != source)
        seen: dict[str, object] = {}

        async def during(stage: str) -> None:
            if stage == "copied":
                write = await client.post(
                    "/api/customers",
                    json={"externalId": "late", "email": "late@test.local", "currency": "NGN"},
                    headers=creds.key_headers,
                )
                assert_error(write, 503)
                seen["read"] = await _read_ids(client, creds)

        report = await move_tenant(
            settings, tenant_id=creds.id, target=target, grace=1.0, on_stage=during
        )
        assert seen["read"] == ids  # reads went on during the move
        assert report.source == source and report.target == target
        assert report.rows["customers"] == 7
        assert (await _placements(settings))[creds.id] == target

        assert await _read_ids(client, creds) == ids  # everything is there, nothing lost
        after = await client.post(
            "/api/customers",
            json={"externalId": "after", "email": "after@test.local", "currency": "NGN"},
            headers=creds.key_headers,
        )
        assert after.status_code == 201, after.text

    first, second = clusters
    database = provisioning.database_name(settings, creds.id)
    by_name = {server_name(first.url): first, server_name(second.url): second}
    assert database not in await _databases(by_name[source])
    assert database in await _databases(by_name[target])


async def test_move_refuses_unknown_or_same_server(settings: Settings) -> None:
    async with app_client(settings, probe=False) as (client, _):
        creds = await register_tenant(client, "Stay Put")
    source = (await _placements(settings))[creds.id]
    assert source is not None
    with pytest.raises(NotFound):
        await move_tenant(settings, tenant_id=creds.id, target="nowhere:1")
    with pytest.raises(BusinessRule):
        await move_tenant(settings, tenant_id=creds.id, target=source)
    with pytest.raises(NotFound):
        await move_tenant(settings, tenant_id="c" + "0" * 24, target=source)


def test_cli_lists_servers_and_moves_a_tenant(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def one_tenant() -> TenantCreds:
        async with app_client(settings, probe=False) as (client, _):
            creds = await register_tenant(client, "Cli Mover")
            await _seed(client, creds, 3)
            return creds

    creds = asyncio.run(one_tenant())
    source = asyncio.run(_placements(settings))[creds.id]
    for name in list(os.environ):
        if name.startswith("NB_"):
            monkeypatch.delenv(name)
    env = {
        "NB_ENV": "test",
        "NB_DATA_DIR": str(Path(settings.data_dir)),
        "NB_DATABASE_URL": settings.central_url,
        "NB_TENANT_DATABASE_URLS": settings.tenant_database_urls or "",
        "NB_TENANT_DB_PREFIX": PREFIX,
        "NB_TENANT_URL_TTL": "0.5",
        "COLUMNS": "200",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        listed = CliRunner().invoke(cli, ["tenants", "servers"])
        assert listed.exit_code == 0, listed.output
        target = next(
            n for n in asyncio.run(operations.tenants_per_server(settings)) if n != source
        )
        assert source in listed.output and target in listed.output
        moved = CliRunner().invoke(cli, ["tenants", "move", creds.id, target, "--grace", "0.5"])
        assert moved.exit_code == 0, moved.output
        assert "verified" in moved.output and f"{source} -> {target}" in moved.output
        again = CliRunner().invoke(cli, ["tenants", "move", creds.id, target])
        assert again.exit_code == 1 and "already on" in again.output
    finally:
        get_settings.cache_clear()
    assert asyncio.run(_placements(settings))[creds.id] == target
