"""POST /api/auth/refresh (rotation, reuse revokes the family) and the password reset flow
(contract auth.md), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from novabilling.kit.clock import TestClock
from novabilling.kit.jobs_inprocess import InProcessQueue
from novabilling.runtime import Runtime
from novabilling.worker import build_handlers
from tests.conftest import Backend, TenantCreds, assert_error, register_tenant
from tests.tenancy import PROBE, app_client, client_app, install_probe


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class Clocked:
    client: httpx.AsyncClient
    clock: TestClock
    runtime: Runtime


@pytest.fixture
async def clocked(backend: Backend) -> AsyncIterator[Clocked]:
    clock = TestClock(datetime.now(UTC))
    async with app_client(backend.settings, clock=clock) as (c, rt):
        yield Clocked(c, clock, rt)


@pytest.fixture
def probe(client: httpx.AsyncClient) -> str:
    install_probe(client_app(client))
    return PROBE


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/auth/refresh", json={"refreshToken": token})


# --- refresh ---------------------------------------------------------------------------------


async def test_refresh_rotates_the_pair(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    r = await _refresh(client, tenant.refresh_token)
    assert r.status_code == 200, r.text
    pair = r.json()
    assert set(pair) == {"accessToken", "refreshToken"}
    assert pair["refreshToken"] != tenant.refresh_token
    me = await client.get("/api/tenants/me", headers=bearer(pair["accessToken"]))
    assert me.status_code == 200 and me.json()["id"] == tenant.id
    again = await _refresh(client, pair["refreshToken"])
    assert again.status_code == 200, again.text
    assert again.json()["refreshToken"] not in (pair["refreshToken"], tenant.refresh_token)


def _past_grace(clocked: Clocked) -> None:
    grace = clocked.runtime.settings.refresh_reuse_grace_seconds
    clocked.clock.advance(timedelta(seconds=grace + 1))


async def test_reusing_a_refresh_token_after_the_grace_window_revokes_the_whole_family(
    clocked: Clocked,
) -> None:
    c = clocked.client
    creds = await register_tenant(c)
    first = (await _refresh(c, creds.refresh_token)).json()
    second = (await _refresh(c, first["refreshToken"])).json()
    _past_grace(clocked)
    # a stolen, already used token comes back after the window
    assert_error(await _refresh(c, creds.refresh_token), 401)
    # ... so the newest token of that family is dead too, and so is a grace reuse
    assert_error(await _refresh(c, second["refreshToken"]), 401)
    assert_error(await _refresh(c, first["refreshToken"]), 401)


async def test_reuse_within_the_grace_window_returns_a_pair_of_the_same_family(
    clocked: Clocked,
) -> None:
    c = clocked.client
    creds = await register_tenant(c)
    first = await _refresh(c, creds.refresh_token)
    assert first.status_code == 200, first.text
    clocked.clock.advance(timedelta(seconds=clocked.runtime.settings.refresh_reuse_grace_seconds))
    again = await _refresh(c, creds.refresh_token)  # exactly at the window's edge: still fine
    assert again.status_code == 200, again.text
    for pair in (first.json(), again.json()):
        me = await c.get("/api/tenants/me", headers=bearer(pair["accessToken"]))
        assert me.status_code == 200, me.text
        assert (await _refresh(c, pair["refreshToken"])).status_code == 200
    # same family: a late reuse of the original revokes the tokens issued in the window too
    _past_grace(clocked)
    assert_error(await _refresh(c, creds.refresh_token), 401)
    assert_error(await _refresh(c, again.json()["refreshToken"]), 401)


async def test_a_grace_reuse_does_not_reopen_a_revoked_family(clocked: Clocked) -> None:
    c = clocked.client
    creds = await register_tenant(c)
    first = (await _refresh(c, creds.refresh_token)).json()
    _past_grace(clocked)
    second = (await _refresh(c, first["refreshToken"])).json()  # first use of `first`: fine
    assert_error(await _refresh(c, creds.refresh_token), 401)  # late reuse: family revoked
    # `first` was used only a moment ago (inside its window) but its family is revoked now
    assert_error(await _refresh(c, first["refreshToken"]), 401)
    assert_error(await _refresh(c, second["refreshToken"]), 401)


async def test_twenty_concurrent_refreshes_with_one_token_all_succeed(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    """A page firing many requests with an expired access token refreshes once per request."""
    responses = await asyncio.gather(*(_refresh(client, tenant.refresh_token) for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    pairs = [r.json() for r in responses]
    for pair in pairs:
        me = await client.get("/api/tenants/me", headers=bearer(pair["accessToken"]))
        assert me.status_code == 200 and me.json()["id"] == tenant.id
    # every returned refresh token is a live token of the family
    follow_ups = await asyncio.gather(*(_refresh(client, p["refreshToken"]) for p in pairs))
    assert [r.status_code for r in follow_ups] == [200] * 20, [r.text for r in follow_ups]


async def test_family_revocation_spares_other_sessions(clocked: Clocked) -> None:
    c = clocked.client
    creds = await register_tenant(c)
    login = await c.post("/api/auth/login", json={"email": creds.email, "password": creds.password})
    other_session = login.json()["refreshToken"]
    await _refresh(c, creds.refresh_token)
    _past_grace(clocked)
    assert_error(await _refresh(c, creds.refresh_token), 401)  # reuse: family revoked
    r = await _refresh(c, other_session)
    assert r.status_code == 200, r.text


async def test_access_token_is_rejected_at_refresh(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    assert_error(await _refresh(client, tenant.access_token), 401)
    assert_error(await _refresh(client, tenant.api_key), 401)
    assert_error(await _refresh(client, "a.b.c"), 401)
    assert_error(await _refresh(client, tenant.refresh_token[:-4] + "AAAA"), 401)


async def test_refresh_token_is_not_an_access_token(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, probe: str
) -> None:
    headers = bearer(shared_tenant.refresh_token)
    assert_error(await client.get("/api/tenants/me", headers=headers), 401)
    assert_error(await client.get("/api/tenants/me/api-keys", headers=headers), 401)
    assert_error(await client.get(probe, headers=headers), 401)
    assert (await client.get(probe, headers=shared_tenant.token_headers)).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "refreshToken"),
        ({"refreshToken": ""}, "refreshToken"),
        ({"refreshToken": 123}, "refreshToken"),
        ({"refreshToken": None}, "refreshToken"),
        ({"refreshToken": "x", "extra": 1}, "property"),
    ],
)
async def test_refresh_validation(client: httpx.AsyncClient, body: dict, field: str) -> None:
    assert_error(await client.post("/api/auth/refresh", json=body), 400, field)


async def test_refresh_for_a_deactivated_tenant_is_401(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    from sqlalchemy import update

    from novabilling.tenancy.models import Tenant

    async with runtime.central() as session:
        await session.execute(update(Tenant).where(Tenant.id == tenant.id).values(is_active=False))
        await session.commit()
    assert_error(await _refresh(client, tenant.refresh_token), 401)


async def test_expired_access_token_is_401(clocked: Clocked) -> None:
    creds = await register_tenant(clocked.client)
    ok = await clocked.client.get("/api/tenants/me", headers=creds.token_headers)
    assert ok.status_code == 200
    assert (await clocked.client.get(PROBE, headers=creds.token_headers)).status_code == 200
    minutes = clocked.runtime.settings.access_token_minutes
    clocked.clock.advance(timedelta(minutes=minutes, seconds=1))
    assert_error(await clocked.client.get("/api/tenants/me", headers=creds.token_headers), 401)
    assert_error(await clocked.client.get(PROBE, headers=creds.token_headers), 401)
    # the refresh token (7 days) still works and gives a fresh access token
    pair = await _refresh(clocked.client, creds.refresh_token)
    assert pair.status_code == 200, pair.text
    me = await clocked.client.get("/api/tenants/me", headers=bearer(pair.json()["accessToken"]))
    assert me.status_code == 200


async def test_expired_refresh_token_is_401(clocked: Clocked) -> None:
    creds = await register_tenant(clocked.client)
    days = clocked.runtime.settings.refresh_token_days
    clocked.clock.advance(timedelta(days=days, seconds=1))
    assert_error(await _refresh(clocked.client, creds.refresh_token), 401)


# --- forgot / reset password -----------------------------------------------------------------


def _mails_to(mail_dir: Path, email: str) -> list[EmailMessage]:
    if not mail_dir.exists():
        return []
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        msg = message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if email in str(msg["To"]):
            found.append(msg)
    return found


def _reset_token(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    text = part.get_content()
    match = re.search(r"token=([0-9a-f]{64})", text)
    assert match, text
    return match.group(1)


async def _forgot(client: httpx.AsyncClient, email: str, runtime: Runtime) -> httpx.Response:
    """Ask for a reset mail and run the queued job (in process, on both backends)."""
    queue = runtime.jobs
    if not isinstance(queue, InProcessQueue):
        if queue is not None:
            await queue.close()
        queue = runtime.jobs = InProcessQueue(build_handlers(runtime))
    response = await client.post("/api/auth/forgot-password", json={"email": email})
    await queue.join()
    return response


async def _reset(client: httpx.AsyncClient, token: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/auth/reset-password", json={"token": token, "newPassword": password}
    )


async def test_forgot_password_answers_the_same_for_unknown_email(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    unknown = f"nobody-{secrets.token_hex(4)}@test.local"
    known = await _forgot(client, tenant.email, runtime)
    other = await _forgot(client, unknown, runtime)
    assert known.status_code == other.status_code == 200
    assert known.json() == other.json()
    assert set(known.json()) == {"message"}
    assert len(_mails_to(runtime.settings.mail_dir, tenant.email)) == 1
    assert _mails_to(runtime.settings.mail_dir, unknown) == []


async def test_reset_password_flow(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, probe: str
) -> None:
    await _forgot(client, tenant.email, runtime)
    [mail] = _mails_to(runtime.settings.mail_dir, tenant.email)
    token = _reset_token(mail)

    # the reset token never authenticates an API call
    assert_error(await client.get("/api/tenants/me", headers=bearer(token)), 401)
    assert_error(await client.get(probe, headers=bearer(token)), 401)
    assert_error(await client.get(probe, headers={"Authorization": token}), 401)

    r = await _reset(client, token, "a-brand-new-password")
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"message"}

    # single use
    assert_error(await _reset(client, token, "yet-another-password"), 400)

    old = await client.post(
        "/api/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    assert_error(old, 401)
    new = await client.post(
        "/api/auth/login", json={"email": tenant.email, "password": "a-brand-new-password"}
    )
    assert new.status_code == 200, new.text
    # a password change ends the sessions that existed before it
    assert_error(await _refresh(client, tenant.refresh_token), 401)


async def test_reset_with_unknown_token_is_400(client: httpx.AsyncClient) -> None:
    assert_error(await _reset(client, "0" * 64, "a-brand-new-password"), 400)
    assert_error(await _reset(client, "not-a-token", "a-brand-new-password"), 400)


async def test_access_token_is_not_a_reset_token(
    client: httpx.AsyncClient, shared_tenant: TenantCreds
) -> None:
    assert_error(await _reset(client, shared_tenant.access_token, "a-brand-new-password"), 400)
    assert_error(await _reset(client, shared_tenant.refresh_token, "a-brand-new-password"), 400)


async def test_expired_reset_token_is_400(clocked: Clocked) -> None:
    creds = await register_tenant(clocked.client)
    await _forgot(clocked.client, creds.email, clocked.runtime)
    [mail] = _mails_to(clocked.runtime.settings.mail_dir, creds.email)
    clocked.clock.advance(timedelta(hours=1, seconds=1))
    assert_error(await _reset(clocked.client, _reset_token(mail), "a-brand-new-password"), 400)
    ok = await clocked.client.post(
        "/api/auth/login", json={"email": creds.email, "password": creds.password}
    )
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/auth/forgot-password", {}, "email"),
        ("/api/auth/forgot-password", {"email": "not-an-email"}, "email"),
        ("/api/auth/forgot-password", {"email": "a@test.local", "x": 1}, "property"),
        ("/api/auth/reset-password", {"newPassword": "long-enough"}, "token"),
        ("/api/auth/reset-password", {"token": "", "newPassword": "long-enough"}, "token"),
        ("/api/auth/reset-password", {"token": "abc"}, "newPassword"),
        ("/api/auth/reset-password", {"token": "abc", "newPassword": "short"}, "newPassword"),
    ],
)
async def test_forgot_reset_validation(
    client: httpx.AsyncClient, path: str, body: dict, field: str
) -> None:
    assert_error(await client.post(path, json=body), 400, field)
