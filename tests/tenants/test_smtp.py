"""The tenant's own SMTP settings: the password sealed at rest (issue 14, defect 12) and
POST /api/tenants/me/smtp/test answering 400, never 500, for a bad recipient or a CR/LF
anywhere in it (defect 10)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from novabilling.notifications.smtp_settings import SEALED_PREFIX
from novabilling.runtime import Runtime
from novabilling.tenancy.models import Tenant
from novabilling.tenancy.operations import migrate_central
from tests.conftest import TenantCreds, assert_error
from tests.notifications.test_mailer import PASSWORD, Collector, start

TEST = "/api/tenants/me/smtp/test"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, int]]:
    yield from start(Collector())


def _smtp(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "port": port,
        "secure": False,
        "user": "acme",
        "password": PASSWORD,
        "from": "billing@acme.test",
        "fromName": "Acme Billing",
        **extra,
    }


async def _stored_settings(runtime: Runtime, tenant_id: str) -> dict[str, Any]:
    async with runtime.central() as session:
        tenant = await session.get(Tenant, tenant_id)
    assert tenant is not None and tenant.settings is not None
    return dict(tenant.settings)


async def test_the_password_is_sealed_at_rest_and_opened_to_send(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    smtp_server: tuple[Collector, int],
) -> None:
    collector, port = smtp_server
    r = await client.patch(
        "/api/tenants/me", json={"settings": {"smtp": _smtp(port)}}, headers=tenant.token_headers
    )
    assert r.status_code == 200, r.text
    stored = await _stored_settings(runtime, tenant.id)
    assert stored["smtp"]["password"].startswith(SEALED_PREFIX)
    assert PASSWORD not in json.dumps(stored)

    sent = await client.post(TEST, json={"to": "ops@acme.test"}, headers=tenant.token_headers)
    assert sent.status_code == 201, sent.text
    assert sent.json() == {"message": "Test email sent to ops@acme.test"}
    assert [e.rcpt_tos for e in collector.envelopes] == [["ops@acme.test"]]

    # a sealed value copied to another tenant does not open there
    other = await client.post(
        "/api/auth/register",
        json={"name": "Bo", "email": "bo@test.local", "password": "x" * 10, "companyName": "Bo"},
    )
    other_token = {"Authorization": f"Bearer {other.json()['accessToken']}"}
    async with runtime.central() as session:
        await session.execute(
            update(Tenant)
            .where(Tenant.id == other.json()["tenant"]["id"])
            .values(settings={"smtp": stored["smtp"]})
        )
        await session.commit()
    r = await client.post(TEST, json={"to": "ops@acme.test"}, headers=other_token)
    assert_error(r, 400)
    assert "could not be decrypted" in r.json()["message"]
    assert len(collector.envelopes) == 1


async def test_a_password_stored_in_clear_still_works_and_migrate_seals_it(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    runtime: Runtime,
    smtp_server: tuple[Collector, int],
) -> None:
    collector, port = smtp_server
    async with runtime.central() as session:
        await session.execute(
            update(Tenant).where(Tenant.id == tenant.id).values(settings={"smtp": _smtp(port)})
        )
        await session.commit()
    r = await client.post(TEST, json={"to": "ops@acme.test"}, headers=tenant.token_headers)
    assert r.status_code == 201, r.text

    await migrate_central(runtime.settings)
    stored = await _stored_settings(runtime, tenant.id)
    assert stored["smtp"]["password"].startswith(SEALED_PREFIX)
    assert PASSWORD not in json.dumps(stored)
    r = await client.post(TEST, json={"to": "ops@acme.test"}, headers=tenant.token_headers)
    assert r.status_code == 201, r.text
    assert len(collector.envelopes) == 2


@pytest.mark.parametrize(
    "to",
    [
        "bad",
        "a@b.com\r\nBcc: victim@example.com",
        "a@b.com\nBcc: victim@example.com",
        "Ada <a@b.com>",
        "a@b.com, c@d.com",
        "",
    ],
)
async def test_a_bad_recipient_is_400_naming_to(
    client: httpx.AsyncClient, tenant: TenantCreds, to: str
) -> None:
    r = await client.post(TEST, json={"to": to}, headers=tenant.token_headers)
    assert_error(r, 400, "to")


@pytest.mark.parametrize(
    "field", [{"from": "billing@acme.test\r\nBcc: v@x.test"}, {"fromName": "Acme\r\nBcc: v@x.test"}]
)
async def test_a_header_injection_in_the_stored_sender_is_400(
    client: httpx.AsyncClient,
    tenant: TenantCreds,
    smtp_server: tuple[Collector, int],
    field: dict[str, str],
) -> None:
    collector, port = smtp_server
    r = await client.patch(
        "/api/tenants/me",
        json={"settings": {"smtp": _smtp(port, **field)}},
        headers=tenant.token_headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post(TEST, json={"to": "ops@acme.test"}, headers=tenant.token_headers)
    assert_error(r, 400)
    assert collector.envelopes == []


async def test_smtp_test_needs_the_access_token(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    assert_error(await client.post(TEST, json={"to": "ops@acme.test"}), 401)
    r = await client.post(TEST, json={"to": "ops@acme.test"}, headers=tenant.key_headers)
    assert_error(r, 401)
