"""POST /api/auth/register and /api/auth/login (contract auth.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import func, select, update

from novabilling.app import create_app
from novabilling.auth import service as auth_service
from novabilling.bootstrap import build_runtime
from novabilling.config import Settings
from novabilling.runtime import Runtime
from novabilling.tenancy import migrations, provisioning
from novabilling.tenancy.models import DatabaseConnection, Tenant
from novabilling.tenancy.operations import migrate_central
from tests.conftest import PG_HOST, PG_PORT, Backend, TenantCreds, assert_error, register_tenant

TENANT_KEYS = {
    "id",
    "name",
    "slug",
    "email",
    "apiKey",
    "webhookUrl",
    "webhookSecret",
    "isActive",
    "settings",
    "lastLoginAt",
    "createdAt",
    "updatedAt",
}
API_KEY = re.compile(r"^sk_live_[0-9a-f]{64}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _email() -> str:
    return f"reg-{secrets.token_hex(6)}@test.local"


def _body(**overrides: Any) -> dict[str, Any]:
    body = {
        "name": "Ada Obi",
        "email": _email(),
        "password": "correct-horse-battery",
        "companyName": "Auth Corp 1712345678",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def _no_password_anywhere(value: Any) -> None:
    if isinstance(value, dict):
        assert "password" not in value and "passwordHash" not in value, value
        for item in value.values():
            _no_password_anywhere(item)
    elif isinstance(value, list):
        for item in value:
            _no_password_anywhere(item)


async def _tenant_count(runtime: Runtime, email: str) -> int:
    async with runtime.central() as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(Tenant).where(Tenant.email == email)
            )
            or 0
        )


async def _pg_database_names(prefix: str) -> set[str]:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix + "%"
        )
        roles = await conn.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE $1", prefix + "%")
    finally:
        await conn.close()
    return {r["datname"] for r in rows} | {r["rolname"] for r in roles}


async def _store_snapshot(backend: Backend) -> set[str]:
    """Every tenant database (file or PostgreSQL database + role) that exists now. Compare
    with ``snapshot - before == set()`` (nothing new): earlier tests' databases may be
    dropped in the background meanwhile (tests/reaper.py), and each xdist worker has a
    prefix of its own, so only this test can add one."""
    settings = backend.settings
    if backend.name == "sqlite":
        tenants_dir = settings.tenants_dir
        return {p.name for p in tenants_dir.iterdir()} if tenants_dir.exists() else set()
    return await _pg_database_names(settings.tenant_db_prefix)


# --- register ------------------------------------------------------------------------------


async def test_register_returns_the_contract_shape(client: httpx.AsyncClient) -> None:
    body = _body()
    r = await client.post("/api/auth/register", json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert set(out) == {"tenant", "apiKey", "accessToken", "refreshToken"}
    tenant = out["tenant"]
    assert set(tenant) == TENANT_KEYS
    _no_password_anywhere(out)
    assert tenant["name"] == "Auth Corp 1712345678"  # the company name, not the person
    assert tenant["slug"].startswith("auth-corp-1712345678")
    assert tenant["email"] == body["email"]
    assert API_KEY.match(out["apiKey"]) and tenant["apiKey"] == out["apiKey"]
    assert HEX64.match(tenant["webhookSecret"])
    assert tenant["webhookUrl"] is None
    assert tenant["isActive"] is True
    assert tenant["settings"] == {"ownerName": "Ada Obi"}
    assert tenant["lastLoginAt"] is None
    assert TS.match(tenant["createdAt"]) and TS.match(tenant["updatedAt"])
    assert out["accessToken"].count(".") == 2 and out["refreshToken"].count(".") == 2
    assert out["accessToken"] != out["refreshToken"]


async def test_register_signs_in(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/register", json=_body())
    out = r.json()
    me = await client.get(
        "/api/tenants/me", headers={"Authorization": f"Bearer {out['accessToken']}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["id"] == out["tenant"]["id"]
    assert me.json()["apiKey"] == out["apiKey"]


@pytest.mark.parametrize(
    ("company", "slug"),
    [
        ("Auth Corp 1712345678", "auth-corp-1712345678"),
        ("  Büro & Co.  --  Lagos ", "-bro-co-lagos-"),
        ("Acme_Ltd!!", "acmeltd"),
        ("a  -  b", "a-b"),
    ],
)
def test_slug_rule(company: str, slug: str) -> None:
    assert auth_service.slugify(company) == slug


async def test_slug_collision_gets_a_base36_suffix(client: httpx.AsyncClient) -> None:
    company = f"Slug Co {secrets.token_hex(3)}"
    first = (await client.post("/api/auth/register", json=_body(companyName=company))).json()
    second = (await client.post("/api/auth/register", json=_body(companyName=company))).json()
    base = auth_service.slugify(company)
    assert first["tenant"]["slug"] == base
    assert second["tenant"]["slug"] != base
    assert re.fullmatch(re.escape(base) + r"-[0-9a-z]+", second["tenant"]["slug"])
    suffix = second["tenant"]["slug"][len(base) + 1 :]
    assert int(suffix, 36) > 1_600_000_000_000  # Unix time in ms, base 36


@pytest.mark.parametrize(
    "email", ["x@test.local", "x@example.com", "x@foo.test", "first.last+tag@sub.domain.io"]
)
async def test_register_accepts_test_domains(client: httpx.AsyncClient, email: str) -> None:
    local, domain = email.split("@")
    unique = f"{local}.{secrets.token_hex(4)}@{domain}"
    r = await client.post("/api/auth/register", json=_body(email=unique))
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "email"),
        ({}, "password"),
        ({}, "name"),
        ({}, "companyName"),
        ({"email": "someone@test.local"}, "password"),
        ("BAD_EMAIL", "email"),
        ("SHORT_PASSWORD", "password"),
        ("LONG_PASSWORD", "password"),
        ("SHORT_NAME", "name"),
        ("SHORT_COMPANY", "companyName"),
        ("UNKNOWN_KEY", "property"),
        ("NUMBER_NAME", "name"),
    ],
)
async def test_register_validation(client: httpx.AsyncClient, body: Any, field: str) -> None:
    cases = {
        "BAD_EMAIL": _body(email="not-an-email"),
        "SHORT_PASSWORD": _body(password="short"),
        "LONG_PASSWORD": _body(password="x" * 129),
        "SHORT_NAME": _body(name="A"),
        "SHORT_COMPANY": _body(companyName="A"),
        "UNKNOWN_KEY": {**_body(), "plan": "pro"},
        "NUMBER_NAME": _body(name=12345),
    }
    payload = cases.get(body, body) if isinstance(body, str) else body
    r = await client.post("/api/auth/register", json=payload)
    assert_error(r, 400, field)
    assert "detail" not in r.json()


async def test_register_unknown_key_message(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/auth/register", json={**_body(), "foo": 1})
    assert_error(r, 400, "property")
    assert {"field": "property", "message": "property foo should not exist"} in r.json()["errors"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"', b"null"])
async def test_register_malformed_body_is_400(client: httpx.AsyncClient, raw: bytes) -> None:
    r = await client.post(
        "/api/auth/register", content=raw, headers={"Content-Type": "application/json"}
    )
    assert_error(r, 400)
    assert r.json()["message"] == "Validation failed"


async def test_register_duplicate_email_is_409(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await client.post("/api/auth/register", json=_body(email=tenant.email))
    assert_error(r, 409)
    upper = await client.post("/api/auth/register", json=_body(email=tenant.email.upper()))
    assert_error(upper, 409)


async def test_register_duplicate_leaves_no_database(
    client: httpx.AsyncClient, tenant: TenantCreds, backend: Backend
) -> None:
    before = await _store_snapshot(backend)
    r = await client.post("/api/auth/register", json=_body(email=tenant.email))
    assert r.status_code == 409
    assert await _store_snapshot(backend) - before == set()


async def _assert_provisioning_failure_leaves_nothing(
    client: httpx.AsyncClient, runtime: Runtime, backend: Backend, before: set[str], email: str
) -> None:
    r = await client.post("/api/auth/register", json=_body(email=email))
    assert_error(r, 500)
    body = r.json()
    assert body["message"] in ("Tenant provisioning failed", "Internal server error")
    assert "Traceback" not in r.text and "boom" not in r.text and "sqlite" not in r.text.lower()
    assert r.headers.get("x-request-id")
    assert await _tenant_count(runtime, email) == 0
    assert await _store_snapshot(backend) - before == set()


async def test_provisioning_failure_leaves_nothing_behind(
    client: httpx.AsyncClient,
    runtime: Runtime,
    backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    email = _email()
    before = await _store_snapshot(backend)

    async def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom: migration exploded")

    with monkeypatch.context() as patch:
        patch.setattr(migrations, "upgrade", boom)
        # no template copy: the new database is migrated, and that explodes
        patch.setattr(runtime.settings, "tenant_templates", False)
        await _assert_provisioning_failure_leaves_nothing(client, runtime, backend, before, email)

    r = await client.post("/api/auth/register", json=_body(email=email))
    assert r.status_code == 201, r.text


async def test_central_insert_failure_drops_the_new_database(
    client: httpx.AsyncClient,
    runtime: Runtime,
    backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A failure after the database exists (writing the central rows) drops it again."""
    email = _email()
    before = await _store_snapshot(backend)

    async def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom: token issue failed")

    with monkeypatch.context() as patch:
        patch.setattr(auth_service, "_issue_tokens", boom)
        await _assert_provisioning_failure_leaves_nothing(client, runtime, backend, before, email)

    r = await client.post("/api/auth/register", json=_body(email=email))
    assert r.status_code == 201, r.text


