"""/api/payment-providers: CRUD, validation, isolation, auth, secrets never in clear."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest
from sqlalchemy import text

from novabilling.payments.credentials import provider_factory
from novabilling.runtime import Runtime
from tests.conftest import TenantCreds, assert_error
from tests.payments.helpers import PAYSTACK_SECRET, configure, paystack, paystack_credentials

BASE = "/api/payment-providers"


async def test_create_list_get_update_delete(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    created = await configure(client, tenant.key_headers, name="PayStack", priority=2)
    assert created["providerName"] == "paystack"
    assert created["isActive"] is True and created["priority"] == 2
    assert "credentials" not in created and created["createdAt"].endswith("Z")
    mpesa = {
        "consumerKey": "ck",
        "consumerSecret": "cs",
        "shortcode": 174379,
        "passkey": "pk",
        "environment": "sandbox",
    }
    other = await configure(client, tenant.token_headers, name="mpesa", credentials=mpesa)
    assert other["priority"] == 1

    listed = (await client.get(BASE, headers=tenant.key_headers)).json()
    assert [p["providerName"] for p in listed] == ["mpesa", "paystack"]
    assert all("credentials" not in p for p in listed)

    one = await client.get(f"{BASE}/{created['id']}", headers=tenant.key_headers)
    assert one.status_code == 200 and one.json()["id"] == created["id"]

    patch = {"isActive": False, "priority": 5, "providerName": "ignored"}
    updated = await client.patch(f"{BASE}/{created['id']}", json=patch, headers=tenant.key_headers)
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert body["isActive"] is False and body["priority"] == 5
    assert body["providerName"] == "paystack" and body["updatedAt"].endswith("Z")

    deleted = await client.delete(f"{BASE}/{created['id']}", headers=tenant.key_headers)
    assert deleted.status_code == 200 and "message" in deleted.json()
    gone = await client.get(f"{BASE}/{created['id']}", headers=tenant.key_headers)
    assert_error(gone, 404)


async def test_duplicate_name_is_409(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    await configure(client, tenant.key_headers)
    again = await client.post(
        BASE,
        json={"providerName": "PAYSTACK", "credentials": paystack_credentials()},
        headers=tenant.key_headers,
    )
    assert_error(again, 409)


async def test_validation_names_the_field(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    h = tenant.key_headers
    cases = [
        ({"credentials": paystack_credentials()}, "providerName"),
        ({"providerName": "", "credentials": paystack_credentials()}, "providerName"),
        ({"providerName": "acmepay", "credentials": paystack_credentials()}, "providerName"),
        ({"providerName": "paystack"}, "credentials"),
        ({"providerName": "paystack", "credentials": "x"}, "credentials"),
        ({"providerName": "paystack", "credentials": {"publicKey": "pk"}}, "credentials.secretKey"),
        (
            {"providerName": "paystack", "credentials": paystack_credentials(), "priority": 0},
            "priority",
        ),
        (
            {"providerName": "paystack", "credentials": paystack_credentials(), "priority": 1.5},
            "priority",
        ),
        (
            {"providerName": "paystack", "credentials": paystack_credentials(), "isActive": "no"},
            "isActive",
        ),
        ({"providerName": "paystack", "credentials": paystack_credentials(), "foo": 1}, "property"),
    ]
    for body, field in cases:
        assert_error(await client.post(BASE, json=body, headers=h), 400, field)
    created = await configure(client, h)
    bad_patch = await client.patch(
        f"{BASE}/{created['id']}", json={"credentials": {"publicKey": "x"}}, headers=h
    )
    assert_error(bad_patch, 400, "credentials.secretKey")
    assert_error(
        await client.patch(f"{BASE}/{created['id']}", json={"priority": -1}, headers=h),
        400,
        "priority",
    )


async def test_other_tenant_ids_are_404(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    created = await configure(client, tenant.key_headers)
    h = other_tenant.key_headers
    url = f"{BASE}/{created['id']}"
    assert_error(await client.get(url, headers=h), 404)
    assert_error(await client.patch(url, json={"priority": 3}, headers=h), 404)
    assert_error(await client.delete(url, headers=h), 404)
    assert_error(await client.post(f"{url}/test", headers=h), 404)
    assert (await client.get(BASE, headers=h)).json() == []
    assert_error(await client.get(f"{BASE}/nonexistent_id", headers=tenant.key_headers), 404)


async def test_no_auth_is_401(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    created = await configure(client, tenant.key_headers)
    url = f"{BASE}/{created['id']}"
    assert_error(await client.get(BASE), 401)
    assert_error(await client.post(BASE, json={"bad": True}), 401)
    assert_error(await client.get(url), 401)
    assert_error(await client.patch(url, json={"priority": 2}), 401)
    assert_error(await client.delete(url), 401)
    assert_error(await client.post(f"{url}/test"), 401)


async def test_credentials_are_encrypted_at_rest(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    await configure(client, tenant.key_headers)
    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        rows = (await session.execute(text("SELECT * FROM payment_providers"))).all()
    assert len(rows) == 1
    dump = repr(tuple(rows[0]))
    assert PAYSTACK_SECRET not in dump and "pk_test_sim" not in dump
    assert "v1:" in dump


async def test_provider_test_endpoint(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime
) -> None:
    paystack(runtime)
    good = await configure(client, tenant.key_headers)
    ok = await client.post(f"{BASE}/{good['id']}/test", headers=tenant.key_headers)
    assert ok.status_code == 201, ok.text
    assert ok.json()["success"] is True

    wrong = {"credentials": paystack_credentials("sk_test_wrong")}
    await client.patch(f"{BASE}/{good['id']}", json=wrong, headers=tenant.key_headers)
    bad = await client.post(f"{BASE}/{good['id']}/test", headers=tenant.key_headers)
    assert bad.status_code == 201
    assert bad.json()["success"] is False and bad.json()["message"]

    maker = await runtime.engines.sessionmaker(tenant.id)
    async with maker() as session:
        await session.execute(text("UPDATE payment_providers SET credentials_encrypted = 'v1:xx'"))
        await session.commit()
    broken = await client.post(f"{BASE}/{good['id']}/test", headers=tenant.key_headers)
    assert broken.status_code == 201
    assert broken.json() == {"success": False, "message": broken.json()["message"]}
    assert broken.json()["success"] is False


# -- credential keys per provider (issue 17.2, issue 13) ---------------------------------------


async def test_secret_key_alone_is_enough_for_paystack_and_flutterwave(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    """Existing clients send these configurations without a publicKey."""
    for name in ("paystack", "flutterwave"):
        created = await configure(
            client, tenant.key_headers, name=name, credentials={"secretKey": f"sk-{name}"}
        )
        assert created["providerName"] == name
    listed = (await client.get(BASE, headers=tenant.key_headers)).json()
    assert sorted(p["providerName"] for p in listed) == ["flutterwave", "paystack"]


NEW_PROVIDERS = {
    "dpo": {"companyToken": "8D3DA73D-9D7F", "serviceType": "3854", "environment": "test"},
    "payu": {"apiKey": "ONE_ZERO", "safeKey": "{45D5C765-16D2}", "environment": "staging"},
    "pesapal": {"consumerKey": "ck", "consumerSecret": "cs", "environment": "sandbox"},
}


async def test_dpo_payu_pesapal_configurations_are_stored(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    for name, credentials in NEW_PROVIDERS.items():
        created = await configure(client, tenant.key_headers, name=name, credentials=credentials)
        assert created["providerName"] == name
    listed = (await client.get(BASE, headers=tenant.key_headers)).json()
    assert sorted(p["providerName"] for p in listed) == ["dpo", "payu", "pesapal"]


async def test_dpo_group_is_an_alias_of_dpo(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    created = await configure(
        client, tenant.key_headers, name="DPO-Group", credentials=NEW_PROVIDERS["dpo"]
    )
    assert created["providerName"] == "dpo"  # inbound /webhooks/dpo finds it
    again = await client.post(
        BASE,
        json={"providerName": "dpo", "credentials": NEW_PROVIDERS["dpo"]},
        headers=tenant.key_headers,
    )
    assert_error(again, 409)


async def test_unknown_missing_and_bad_credential_keys_name_the_key(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    h = tenant.key_headers
    cases = [
        ("paystack", {"secretKey": "sk", "secretkey": "typo"}, "credentials.secretkey"),
        ("paystack", {"secretKey": "sk", "webhookSecret": "x"}, "credentials.webhookSecret"),
        ("flutterwave", {"secretKey": "sk", "secretHahs": "x"}, "credentials.secretHahs"),
        ("stripe", {"secretKey": "sk"}, "credentials.webhookSecret"),
        ("stripe", {"secretKey": "sk", "webhookSecret": "wh", "pubKey": "x"}, "credentials.pubKey"),
        ("paystack", {"secretKey": True}, "credentials.secretKey"),
        ("paystack", {"secretKey": "   "}, "credentials.secretKey"),
        ("dpo", {**NEW_PROVIDERS["dpo"], "environment": "prod"}, "credentials.environment"),
        ("payu", {"apiKey": "a", "environment": "staging"}, "credentials.safeKey"),
        ("pesapal", {**NEW_PROVIDERS["pesapal"], "consumer_key": "x"}, "credentials.consumer_key"),
    ]
    for name, credentials, field in cases:
        body = {"providerName": name, "credentials": credentials}
        response = await client.post(BASE, json=body, headers=h)
        assert_error(response, 400, field)
        assert field in response.text  # the message names the key as well
    assert (await client.get(BASE, headers=h)).json() == []


async def test_several_bad_keys_are_all_named(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    body = {"providerName": "mpesa", "credentials": {"consumerKey": "ck", "shortCode": "1"}}
    response = await client.post(BASE, json=body, headers=tenant.key_headers)
    assert_error(response, 400, "credentials.shortCode")
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"credentials.consumerSecret", "credentials.shortcode", "credentials.passkey"} <= fields


async def test_a_provider_without_an_adapter_says_not_yet_supported(
    client: httpx.AsyncClient, tenant: TenantCreds, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A configurable provider whose adapter does not exist yet (how dpo, payu and pesapal
    were before their adapters): stored, then test and checkout name it as not supported."""
    from novabilling.payments.providers import registry
    from tests.payments.helpers import make_invoice

    monkeypatch.setitem(registry.SPECS, "payu", replace(registry.SPECS["payu"], adapter=None))
    created = await configure(
        client, tenant.key_headers, name="payu", credentials=NEW_PROVIDERS["payu"]
    )
    tested = await client.post(f"{BASE}/{created['id']}/test", headers=tenant.key_headers)
    assert tested.status_code == 201, tested.text
    assert tested.json() == {"success": False, "message": tested.json()["message"]}
    assert "payu" in tested.json()["message"] and "not yet supported" in tested.json()["message"]

    invoice = await make_invoice(client, tenant.key_headers, currency="ZAR")
    checkout = await client.post(
        f"/api/invoices/{invoice['id']}/checkout", json={}, headers=tenant.key_headers
    )
    assert_error(checkout, 400)
    assert "payu" in checkout.json()["message"]
    assert "not yet supported" in checkout.json()["message"]


