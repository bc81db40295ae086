"""Process-wide services built once from Settings: engines, caches, queue, limiter.

Created by the composition roots (``bootstrap.build_runtime``: the app lifespan, CLI
commands, workers), which also attach the job queue with every handler; nothing here is
global state reached from a request except through ``request.app.state.runtime``.
This module knows no domain: domains receive the ``Runtime`` and use its services."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from novabilling.config import Settings
from novabilling.kit import passwords
from novabilling.kit.clock import Clock, SystemClock
from novabilling.kit.crypto import Encryptor, key_from_setting
from novabilling.kit.db import make_engine, read_sessions
from novabilling.kit.jobs import JobHandlers, JobQueue
from novabilling.kit.jobs_bullmq import BullMQQueue
from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.kit.pools import ConnectionBudget
from novabilling.kit.ratelimit import (
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    parse_rate_limit,
)
from novabilling.kit.redaction import register_secret
from novabilling.kit.tokens import TokenSigner
from novabilling.notifications.mailer import Mailer, default_mailer
from novabilling.notifications.views import Mailbox
from novabilling.tenancy.engines import EngineRegistry
from novabilling.tenancy.principal import PrincipalResolver
from novabilling.tenancy.profiles import TenantProfiles


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    central_engine: AsyncEngine
    central: async_sessionmaker[AsyncSession]
    engines: EngineRegistry
    encryptor: Encryptor
    signer: TokenSigner
    principals: PrincipalResolver
    limiter: RateLimiter | None
    rate: tuple[int, int] | None
    redis: Redis | None
    mailer: Mailer
    sender: Mailbox
    tenant_profiles: TenantProfiles
    jobs: JobQueue | None = None
    started_at: float = field(default_factory=time.monotonic)
    extras: dict[str, Any] = field(default_factory=dict)

    async def close(self) -> None:
        await self.engines.dispose_all()
        await self.central_engine.dispose()
        if self.jobs is not None:
            await self.jobs.close()
        if self.limiter is not None:
            await self.limiter.close()
        if self.redis is not None:
            await self.redis.aclose()


def attach_jobs(runtime: Runtime, handlers: JobHandlers) -> JobQueue:
    """Give ``runtime`` its job queue: BullMQ on Redis when configured (workers consume it
    with the same handlers), else the in-process runner executing ``handlers`` itself."""
    settings = runtime.settings
    if settings.redis_url:
        runtime.jobs = BullMQQueue(settings.redis_url, prefix=settings.redis_prefix)
    else:
        runtime.jobs = InProcessQueue(handlers)
    return runtime.jobs


def _redis_client(url: str) -> Redis:
    """Short timeouts; one immediate retry on a connection error, so a pooled connection
    that died with a Redis restart is replaced instead of failing the call (that gave
    /health/ready a false 503 right after Redis came back, issue 14 defect 13)."""
    return Redis.from_url(
        url,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[RedisConnectionError],
    )


def make_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    """Every process service but the job queue (``attach_jobs``; ``bootstrap`` does both)."""
    clock = clock or SystemClock()
    passwords.configure(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
    central_engine = make_engine(
        settings.central_url, pool_size=settings.central_pool_size, pgbouncer=settings.pgbouncer
    )
    budget = ConnectionBudget(
        settings.max_db_connections - settings.central_pool_size,
        timeout=settings.db_pool_timeout,
    )
    central = async_sessionmaker(central_engine, expire_on_commit=False)
    # the per-request look-ups of a tenant whose cached entries expired: API key, tenant
    # active, profile, database location (no BEGIN/ROLLBACK round trips around them)
    central_reads = read_sessions(central_engine, pgbouncer=settings.pgbouncer)
    assert settings.encryption_key and settings.secret_key
    register_secret(settings.secret_key, settings.encryption_key)
    encryptor = Encryptor(key_from_setting(settings.encryption_key))
    signer = TokenSigner(
        settings.secret_key,
        access_minutes=settings.access_token_minutes,
        refresh_days=settings.refresh_token_days,
    )
    redis = _redis_client(settings.redis_url) if settings.redis_url else None
    rate = parse_rate_limit(settings.rate_limit)
    limiter: RateLimiter | None = None
    if rate is not None:
        limiter = (
            RedisRateLimiter(redis, prefix=f"{settings.redis_prefix}:rl")
            if redis is not None
            else MemoryRateLimiter()
        )
    runtime = Runtime(
        settings=settings,
        clock=clock,
        central_engine=central_engine,
        central=central,
        engines=EngineRegistry(
            central=central_reads,
            encryptor=encryptor,
            max_engines=settings.tenant_engine_cache_size,
            pool_size=settings.tenant_pool_size,
            max_overflow=settings.tenant_pool_overflow,
            idle_seconds=settings.tenant_engine_idle_seconds,
            budget=budget,
            pgbouncer=settings.pgbouncer,
            url_ttl=settings.tenant_url_ttl,
        ),
        encryptor=encryptor,
        signer=signer,
        principals=PrincipalResolver(
            central=central,
            reads=central_reads,
            signer=signer,
            clock=clock,
            ttl=settings.principal_cache_seconds,
        ),
        limiter=limiter,
        rate=rate,
        redis=redis,
        mailer=default_mailer(smtp_url=settings.smtp_url, data_dir=settings.data_dir),
        sender=Mailbox(settings.mail_from_address, settings.mail_from_name),
        tenant_profiles=TenantProfiles(central_reads, ttl=settings.principal_cache_seconds),
    )
    return runtime