async def test_unusable_tenants_dir_is_a_clean_500(backend: Backend, tmp_path: Path) -> None:
    """SQLite: the tenants directory cannot be used (read-only, or a file in its place)."""
    if backend.name != "sqlite":
        pytest.skip("the tenants directory only holds SQLite tenant databases")
    settings = Settings(env="test", data_dir=tmp_path, rate_limit="0", log_level="WARNING")
    await migrate_central(settings)
    rt = build_runtime(settings)
    app = create_app(settings, runtime=rt)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            email = _email()
            if os.geteuid() == 0:  # root ignores permissions: put a file where the dir goes
                settings.tenants_dir.write_text("not a directory")
            else:
                settings.tenants_dir.mkdir()
                settings.tenants_dir.chmod(0o500)
            r = await c.post("/api/auth/register", json=_body(email=email))
            assert_error(r, 500)
            assert r.json()["message"] == "Tenant provisioning failed"
            assert r.headers.get("x-request-id")
            assert await _tenant_count(rt, email) == 0
            if settings.tenants_dir.is_file():
                settings.tenants_dir.unlink()
            else:
                assert list(settings.tenants_dir.iterdir()) == []
                settings.tenants_dir.chmod(0o700)
            r = await c.post("/api/auth/register", json=_body(email=email))
            assert r.status_code == 201, r.text
            assert len(list(settings.tenants_dir.iterdir())) == 1
    finally:
        await rt.close()


