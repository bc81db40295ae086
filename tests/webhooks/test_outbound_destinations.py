"""A tenant's webhookUrl reaches public hosts only where that is required (production, or
``NB_WEBHOOK_ALLOW_PRIVATE=false``): refused when saved, and checked again at delivery with
the host resolved and the connection pinned to a checked address; redirects never
followed; errors reveal nothing (issue 14, defect 11, webhook half)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import update

from novabilling.config import Settings
from novabilling.kit import netguard
from novabilling.kit.jobs import QUEUE_WEBHOOKS, Job
from novabilling.runtime import Runtime
from novabilling.tenancy.models import Tenant
from novabilling.webhooks import outbound
from tests.conftest import Backend, TenantCreds, assert_error, register_tenant
from tests.tenancy import app_client

PUBLIC = "https://hooks.example.com/nb?x=1"
REFUSED = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://api.localhost/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook",
    "http://[fd00::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://0.0.0.0/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://127.1/hook",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://printer.local/hook",
    "http://intranet/hook",
    "http://user:pw@hooks.example.com/hook",
    "http://hooks.example.com@127.0.0.1/hook",
    "ftp://hooks.example.com/hook",
    "gopher://hooks.example.com/",
]


@dataclass
class Deployment:
    client: httpx.AsyncClient
    runtime: Runtime
    creds: TenantCreds


_PUBLIC_ONLY: dict[int, tuple[Settings, Settings]] = {}


def _public_only_settings(backend: Backend) -> Settings:
    """The backend's settings with public receivers only: one object per backend, so that
    the module's tests share one app (tests/apps.py)."""
    found = _PUBLIC_ONLY.get(id(backend.settings))
    if found is None or found[0] is not backend.settings:
        copy = backend.settings.model_copy(update={"webhook_allow_private": False})
        found = _PUBLIC_ONLY[id(backend.settings)] = (backend.settings, copy)
    return found[1]


@pytest.fixture
async def public_only_app(backend: Backend) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    async with app_client(_public_only_settings(backend), probe=False) as pair:
        yield pair


@pytest.fixture
async def public_only(public_only_app: tuple[httpx.AsyncClient, Runtime]) -> Deployment:
    client, runtime = public_only_app
    return Deployment(client, runtime, await register_tenant(client))


@pytest.mark.parametrize("url", REFUSED)
async def test_a_non_public_webhook_url_is_refused_when_saved(
    public_only_app: tuple[httpx.AsyncClient, Runtime], shared_tenant: TenantCreds, url: str
) -> None:
    """Refused, so the module's shared tenant (registered on the same databases) is used."""
    client, _ = public_only_app
    r = await client.patch(
        "/api/tenants/me", json={"webhookUrl": url}, headers=shared_tenant.token_headers
    )
    if r.status_code == 400 and r.json()["errors"]:
        assert_error(r, 400, "webhookUrl")
        message = r.json()["errors"][0]["message"]
        assert message in (  # nothing about the network
            "webhookUrl must be a public http(s) URL",
            "webhookUrl must be a URL address",
        )
    else:
        pytest.fail(f"{url} accepted: {r.status_code} {r.text}")


async def test_a_public_webhook_url_is_saved_and_null_clears_it(public_only: Deployment) -> None:
    headers = public_only.creds.token_headers
    r = await public_only.client.patch(
        "/api/tenants/me", json={"webhookUrl": PUBLIC}, headers=headers
    )
    assert r.status_code == 200 and r.json()["webhookUrl"] == PUBLIC
    r = await public_only.client.patch(
        "/api/tenants/me", json={"webhookUrl": None}, headers=headers
    )
    assert r.status_code == 200 and r.json()["webhookUrl"] is None


