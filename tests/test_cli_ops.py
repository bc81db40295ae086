"""Operations commands of the CLI: ``--version``, ``seed-demo`` (small, on SQLite, then
``doctor`` exits 0 and every analytics report has figures; a second run changes nothing)
and ``doctor`` failing on a tenant database at an old head, an unreadable one and an
unreachable Redis, warning on failed jobs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from typer.testing import CliRunner

from novabilling.app import create_app
from novabilling.bootstrap import build_runtime
from novabilling.cli import app as cli
from novabilling.config import Settings, get_settings
from tests.conftest import PG_SERVER, REDIS_URL, _pg_admin, require_postgres, require_redis

pytestmark = pytest.mark.long(seconds=25)

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("NB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NB_ENV", "test")
    monkeypatch.setenv("NB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("NB_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("NB_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("NB_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_version() -> None:
    for flag in ("--version", "-V"):
        result = runner.invoke(cli, [flag])
        assert result.exit_code == 0, result.output
        assert result.output == f"novabilling {version('novabilling')}\n"


def _doctor_json() -> tuple[int, dict[str, Any]]:
    result = runner.invoke(cli, ["doctor", "--json"])
    return result.exit_code, json.loads(result.output)


def _by_name(report: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"].startswith(prefix))


async def _analytics(
    data_dir: Path, api_key: str, settings: Settings | None = None
) -> dict[str, Any]:
    if settings is None:
        settings = Settings(env="test", data_dir=data_dir, rate_limit="0", log_level="WARNING")
    runtime = build_runtime(settings)
    out: dict[str, Any] = {}
    try:
        transport = httpx.ASGITransport(app=create_app(settings, runtime=runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            h = {"Authorization": f"Bearer {api_key}"}
            for report in (
                "revenue",
                "subscriptions",
                "customers",
                "payments",
                "mrr-breakdown",
                "net-revenue",
                "churn-cohorts",
                "ltv",
            ):
                r = await client.get(f"/api/analytics/{report}", headers=h)
                assert r.status_code == 200, r.text
                out[report] = r.json()
            for status in ("ACTIVE", "TRIALING", "PAUSED", "PAST_DUE", "CANCELED"):
                r = await client.get(f"/api/subscriptions?status={status}", headers=h)
                out[f"subscriptions.{status}"] = r.json()["meta"]["total"]
            for status in ("PENDING", "PAID", "CANCELED"):
                r = await client.get(f"/api/invoices?status={status}", headers=h)
                out[f"invoices.{status}"] = r.json()["meta"]["total"]
            r = await client.get("/api/payments?provider=paystack", headers=h)
            out["payments.paystack"] = r.json()["meta"]["total"]
    finally:
        await runtime.close()
    return out


def test_seed_demo_small_then_doctor(data_dir: Path) -> None:
    began = time.monotonic()
    result = runner.invoke(cli, ["seed-demo", "--small"])
    seeded = time.monotonic() - began
    assert result.exit_code == 0, result.output
    assert "created" in result.output
    key = re.search(r"API key:\s+(sk_live_\w+)", result.output)
    password = re.search(r"password:\s+(\S+)", result.output)
    assert key and password, result.output
    assert "Paystack simulator" in result.output  # payments went through the simulator

    code, report = _doctor_json()
    assert code == 0, report
    assert report["healthy"] is True
    tenant = _by_name(report, "tenant NovaBilling Demo")
    assert tenant["status"] == "ok" and tenant["rows"]["customers"] == 24
    assert tenant["rows"]["invoices"] > 24 and tenant["rows"]["payments"] > 24
    table = runner.invoke(cli, ["doctor"])
    assert table.exit_code == 0 and "healthy" in table.output

    figures = asyncio.run(_analytics(data_dir, key.group(1)))
    revenue = figures["revenue"]
    assert float(revenue["totalRevenue"]) > 0 and revenue["invoiceCount"] > 20
    assert float(revenue["mrr"]) > 0 and float(revenue["arr"]) > 0
    subs = figures["subscriptions"]
    assert subs["total"] == 24 and subs["canceled"] > 0 and subs["churnRate"] != "0%"
    assert float(figures["customers"]["arpu"]) > 0
    payments = figures["payments"]
    assert payments["succeeded"] > 0 and payments["failed"] > 0
    mrr = figures["mrr-breakdown"]
    assert mrr["totalMrr"] > 0 and len(mrr["byPlan"]) >= 3
    assert mrr["newMrr"] > 0 and mrr["expansionMrr"] > 0 and mrr["churnMrr"] > 0
    now = datetime.now(UTC)
    if now.day > 1 or now.hour >= 10:  # the downgrade applies at 09:00 on the 1st
        assert mrr["contractionMrr"] > 0
    net = figures["net-revenue"]
    assert net["refunds"] > 0 and net["creditNotes"] > 0
    assert 0 < net["netRevenue"] < net["grossRevenue"]
    cohorts = figures["churn-cohorts"]["cohorts"]
    assert sum(c["totalCustomers"] for c in cohorts) == 24
    assert any(0 < p < 100 for c in cohorts for p in c["retentionPercentages"])
    assert figures["ltv"]["avgLtv"] > 0 and figures["ltv"]["avgLifespanDays"] > 0
    for status in ("ACTIVE", "TRIALING", "PAUSED", "PAST_DUE", "CANCELED"):
        assert figures[f"subscriptions.{status}"] > 0, status
    for status in ("PENDING", "PAID", "CANCELED"):
        assert figures[f"invoices.{status}"] > 0, status
    assert figures["payments.paystack"] > 0

    again = runner.invoke(cli, ["seed-demo", "--small"])
    assert again.exit_code == 0, again.output
    assert "already exists" in again.output and "sk_live_" not in again.output
    tenants = runner.invoke(cli, ["tenants", "list"])
    assert tenants.output.count("NovaBilling Demo") == 1
    print(f"seed-demo --small took {seeded:.1f}s")


@pytest.mark.postgres
def test_seed_demo_on_postgres(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, pg_prefix: str
) -> None:
    """A shorter story on PostgreSQL with Redis configured (databases dropped with the
    session's prefix)."""
    require_postgres()
    require_redis()
    central = f"{pg_prefix}seed_central"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{central}"'))
    monkeypatch.setenv("NB_DATABASE_URL", PG_SERVER.rsplit("/", 1)[0] + f"/{central}")
    monkeypatch.setenv("NB_TENANT_DATABASE_URL", PG_SERVER)
    monkeypatch.setenv("NB_TENANT_DB_PREFIX", f"{pg_prefix}seed_t_")
    monkeypatch.setenv("NB_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("NB_REDIS_PREFIX", f"nbtest:seed:{secrets.token_hex(4)}")
    get_settings.cache_clear()
    result = runner.invoke(
        cli, ["seed-demo", "--customers", "10", "--months", "3", "--name", "PG Demo"]
    )
    assert result.exit_code == 0, result.output
    key = re.search(r"API key:\s+(sk_live_\w+)", result.output)
    assert key, result.output
    code, report = _doctor_json()
    assert code == 0, report
    assert _by_name(report, "tenant PG Demo")["rows"]["customers"] == 10
    assert _by_name(report, "queue payments")["status"] == "ok"
    figures = asyncio.run(_analytics(data_dir, key.group(1), get_settings()))
    assert float(figures["revenue"]["totalRevenue"]) > 0
    assert figures["mrr-breakdown"]["totalMrr"] > 0
    assert figures["payments"]["failed"] > 0 and figures["net-revenue"]["refunds"] > 0


def test_doctor_on_an_empty_installation(data_dir: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    code, report = _doctor_json()
    assert code == 0 and report["healthy"] is True
    assert [c["name"] for c in report["checks"]] == ["central database", "redis"]


def _tenant_file(data_dir: Path) -> Path:
    files = list((data_dir / "tenants").glob("*.db"))
    assert len(files) == 1, files
    return files[0]


async def _register(settings: Settings) -> None:
    runtime = build_runtime(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, runtime=runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.post(
                "/api/auth/register",
                json={
                    "name": "Ada Obi",
                    "email": "doctor@test.local",
                    "password": "correct-horse-battery",
                    "companyName": "Doctor Co",
                },
            )
            assert r.status_code == 201, r.text
    finally:
        await runtime.close()


def test_doctor_fails_on_an_old_head_and_an_unreadable_database(data_dir: Path) -> None:
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    asyncio.run(_register(get_settings()))
    code, report = _doctor_json()
    assert code == 0, report
    tenant = _by_name(report, "tenant Doctor Co")
    head = tenant["revision"]

    path = _tenant_file(data_dir)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0002'")
    code, report = _doctor_json()
    assert code == 1 and report["healthy"] is False
    tenant = _by_name(report, "tenant Doctor Co")
    assert tenant["status"] == "fail" and tenant["revision"] == "0002"
    assert tenant["head"] == head and "novabilling migrate" in tenant["detail"]
    table = runner.invoke(cli, ["doctor"])
    assert table.exit_code == 1 and "problems found" in table.output

    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (head,))
    assert _doctor_json()[0] == 0

    path.write_bytes(b"this is not a database" * 100)
    code, report = _doctor_json()
    assert code == 1
    tenant = _by_name(report, "tenant Doctor Co")
    assert tenant["status"] == "fail" and "unreachable" in tenant["detail"]


def test_doctor_redis_queues(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_redis()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    prefix = f"nbtest:doctor:{secrets.token_hex(4)}"
    monkeypatch.setenv("NB_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("NB_REDIS_PREFIX", prefix)
    get_settings.cache_clear()
    redis = Redis.from_url(REDIS_URL)
    try:
        redis.rpush(f"{prefix}:emails:wait", "1", "2")
        redis.zadd(f"{prefix}:payments:failed", {"7": 1})
        code, report = _doctor_json()
        assert code == 0, report  # failed jobs warn
        assert _by_name(report, "redis")["status"] == "ok"
        emails = _by_name(report, "queue emails")
        assert emails["status"] == "ok" and emails["waiting"] == 2
        payments = _by_name(report, "queue payments")
        assert payments["status"] == "warn" and payments["failed"] == 1
    finally:
        redis.delete(f"{prefix}:emails:wait", f"{prefix}:payments:failed")
        redis.close()

    monkeypatch.setenv("NB_REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    code, report = _doctor_json()
    assert code == 1 and _by_name(report, "redis")["status"] == "fail"
