"""Idempotency keys (STYLE convention 8; Stripe's semantics, lago's record design): the
record of one ``Idempotency-Key`` in the tenant's own database, so keys are scoped per
tenant by construction.

One row per key (unique). ``request_hash`` is a versioned SHA-256 of what makes two requests
"the same" (method, path with query, canonical JSON body). A row is ``in_flight`` from the
moment a request claims the key until its 2xx answer is stored (``done``, replayed for 24 h)
or it fails (the row is deleted, so the client may retry with the same key). The stored
answer is sealed with the tenant's encryption (it may hold a secret shown once, such as a
new API key).

``claim`` is the only way in: an INSERT in its own short transaction, so two concurrent
requests with one key can never both proceed — the unique index decides (PostgreSQL makes
the second INSERT wait for the first commit, then fail).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import Index, Integer, String, Text, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from novabilling.kit.crypto import Encryptor
from novabilling.kit.db import TenantBase, id_column
from novabilling.kit.ids import new_id

TTL = timedelta(hours=24)
HASH_VERSION = "idem-v1"
IN_FLIGHT = "in_flight"
DONE = "done"
MAX_KEY_LENGTH = 255


class IdempotencyRecord(TenantBase):
    __tablename__ = "idempotency_records"
    __table_args__ = (Index("ix_idempotency_records_expires_at", "expires_at"),)

    id: Mapped[str] = id_column()
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), unique=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(2048))
    state: Mapped[str] = mapped_column(String(16))
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_type: Mapped[str | None] = mapped_column(String(200), default=None)
    response_sealed: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


def request_hash(method: str, path: str, body: bytes) -> str:
    """Same method, path (with query) and JSON body (whitespace and key order aside)."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body else b""
    except orjson.JSONDecodeError:
        canonical = body
    digest = hashlib.sha256()
    for part in (HASH_VERSION.encode(), method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class Claimed:
    record_id: str


@dataclass(frozen=True)
class Replay:
    status: int
    content_type: str | None
    body: bytes


@dataclass(frozen=True)
class Busy:
    """Another request holds the key right now."""


@dataclass(frozen=True)
class Mismatch:
    """The key was used for a different request."""


Claim = Claimed | Replay | Busy | Mismatch
Sessions = async_sessionmaker[AsyncSession]


def _aad(tenant_id: str, key: str) -> bytes:
    return f"{tenant_id}:idempotency:{key}".encode()


async def claim(
    sessions: Sessions,
    *,
    key: str,
    fingerprint: str,
    method: str,
    path: str,
    now: datetime,
    encryptor: Encryptor,
    tenant_id: str,
) -> Claim:
    """Claim ``key`` for this request, or say why not (a replay, busy, or mismatch)."""
    for _ in range(2):  # a second round only after removing an expired record
        record_id = new_id()
        async with sessions() as session:
            session.add(
                IdempotencyRecord(
                    id=record_id,
                    key=key,
                    request_hash=fingerprint,
                    method=method,
                    path=path[:2048],
                    state=IN_FLIGHT,
                    created_at=now,
                    expires_at=now + TTL,
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
            else:
                return Claimed(record_id)
        async with sessions() as session:
            found = await session.scalar(
                select(IdempotencyRecord).where(IdempotencyRecord.key == key)
            )
            if found is None:
                continue  # released meanwhile: try again
            if found.expires_at <= now:
                await session.execute(
                    delete(IdempotencyRecord).where(IdempotencyRecord.id == found.id)
                )
                await session.commit()
                continue
        return _existing(found, fingerprint, encryptor=encryptor, tenant_id=tenant_id)
    return Busy()


def _existing(
    found: IdempotencyRecord, fingerprint: str, *, encryptor: Encryptor, tenant_id: str
) -> Claim:
    if found.request_hash != fingerprint:
        return Mismatch()
    if found.state != DONE or found.response_status is None:
        return Busy()
    body = b""
    if found.response_sealed:
        body = encryptor.decrypt(found.response_sealed, aad=_aad(tenant_id, found.key)).encode()
    return Replay(found.response_status, found.response_type, body)


async def complete(
    sessions: Sessions,
    record_id: str,
    *,
    key: str,
    status: int,
    content_type: str | None,
    body: bytes,
    encryptor: Encryptor,
    tenant_id: str,
) -> None:
    """Store the answer to replay (sealed) and mark the key done."""
    sealed = encryptor.encrypt(body.decode("utf-8", errors="replace"), aad=_aad(tenant_id, key))
    async with sessions() as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.id == record_id)
            .values(
                state=DONE,
                response_status=status,
                response_type=content_type[:200] if content_type else None,
                response_sealed=sealed,
            )
        )
        await session.commit()


async def release(sessions: Sessions, record_id: str) -> None:
    """The request failed: forget the key, so the client may retry with it."""
    async with sessions() as session:
        await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
        await session.commit()


async def expire(session: AsyncSession, *, now: datetime) -> int:
    """Delete records past their 24 h (the scheduler's hourly hook); returns how many."""
    result = await session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.expires_at <= now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