async def test_register_creates_the_tenant_database(
    client: httpx.AsyncClient, runtime: Runtime, backend: Backend
) -> None:
    creds = await register_tenant(client, "Store Check")
    async with runtime.central() as session:
        conn = await session.scalar(
            select(DatabaseConnection).where(DatabaseConnection.tenant_id == creds.id)
        )
    assert conn is not None
    name = provisioning.database_name(runtime.settings, creds.id)
    assert conn.database_name == name
    if backend.name == "sqlite":
        assert conn.dialect == "sqlite"
        assert (runtime.settings.tenants_dir / f"{name}.db").is_file()
    else:
        assert conn.dialect == "postgresql"
        assert name in await _pg_database_names(name)
    url = runtime.encryptor.decrypt(conn.url_encrypted, aad=creds.id.encode())
    assert creds.id.lower() in url
    assert "sk_live_" not in conn.url_encrypted


# --- login -----------------------------------------------------------------------------------


async def test_login_returns_tenant_and_tokens(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await client.post(
        "/api/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert set(out) == {"tenant", "accessToken", "refreshToken"}
    assert set(out["tenant"]) == TENANT_KEYS
    _no_password_anywhere(out)
    assert out["tenant"]["apiKey"] == tenant.api_key
    assert out["tenant"]["lastLoginAt"] is None  # value from before this (first) login
    me = await client.get(
        "/api/tenants/me", headers={"Authorization": f"Bearer {out['accessToken']}"}
    )
    assert me.status_code == 200


async def test_login_shows_the_previous_login_time(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    creds = {"email": tenant.email, "password": tenant.password}
    first = (await client.post("/api/auth/login", json=creds)).json()
    second = (await client.post("/api/auth/login", json=creds)).json()
    third = (await client.post("/api/auth/login", json=creds)).json()
    assert first["tenant"]["lastLoginAt"] is None
    assert TS.match(second["tenant"]["lastLoginAt"])
    assert third["tenant"]["lastLoginAt"] >= second["tenant"]["lastLoginAt"]
    me = await client.get("/api/tenants/me", headers=tenant.token_headers)
    assert me.json()["lastLoginAt"] >= third["tenant"]["lastLoginAt"]


async def test_login_email_is_case_insensitive(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await client.post(
        "/api/auth/login", json={"email": tenant.email.upper(), "password": tenant.password}
    )
    assert r.status_code == 200, r.text


async def test_wrong_password_and_unknown_email_look_the_same(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    wrong = await client.post(
        "/api/auth/login", json={"email": tenant.email, "password": "not-the-password"}
    )
    unknown = await client.post(
        "/api/auth/login", json={"email": _email(), "password": tenant.password}
    )
    assert_error(wrong, 401)
    assert_error(unknown, 401)
    a, b = wrong.json(), unknown.json()
    a.pop("timestamp")
    b.pop("timestamp")
    assert a == b


async def test_login_deactivated_tenant_is_401(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    async with runtime.central() as session:
        await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(is_active=False))
        await session.commit()
    r = await client.post(
        "/api/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    assert_error(r, 401)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "email"),
        ({"email": "someone@test.local"}, "password"),
        ({"email": "not-an-email", "password": "x"}, "email"),
        ({"email": "someone@test.local", "password": ""}, "password"),
        ({"email": "someone@test.local", "password": "x", "remember": True}, "property"),
    ],
)
async def test_login_validation(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    assert_error(await client.post("/api/auth/login", json=body), 400, field)


async def test_auth_routes_ignore_credentials(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    """Public endpoints: a bogus Authorization header is ignored."""
    r = await client.post(
        "/api/auth/login",
        json={"email": tenant.email, "password": tenant.password},
        headers={"Authorization": "Bearer garbage"},
    )
    assert r.status_code == 200
    r = await client.post(
        "/api/auth/register", json=_body(), headers={"Authorization": "Bearer garbage"}
    )
    assert r.status_code == 201
