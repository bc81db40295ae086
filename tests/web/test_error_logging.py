"""Issue 14, defects 1-2: a failing request never stalls the server and never leaks a secret
into the logs — in both renderers (console = development, JSON = production)."""

from __future__ import annotations

import asyncio
import io
import secrets
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from novabilling.auth import service as auth_service
from novabilling.billing import accounts as customer_service
from novabilling.config import Settings
from novabilling.kit import logging as kit_logging
from novabilling.kit import passwords
from novabilling.kit.logging import configure_logging, flush_logs
from novabilling.payments import credentials as provider_credentials
from novabilling.runtime import Runtime
from novabilling.tenancy.models import Tenant
from tests.conftest import register_tenant
from tests.payments.helpers import configure
from tests.tenancy import app_client


@pytest.fixture(params=["console", "json"])
def log_mode(request: pytest.FixtureRequest) -> str:
    mode: str = request.param
    return mode


@pytest.fixture
async def logged(
    sqlite_settings: Settings, log_mode: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime, io.StringIO, dict[str, str]]]:
    """An app with its own secrets, logging at INFO into a buffer in ``log_mode``."""
    secrets_set = {
        "NB_SECRET_KEY": secrets.token_hex(32),
        "NB_ENCRYPTION_KEY": secrets.token_hex(32),
    }
    settings = sqlite_settings.model_copy(
        update={
            "secret_key": secrets_set["NB_SECRET_KEY"],
            "encryption_key": secrets_set["NB_ENCRYPTION_KEY"],
            "log_level": "INFO",
            "log_json": log_mode == "json",
        }
    )
    buffer = io.StringIO()
    async with app_client(settings, probe=False) as (client, runtime):
        configure_logging(json=log_mode == "json", level="INFO", stream=buffer)
        yield client, runtime, buffer, secrets_set
    flush_logs()
    configure_logging(json=False, level="WARNING")


async def test_a_500_never_stalls_health(
    logged: tuple[httpx.AsyncClient, Runtime, io.StringIO, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request fails deep in the stack while /health is polled: the failure is logged
    once, with its traceback but without local variables; the traceback is formatted on
    the log writer's thread, never on the event loop's (so no request waits for it), and
    /health keeps answering meanwhile. Checked by where the work runs, not by timing
    (timings on a shared machine are not a test)."""
    client, _runtime, buffer, _ = logged
    canary = f"LOCAL-CANARY-{secrets.token_hex(6)}"
    rendered_on: list[str] = []
    render_line = kit_logging._Renderer.line

    def recording_line(
        self: kit_logging._Renderer, logger: Any, method: str, event_dict: dict[str, Any]
    ) -> str:
        if event_dict.get("exc_info"):
            rendered_on.append(threading.current_thread().name)
        return render_line(self, logger, method, event_dict)

    async def explode(*_args: Any, **_kwargs: Any) -> dict[str, Any]:
        big_local = {f"key{i}": canary * 3 for i in range(500)}
        raise RuntimeError(f"boom with {len(big_local)} entries")

    assert (await client.get("/health")).status_code == 200
    assert (await client.post("/api/auth/login", json={})).status_code == 400
    monkeypatch.setattr(kit_logging._Renderer, "line", recording_line)
    monkeypatch.setattr(auth_service, "login", explode)
    loop_thread = threading.current_thread().name
    failing = asyncio.create_task(
        client.post("/api/auth/login", json={"email": "a@test.local", "password": "pw123456"})
    )
    answered = 0
    while not failing.done() or answered < 20:
        assert (await client.get("/health")).status_code == 200
        answered += 1
        await asyncio.sleep(0.002)
    failed = await failing
    assert failed.status_code == 500
    flush_logs()
    assert rendered_on == ["log-writer"] and loop_thread != "log-writer"
    text = buffer.getvalue()
    assert text.count("request.unhandled") == 1, text[-2000:]
    assert "Traceback" in text and "boom with 500 entries" in text
    assert canary not in text  # no locals, in either renderer
    assert len(text.splitlines()) < 400


async def test_no_secret_in_any_log_line(
    logged: tuple[httpx.AsyncClient, Runtime, io.StringIO, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Set every kind of secret, trigger failures where they sit in local variables and
    exception messages, then grep the captured logs for each of them."""
    client, runtime, buffer, secret_values = logged
    tenant = await register_tenant(client)
    extra = await client.post(
        "/api/tenants/me/api-keys", json={"name": "ci", "scopes": []}, headers=tenant.token_headers
    )
    assert extra.status_code == 201
    me = (await client.get("/api/tenants/me", headers=tenant.token_headers)).json()
    paystack_secret = f"sk_test_{secrets.token_hex(20)}"
    provider = await configure(
        client,
        tenant.key_headers,
        credentials={
            "publicKey": "pk_test_sim",
            "secretKey": paystack_secret,
            "baseUrl": "http://paystack.sim",
        },
    )
    async with runtime.central() as session:
        stored = await session.get(Tenant, tenant.id)
        assert stored is not None
        password_hash = stored.password_hash

    # 1. login fails after the tenant row (hash) and the password are in local variables
    async def verify_fails(stored_hash: str | None, password: str) -> bool:
        raise RuntimeError(f"verifier crashed for {stored_hash} ({len(password)} chars)")

    monkeypatch.setattr(passwords, "verify_password", verify_fails)
    r = await client.post(
        "/api/auth/login", json={"email": tenant.email, "password": tenant.password}
    )
    assert r.status_code == 500

    # 2. a provider test fails after its credentials were decrypted
    real_build = provider_credentials.ProviderFactory.build

    def build_fails(self: Any, name: str, config: Any, *, tenant_id: str) -> Any:
        real_build(self, name, config, tenant_id=tenant_id)
        raise RuntimeError(f"adapter crashed with {dict(config)}")

    monkeypatch.setattr(provider_credentials.ProviderFactory, "build", build_fails)
    r = await client.post(
        f"/api/payment-providers/{provider['id']}/test", headers=tenant.key_headers
    )
    assert r.status_code == 500

    # 3. a data request fails with the caller's credential in the exception text
    async def list_fails(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError(
            f"listing failed for Authorization: Bearer {tenant.api_key}, "
            f"token {tenant.access_token}, settings {runtime.settings!r}"
        )

    monkeypatch.setattr(customer_service, "list_customers", list_fails)
    for headers in (tenant.key_headers, tenant.token_headers):
        r = await client.get("/api/customers", headers=headers)
        assert r.status_code == 500

    flush_logs()
    text = buffer.getvalue()
    assert text.count("request.unhandled") == 4, text[-3000:]
    leaked = {
        **secret_values,
        "primary API key": tenant.api_key,
        "extra API key": extra.json()["key"],
        "access token": tenant.access_token,
        "refresh token": tenant.refresh_token,
        "password": tenant.password,
        "password hash": password_hash,
        "webhook secret": me["webhookSecret"],
        "paystack secretKey": paystack_secret,
    }
    found = [name for name, value in leaked.items() if value in text]
    assert found == [], f"secrets in the logs: {found}"
    assert "$argon2" not in text.replace("$argon2***", "")
