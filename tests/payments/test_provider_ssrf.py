"""A tenant's provider ``baseUrl`` cannot aim our requests (and the tenant's secret) at
internal hosts in production, and provider errors reveal nothing about the network there
(issue 14 item 11, provider half). Development keeps any host (simulators on loopback)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import update

from novabilling.config import Settings
from novabilling.payments.credentials import provider_factory, seal
from novabilling.payments.models import PaymentProviderConfig
from novabilling.runtime import Runtime
from tests.conftest import Backend, TenantCreds, assert_error, register_tenant
from tests.payments.helpers import make_invoice
from tests.tenancy import app_client

BASE = "/api/payment-providers"
ALLOWED = "https://sandbox.paystack.test"
INTERNAL = [
    "http://127.0.0.1:6379",
    "http://localhost:5432/",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]:6379",
    "http://10.0.0.7:8080",
    "http://sandbox.paystack.test.evil.test",
    "http://evil.test\\@sandbox.paystack.test",
    "http://sandbox.paystack.test@127.0.0.1:6379",
]
MALFORMED = ["ftp://sandbox.paystack.test", "sandbox.paystack.test", "http://", "http://x:99999"]
LEAKS = ("6379", "10.1.2.3", "Errno", "ConnectError", "refused", "Connect call")


@dataclass
class Deployment:
    client: httpx.AsyncClient
    runtime: Runtime
    creds: TenantCreds


_SETTINGS: dict[tuple[int, str], tuple[Settings, Settings]] = {}


def _settings(backend: Backend, env: str) -> Settings:
    """The backend's settings for ``env`` with the allowlist: one object per backend and
    env, so that the module's tests share an app (tests/apps.py)."""
    key = (id(backend.settings), env)
    found = _SETTINGS.get(key)
    if found is None or found[0] is not backend.settings:
        update = {"env": env, "provider_base_url_allowlist": "sandbox.paystack.test, *.sim.test"}
        found = _SETTINGS[key] = (backend.settings, backend.settings.model_copy(update=update))
    return found[1]


async def _deployment(backend: Backend, env: str) -> AsyncIterator[Deployment]:
    async with app_client(_settings(backend, env), probe=False) as (client, runtime):
        yield Deployment(client, runtime, await register_tenant(client))


@pytest.fixture
async def production(backend: Backend) -> AsyncIterator[Deployment]:
    async for deployment in _deployment(backend, "production"):
        yield deployment


@pytest.fixture
async def development(backend: Backend) -> AsyncIterator[Deployment]:
    async for deployment in _deployment(backend, "development"):
        yield deployment


def _paystack(base_url: str, secret: str = "sk_test_tenant_secret") -> dict[str, str]:
    return {"secretKey": secret, "baseUrl": base_url}


async def _create(d: Deployment, base_url: str) -> httpx.Response:
    body = {"providerName": "paystack", "credentials": _paystack(base_url)}
    return await d.client.post(BASE, json=body, headers=d.creds.key_headers)


def _unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connect call failed ('10.1.2.3', 6379)")


