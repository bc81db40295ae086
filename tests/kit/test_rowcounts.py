"""Row counts kept by the database (kit/rowcounts.py, migration 0015), on SQLite and
PostgreSQL: after every kind of write - the API's create and delete, a multi-row insert,
a delete by condition (as a test clock's deletion does), a rollback, concurrent
transactions on several connections, TRUNCATE - the kept count equals ``count(*)``, and
the customers list's ``meta.total`` is that count. A database migrated with rows already
in it starts from the right count."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from novabilling.customers.models import Customer
from novabilling.kit.db import make_engine
from novabilling.kit.ids import new_id
from novabilling.kit.rowcounts import row_counts, total_of
from novabilling.runtime import Runtime
from novabilling.tenancy import migrations
from tests.conftest import PG_HOST, PG_PORT, Backend, TenantCreds
from tests.customers.test_customers_api import create_customer

CUSTOMERS = Customer.__table__


def _rows(count: int, *, tag: str = "bulk") -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "id": new_id(),
            "external_id": f"{tag}-{new_id()}",
            "email": "r@x.test",
            "currency": "USD",
            "created_at": now,
            "updated_at": now,
        }
        for _ in range(count)
    ]


async def _counts(engine: AsyncEngine) -> tuple[int, int]:
    """(kept count, count(*)) of customers, read in one snapshot."""
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    total_of("customers"),
                    select(func.count()).select_from(CUSTOMERS).scalar_subquery(),
                )
            )
        ).one()
    return int(row[0]), int(row[1])


async def _list_total(client: httpx.AsyncClient, creds: TenantCreds, **params: str) -> int:
    r = await client.get("/api/customers", headers=creds.key_headers, params=params)
    assert r.status_code == 200, r.text
    return int(r.json()["meta"]["total"])


async def _create(client: httpx.AsyncClient, creds: TenantCreds, country: str = "NG") -> str:
    customer = await create_customer(
        client, creds, externalId=f"c-{secrets.token_hex(4)}", country=country
    )
    return str(customer["id"])


async def test_the_kept_count_follows_every_write(
    runtime: Runtime, client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    engine = await runtime.engines.engine(tenant.id)
    assert await _counts(engine) == (0, 0)
    assert await _list_total(client, tenant) == 0

    ids = [await _create(client, tenant, country="NG" if i % 2 else "KE") for i in range(5)]
    assert await _counts(engine) == (5, 5)

    async with engine.begin() as conn:  # one statement, seven rows
        await conn.execute(insert(CUSTOMERS), _rows(7))
    assert await _counts(engine) == (12, 12)

    for customer_id in ids[:2]:
        r = await client.delete(f"/api/customers/{customer_id}", headers=tenant.key_headers)
        assert r.status_code in (200, 204), r.text
    assert await _counts(engine) == (10, 10)

    async with engine.begin() as conn:  # a delete by condition, as a test clock's deletion
        await conn.execute(delete(CUSTOMERS).where(CUSTOMERS.c.external_id.like("bulk-%")))
    assert await _counts(engine) == (3, 3)

    async with engine.connect() as conn:  # rolled back: counts nothing
        await conn.execute(insert(CUSTOMERS), _rows(4))
        await conn.rollback()
    assert await _counts(engine) == (3, 3)

    assert await _list_total(client, tenant) == 3
    assert await _list_total(client, tenant, country="KE") == 2  # filtered: counted rows
    # a page past the end carries no row, and still the total
    r = await client.get("/api/customers", headers=tenant.key_headers, params={"page": "9"})
    assert r.status_code == 200 and r.json()["data"] == []
    assert r.json()["meta"]["total"] == 3


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_concurrent_transactions_and_truncate_on_postgres(
    backend: Backend, runtime: Runtime, client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    engine = await runtime.engines.engine(tenant.id)

    async def writer(n: int) -> None:
        for _ in range(n):
            async with engine.begin() as conn:
                await conn.execute(insert(CUSTOMERS), _rows(1))

    await asyncio.gather(*(writer(10) for _ in range(5)))
    assert await _counts(engine) == (50, 50)
    async with engine.connect() as conn:
        shards = await conn.scalar(select(func.count()).select_from(row_counts))
    assert shards is not None and shards > 1  # concurrent connections, separate counters

    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE customers CASCADE"))
    assert await _counts(engine) == (0, 0)
    await _create(client, tenant)
    assert await _counts(engine) == (1, 1)
    assert await _list_total(client, tenant) == 1


@pytest.fixture
async def blank_database(
    backend: Backend, tmp_path: Path, pg_prefix: str
) -> AsyncIterator[AsyncEngine]:
    """An empty database of the backend, not provisioned: migrations run by the test."""
    if backend.name == "sqlite":
        engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'blank.db'}")
        yield engine
        await engine.dispose()
        return
    name = f"{pg_prefix}rc{secrets.token_hex(4)}"
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    engine = make_engine(f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}")
    yield engine
    await engine.dispose()
    admin = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_the_migration_counts_the_rows_already_there(blank_database: AsyncEngine) -> None:
    await migrations.upgrade(blank_database, "tenant", "0014")
    async with blank_database.begin() as conn:
        await conn.execute(insert(CUSTOMERS), _rows(6))
    await migrations.upgrade(blank_database, "tenant", "0015")
    assert await _counts(blank_database) == (6, 6)
    async with blank_database.begin() as conn:
        await conn.execute(insert(CUSTOMERS), _rows(2))
        await conn.execute(
            delete(CUSTOMERS).where(CUSTOMERS.c.id.in_(select(CUSTOMERS.c.id).limit(3)))
        )
    assert await _counts(blank_database) == (5, 5)


def test_only_counted_tables_have_a_total() -> None:
    with pytest.raises(ValueError, match="invoices has no row count"):
        total_of("invoices")