async def test_development_keeps_local_receivers(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    r = await client.patch(
        "/api/tenants/me",
        json={"webhookUrl": "http://localhost:9000/hook"},
        headers=tenant.token_headers,
    )
    assert r.status_code == 200, r.text


def test_production_is_public_only_by_default(tmp_path: object) -> None:
    strong = {"secret_key": secrets.token_hex(32), "encryption_key": secrets.token_hex(32)}
    assert Settings(env="production", **strong).webhooks_public_only
    assert not Settings(env="production", webhook_allow_private=True, **strong).webhooks_public_only
    assert not Settings(env="development", **strong).webhooks_public_only


# --- delivery -----------------------------------------------------------------------------------


def _job(tenant_id: str) -> Job:
    return Job(
        queue=QUEUE_WEBHOOKS,
        name=outbound.DELIVER,
        data={
            "tenant_id": tenant_id,
            "event": "invoice.created",
            "data": {"id": "inv_1"},
            "timestamp": "2026-03-01T09:15:02.123Z",
        },
    )


async def _store_url(runtime: Runtime, tenant_id: str, url: str) -> None:
    async with runtime.central() as session:
        await session.execute(update(Tenant).where(Tenant.id == tenant_id).values(webhook_url=url))
        await session.commit()


def _capture(runtime: Runtime, status: int = 200, **extra: str) -> list[httpx.Request]:
    sent: list[httpx.Request] = []

    def receive(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, headers=extra)

    outbound.use_transport(runtime, httpx.MockTransport(receive))
    return sent


def _resolve_to(monkeypatch: pytest.MonkeyPatch, *addresses: str) -> list[str]:
    asked: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append(f"{host}:{port}")
        return list(addresses)

    monkeypatch.setattr(netguard, "RESOLVER", resolver)
    return asked


async def test_delivery_is_pinned_to_the_checked_public_address(
    public_only: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, tenant_id = public_only.runtime, public_only.creds.id
    await _store_url(runtime, tenant_id, PUBLIC)
    asked = _resolve_to(monkeypatch, "93.184.216.34", "2606:2800:220:1::1")
    sent = _capture(runtime)
    await outbound.deliver(runtime, _job(tenant_id))
    assert asked == ["hooks.example.com:443"]
    [request] = sent
    assert request.url.host == "93.184.216.34" and request.url.path == "/nb"
    assert request.url.query == b"x=1"
    assert request.headers["host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"


@pytest.mark.parametrize(
    "addresses",
    [["10.0.0.7"], ["93.184.216.34", "127.0.0.1"], ["169.254.169.254"], ["::1"], []],
)
async def test_a_host_that_resolves_to_a_private_address_is_never_called(
    public_only: Deployment, monkeypatch: pytest.MonkeyPatch, addresses: list[str]
) -> None:
    runtime, tenant_id = public_only.runtime, public_only.creds.id
    await _store_url(runtime, tenant_id, PUBLIC)
    _resolve_to(monkeypatch, *addresses)
    sent = _capture(runtime)
    with pytest.raises(outbound.DeliveryFailed, match="^destination refused$"):
        await outbound.deliver(runtime, _job(tenant_id))
    assert sent == []


async def test_a_private_url_stored_earlier_is_refused_without_a_lookup(
    public_only: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, tenant_id = public_only.runtime, public_only.creds.id
    await _store_url(runtime, tenant_id, "http://127.0.0.1:6379/")
    asked = _resolve_to(monkeypatch, "93.184.216.34")
    sent = _capture(runtime)
    with pytest.raises(outbound.DeliveryFailed):
        await outbound.deliver(runtime, _job(tenant_id))
    assert asked == [] and sent == []


async def test_redirects_are_never_followed(
    public_only: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, tenant_id = public_only.runtime, public_only.creds.id
    await _store_url(runtime, tenant_id, PUBLIC)
    _resolve_to(monkeypatch, "93.184.216.34")
    sent = _capture(runtime, 302, location="http://127.0.0.1:6379/")
    with pytest.raises(outbound.DeliveryFailed, match="HTTP 302"):
        await outbound.deliver(runtime, _job(tenant_id))
    assert [r.url.host for r in sent] == ["93.184.216.34"]


# --- the checker --------------------------------------------------------------------------------


@pytest.mark.parametrize("url", REFUSED)
def test_check_public_url_refuses(url: str) -> None:
    with pytest.raises(netguard.UnsafeDestination):
        netguard.check_public_url(url)


@pytest.mark.parametrize(
    "url",
    [
        PUBLIC,
        "http://hooks.example.com:8443/x",
        "https://93.184.216.34/h",
        "http://[2606:2800:220:1::1]/h",
    ],
)
def test_check_public_url_accepts(url: str) -> None:
    netguard.check_public_url(url)