def _record(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": True, "data": []})

    return httpx.MockTransport(handler)


async def test_production_refuses_base_urls_off_the_allowlist(production: Deployment) -> None:
    for url in INTERNAL + MALFORMED:
        assert_error(await _create(production, url), 400, "credentials.baseUrl")
    assert (await production.client.get(BASE, headers=production.creds.key_headers)).json() == []
    ok = await _create(production, ALLOWED)
    assert ok.status_code == 201, ok.text
    patch = {"credentials": _paystack("http://169.254.169.254")}
    url = f"{BASE}/{ok.json()['id']}"
    response = await production.client.patch(url, json=patch, headers=production.creds.key_headers)
    assert_error(response, 400, "credentials.baseUrl")
    deleted = await production.client.delete(url, headers=production.creds.key_headers)
    assert deleted.status_code == 200
    wildcard = await _create(production, "http://paystack.sim.test:8000/")
    assert wildcard.status_code == 201, wildcard.text


async def test_no_base_url_means_the_providers_own_host(production: Deployment) -> None:
    body = {"providerName": "paystack", "credentials": {"secretKey": "sk_live_x"}}
    created = await production.client.post(BASE, json=body, headers=production.creds.key_headers)
    assert created.status_code == 201, created.text


async def test_a_stored_refused_base_url_is_never_called(production: Deployment) -> None:
    """A row saved before the rule (or under other settings) is checked again at use."""
    d = production
    created = (await _create(d, ALLOWED)).json()
    seen: list[httpx.Request] = []
    factory = provider_factory(d.runtime)
    factory.transports["http://127.0.0.1:6379"] = _record(seen)
    sealed = seal(d.runtime.encryptor, d.creds.id, _paystack("http://127.0.0.1:6379"))
    maker = await d.runtime.engines.sessionmaker(d.creds.id)
    async with maker() as session:
        await session.execute(update(PaymentProviderConfig).values(credentials_encrypted=sealed))
        await session.commit()
    factory.forget(d.creds.id)

    tested = await d.client.post(f"{BASE}/{created['id']}/test", headers=d.creds.key_headers)
    assert tested.status_code == 201, tested.text
    assert tested.json()["success"] is False
    assert "allow-list" in tested.json()["message"]
    invoice = await make_invoice(d.client, d.creds.key_headers, currency="NGN")
    checkout = await d.client.post(
        f"/api/invoices/{invoice['id']}/checkout", json={}, headers=d.creds.key_headers
    )
    assert_error(checkout, 400)
    assert seen == []  # the tenant's secret never left for the internal host


async def test_unreachable_provider_reveals_nothing_in_production(production: Deployment) -> None:
    d = production
    provider_factory(d.runtime).transports[ALLOWED] = httpx.MockTransport(_unreachable)
    created = (await _create(d, ALLOWED)).json()
    tested = await d.client.post(f"{BASE}/{created['id']}/test", headers=d.creds.key_headers)
    assert tested.status_code == 201, tested.text
    assert tested.json() == {"success": False, "message": "paystack unreachable"}

    invoice = await make_invoice(d.client, d.creds.key_headers, currency="NGN")
    checkout = await d.client.post(
        f"/api/invoices/{invoice['id']}/checkout", json={}, headers=d.creds.key_headers
    )
    assert_error(checkout, 400)
    assert checkout.json()["message"] == "paystack unreachable"
    for text in (tested.text, checkout.text):
        assert not any(leak in text for leak in LEAKS), text


async def test_development_accepts_any_host_and_explains_failures(
    development: Deployment,
) -> None:
    d = development
    provider_factory(d.runtime).transports["http://127.0.0.1:6379"] = httpx.MockTransport(
        _unreachable
    )
    created = await _create(d, "http://127.0.0.1:6379")
    assert created.status_code == 201, created.text
    tested = await d.client.post(f"{BASE}/{created.json()['id']}/test", headers=d.creds.key_headers)
    message = tested.json()["message"]
    assert tested.json()["success"] is False
    assert message.startswith("paystack unreachable (") and "Errno 111" in message
    for url in MALFORMED:  # still a URL, in every mode
        body = {"credentials": _paystack(url)}
        response = await d.client.patch(
            f"{BASE}/{created.json()['id']}", json=body, headers=d.creds.key_headers
        )
        assert_error(response, 400, "credentials.baseUrl")


async def test_rejected_credentials_name_the_provider_and_the_cause(
    production: Deployment,
) -> None:
    d = production

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"status": False, "message": "Invalid key"})

    provider_factory(d.runtime).transports[ALLOWED] = httpx.MockTransport(refuse)
    created = (await _create(d, ALLOWED)).json()
    tested = await d.client.post(f"{BASE}/{created['id']}/test", headers=d.creds.key_headers)
    assert tested.json()["success"] is False
    assert tested.json()["message"].startswith("paystack rejected the credentials")
