"""The ``novabilling`` CLI: migrate (continues past a broken tenant, exit 1), tenants list,
health against a dead instance. Embedded (SQLite) mode in a temporary NB_DATA_DIR."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from novabilling.app import create_app
from novabilling.bootstrap import build_runtime
from novabilling.cli import app as cli
from novabilling.config import Settings, get_settings
from novabilling.kit.db import make_engine
from novabilling.tenancy import migrations, provisioning

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    import os

    for name in list(os.environ):
        if name.startswith("NB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NB_ENV", "test")
    monkeypatch.setenv("NB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NB_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def _settings(data_dir: Path) -> Settings:
    return Settings(env="test", data_dir=data_dir, log_level="WARNING", rate_limit="0")


async def _register(settings: Settings, *companies: str) -> list[dict]:
    runtime = build_runtime(settings)
    app = create_app(settings, runtime=runtime)
    out = []
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for i, company in enumerate(companies):
                r = await client.post(
                    "/api/auth/register",
                    json={
                        "name": "Ada Obi",
                        "email": f"cli{i}@test.local",
                        "password": "correct-horse-battery",
                        "companyName": company,
                    },
                )
                assert r.status_code == 201, r.text
                out.append(r.json()["tenant"])
    finally:
        await runtime.close()
    return out


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_migrate_on_a_fresh_data_dir(data_dir: Path) -> None:
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "central database migrated" in result.output
    assert "0/0" in result.output
    assert (data_dir / "central.db").is_file()
    again = runner.invoke(cli, ["migrate"])  # idempotent
    assert again.exit_code == 0, again.output


def test_migrate_reports_a_broken_tenant_and_migrates_the_others(data_dir: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    settings = _settings(data_dir)
    good, broken = asyncio.run(_register(settings, "Good Co", "Broken Co"))

    # the good tenant is one revision behind, so migrate has work to do there
    async def step_back() -> None:
        from alembic import command

        engine = make_engine(
            f"sqlite+aiosqlite:///{data_dir}/tenants/"
            f"{provisioning.database_name(settings, good['id'])}.db",
            null_pool=True,
        )
        try:
            async with engine.begin() as conn:

                def down(sync_conn: object) -> None:
                    cfg = migrations.alembic_config("tenant")
                    cfg.attributes["connection"] = sync_conn
                    command.downgrade(cfg, "-1")

                await conn.run_sync(down)
            assert await migrations.current_revision(engine) != migrations.head_revision("tenant")
        finally:
            await engine.dispose()

    asyncio.run(step_back())

    broken_file = data_dir / "tenants" / f"{provisioning.database_name(settings, broken['id'])}.db"
    broken_file.unlink()
    broken_file.mkdir()  # a directory where the database file should be

    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 1, result.output
    assert broken["id"] in result.output
    assert "failed" in result.output
    assert "1/2" in result.output

    async def good_revision() -> str | None:
        engine = make_engine(
            f"sqlite+aiosqlite:///{data_dir}/tenants/"
            f"{provisioning.database_name(settings, good['id'])}.db",
            null_pool=True,
        )
        try:
            return await migrations.current_revision(engine)
        finally:
            await engine.dispose()

    assert asyncio.run(good_revision()) == migrations.head_revision("tenant")


def test_migrate_does_not_recreate_a_missing_tenant_file(data_dir: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    settings = _settings(data_dir)
    [tenant] = asyncio.run(_register(settings, "Lost Co"))
    path = data_dir / "tenants" / f"{provisioning.database_name(settings, tenant['id'])}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    result = runner.invoke(cli, ["migrate"])
    assert result.exit_code == 1, result.output
    assert tenant["id"] in result.output and "missing" in result.output
    assert not path.exists()  # not silently re-created empty


def test_tenants_list(data_dir: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    tenants = asyncio.run(_register(_settings(data_dir), "Listed One", "Listed Two"))
    result = runner.invoke(cli, ["tenants", "list"])
    assert result.exit_code == 0, result.output
    for tenant in tenants:
        assert tenant["id"] in result.output
        assert tenant["slug"] in result.output
        assert tenant["email"] in result.output
    assert "sqlite:" in result.output


def test_tenants_list_empty(data_dir: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    result = runner.invoke(cli, ["tenants", "list"])
    assert result.exit_code == 0, result.output


def test_health_against_a_closed_port_fails(data_dir: Path) -> None:
    result = runner.invoke(cli, ["health", "--url", f"http://127.0.0.1:{_closed_port()}"])
    assert result.exit_code != 0
    assert "unreachable" in result.output


def test_help_lists_the_commands(data_dir: Path) -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("migrate", "serve", "tenants", "health"):
        assert command in result.output
