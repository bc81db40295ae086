"""``novabilling doctor``: is this installation healthy?

Checks, each ``ok`` / ``warn`` / ``fail`` with a detail:

- central database: connects, schema at the central migration head;
- Redis (when ``NB_REDIS_URL`` is set): answers PING; per BullMQ queue the jobs waiting,
  delayed, active and failed (failed jobs are a ``warn``: they need a look, the service
  runs);
- every tenant database: its URL decrypts, it connects, its schema is at the tenant head
  (an older or unknown revision is a ``fail``: run ``novabilling migrate``), row counts of
  the main tables, outbox rows not yet pushed (``warn`` when some are over an hour old).

Any ``fail`` makes the exit code 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from novabilling.config import Settings
from novabilling.kit.clock import SystemClock
from novabilling.kit.crypto import Encryptor, key_from_setting
from novabilling.kit.db import make_engine
from novabilling.kit.jobs import ALL_QUEUES
from novabilling.kit.outbox import OutboxMessage
from novabilling.tenancy import migrations
from novabilling.tenancy.models import DatabaseConnection, Tenant

Status = Literal["ok", "warn", "fail"]
COUNTED = ("customers", "plans", "subscriptions", "invoices", "payments")
STALE_OUTBOX = timedelta(hours=1)
_BULL_STATES = {"waiting": "wait", "delayed": "delayed", "active": "active", "failed": "failed"}


@dataclass
class Check:
    name: str
    status: Status
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, **self.data}


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "checks": [c.as_json() for c in self.checks]}


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


async def _revision(conn: AsyncConnection) -> str | None:
    return await conn.run_sync(migrations._current)


async def check_central(settings: Settings) -> tuple[Check, list[tuple[str, str, str]]]:
    """The central check and (tenant id, name, sealed URL) of every tenant database."""
    head = migrations.head_revision("central")
    engine = make_engine(settings.central_url, null_pool=True, pgbouncer=settings.pgbouncer)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            revision = await _revision(conn)
            tenants = int(await conn.scalar(select(func.count()).select_from(Tenant)) or 0)
            rows = (
                await conn.execute(
                    select(
                        DatabaseConnection.tenant_id, Tenant.name, DatabaseConnection.url_encrypted
                    )
                    .join(Tenant, Tenant.id == DatabaseConnection.tenant_id)
                    .order_by(Tenant.created_at)
                )
            ).all()
    except Exception as exc:
        return Check("central database", "fail", _error(exc)), []
    finally:
        await engine.dispose()
    data = {"revision": revision, "head": head, "tenants": tenants}
    if revision != head:
        detail = f"schema at {revision}, head is {head}: run novabilling migrate"
        return Check("central database", "fail", detail, data), []
    return (
        Check("central database", "ok", f"revision {revision}, {tenants} tenants", data),
        [(r[0], r[1], r[2]) for r in rows],
    )


async def check_redis(settings: Settings) -> list[Check]:
    if not settings.redis_url:
        return [Check("redis", "ok", "not configured: jobs run in process (embedded)")]
    client = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        await client.ping()
        checks = [Check("redis", "ok", "PING answered")]
        for queue in ALL_QUEUES:
            key = f"{settings.redis_prefix}:{queue}"
            counts = {
                "waiting": int(await client.llen(f"{key}:wait")),
                "delayed": int(await client.zcard(f"{key}:delayed")),
                "active": int(await client.llen(f"{key}:active")),
                "failed": int(await client.zcard(f"{key}:failed")),
            }
            status: Status = "warn" if counts["failed"] else "ok"
            detail = ", ".join(f"{n} {state}" for state, n in counts.items())
            checks.append(Check(f"queue {queue}", status, detail, counts))
        return checks
    except Exception as exc:
        return [Check("redis", "fail", _error(exc))]
    finally:
        await client.aclose()


async def check_tenant(
    settings: Settings, encryptor: Encryptor, tenant_id: str, name: str, sealed: str, now: datetime
) -> Check:
    label = f"tenant {name} ({tenant_id})"
    head = migrations.head_revision("tenant")
    try:
        url = encryptor.decrypt(sealed, aad=tenant_id.encode())
    except Exception as exc:
        return Check(label, "fail", f"database URL does not decrypt: {_error(exc)}")
    engine = make_engine(url, null_pool=True, pgbouncer=settings.pgbouncer)
    try:
        async with engine.connect() as conn:
            revision = await _revision(conn)
            if revision != head:
                detail = f"schema at {revision}, head is {head}: run novabilling migrate"
                return Check(label, "fail", detail, {"revision": revision, "head": head})
            counts = {
                table: int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
                for table in COUNTED
            }
            outbox = int(await conn.scalar(select(func.count()).select_from(OutboxMessage)) or 0)
            stale = int(
                await conn.scalar(
                    select(func.count())
                    .select_from(OutboxMessage)
                    .where(OutboxMessage.created_at < now - STALE_OUTBOX)
                )
                or 0
            )
    except Exception as exc:
        return Check(label, "fail", f"unreachable: {_error(exc)}")
    finally:
        await engine.dispose()
    data = {"revision": revision, "rows": counts, "outbox": outbox, "staleOutbox": stale}
    detail = f"revision {revision}; " + ", ".join(f"{n} {t}" for t, n in counts.items())
    if stale:
        return Check(label, "warn", detail + f"; {stale} outbox rows over an hour old", data)
    return Check(label, "ok", detail, data)


async def diagnose(settings: Settings) -> Report:
    report = Report()
    central, tenants = await check_central(settings)
    report.checks.append(central)
    report.checks.extend(await check_redis(settings))
    if tenants:
        assert settings.encryption_key
        encryptor = Encryptor(key_from_setting(settings.encryption_key))
        now = SystemClock().now()
        for tenant_id, name, sealed in tenants:
            report.checks.append(
                await check_tenant(settings, encryptor, tenant_id, name, sealed, now)
            )
    return report