@pytest.mark.parametrize("name", ["dpo", "payu", "pesapal"])
async def test_new_providers_test_names_the_provider_and_the_cause(
    client: httpx.AsyncClient, tenant: TenantCreds, runtime: Runtime, name: str
) -> None:
    """Issue 16: rejected vs unreachable, named (201 success:false as the contract says)."""
    from tests.payments.new_providers import start

    sim = start(name, runtime, tenant.id)
    h = tenant.key_headers
    created = await configure(client, h, name=name, credentials=sim.credentials)
    url = f"{BASE}/{created['id']}/test"
    ok = await client.post(url, headers=h)
    assert ok.json() == {"success": True, "message": f"Connection to {name} succeeded"}

    secret_key = {"dpo": "companyToken", "payu": "apiKey", "pesapal": "consumerSecret"}[name]
    wrong = {**sim.credentials, secret_key: "00000000-0000-0000-0000-000000000000"}
    await client.patch(f"{BASE}/{created['id']}", json={"credentials": wrong}, headers=h)
    rejected = await client.post(url, headers=h)
    assert rejected.status_code == 201
    assert rejected.json()["success"] is False
    assert rejected.json()["message"].startswith(f"{name} rejected the credentials")

    def refuse_connection(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    provider_factory(runtime).transports["http://down.sim"] = httpx.MockTransport(refuse_connection)
    down = {**sim.credentials, "baseUrl": "http://down.sim"}
    await client.patch(f"{BASE}/{created['id']}", json={"credentials": down}, headers=h)
    unreachable = await client.post(url, headers=h)
    assert unreachable.json()["success"] is False
    assert unreachable.json()["message"].startswith(f"{name} unreachable")
