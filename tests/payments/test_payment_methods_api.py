"""Saved payment methods (contract payment-methods.md, customers.md sub-routes) and
``paymentMethodId`` on subscriptions, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.billing.support import Api
from tests.conftest import TenantCreds, assert_error

URL = "/api/payment-methods"


async def _method(
    client: httpx.AsyncClient, h: dict[str, str], customer_id: str, **body: Any
) -> dict[str, Any]:
    base = {"customerId": customer_id, "provider": "paystack", "tokenId": _token()}
    r = await client.post(URL, headers=h, json={**base, **body})
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def _token() -> str:
    return f"AUTH_{secrets.token_hex(6)}"


async def test_create_list_default_and_delete(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    h = tenant.key_headers  # Improve: API keys accepted (the original: access token only)
    cust = await Api(client, tenant).customer()
    first = await _method(
        client,
        h,
        cust["id"],
        tokenId="AUTH_abcdef123456",
        last4="4081",
        brand="visa",
        expMonth=12,
        expYear=2030,
        cardholderName="Ada Obi",
        country="NG",
    )
    assert first["isDefault"] is True and first["type"] == "CARD"
    assert first["tokenId"] == "AUTH...3456"  # masked (Improve), field kept
    assert (first["last4"], first["brand"], first["expMonth"], first["expYear"]) == (
        "4081",
        "visa",
        12,
        2030,
    )
    assert (first["cardholderName"], first["country"], first["metadata"]) == ("Ada Obi", "NG", None)
    second = await _method(client, tenant.token_headers, cust["id"], type="WALLET")
    third = await _method(client, h, cust["id"])
    assert second["isDefault"] is False and second["type"] == "WALLET"

    r = await client.post(
        URL,
        headers=h,
        json={"customerId": cust["id"], "provider": "paystack", "tokenId": "AUTH_abcdef123456"},
    )
    assert_error(r, 400)
    assert r.json()["message"] == "Payment method already exists"

    listed = (await client.get(f"{URL}/customer/{cust['id']}", headers=h)).json()
    assert [m["id"] for m in listed] == [first["id"], third["id"], second["id"]]
    sub_route = (await client.get(f"/api/customers/{cust['id']}/payment-methods", headers=h)).json()
    assert [m["id"] for m in sub_route] == [third["id"], second["id"], first["id"]]
    assert (await client.get(f"{URL}/customer/nonexistent_id", headers=h)).json() == []

    r = await client.patch(f"{URL}/{second['id']}/set-default", headers=h)
    assert r.status_code == 200 and r.json()["isDefault"] is True
    got = (await client.get(f"{URL}/{first['id']}", headers=h)).json()
    assert got["isDefault"] is False

    # deleting the default hands it to the newest remaining method
    r = await client.delete(f"{URL}/{second['id']}", headers=h)
    assert r.status_code == 200
    assert r.json() == {"message": "Payment method deleted successfully"}
    listed = (await client.get(f"{URL}/customer/{cust['id']}", headers=h)).json()
    assert [(m["id"], m["isDefault"]) for m in listed] == [
        (third["id"], True),
        (first["id"], False),
    ]
    r = await client.delete(f"/api/customers/{cust['id']}/payment-methods/{third['id']}", headers=h)
    assert r.status_code == 200
    listed = (await client.get(f"{URL}/customer/{cust['id']}", headers=h)).json()
    assert [(m["id"], m["isDefault"]) for m in listed] == [(first["id"], True)]


async def test_bad_input_other_tenant_and_auth(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    h = tenant.key_headers
    api = Api(client, tenant)
    cust = await api.customer()
    other_cust = await api.customer()
    method = await _method(client, h, cust["id"])
    base = {"customerId": cust["id"], "provider": "paystack", "tokenId": "AUTH_x1y2z3w4v5"}
    for change, field in (
        ({"expMonth": 13}, "expMonth"),
        ({"expMonth": 0}, "expMonth"),
        ({"expYear": 2023}, "expYear"),
        ({"type": "CHEQUE"}, "type"),
        ({"tokenId": ""}, "tokenId"),
        ({"provider": ""}, "provider"),
        ({"customerId": ""}, "customerId"),
        ({"metadata": {"a": 1}}, "property"),
    ):
        assert_error(await client.post(URL, headers=h, json={**base, **change}), 400, field)
    r = await client.post(URL, headers=h, json={**base, "customerId": "nonexistent_id"})
    assert_error(r, 404)
    assert r.json()["message"] == "Customer nonexistent_id not found"
    r = await client.get(f"{URL}/nonexistent_id", headers=h)
    assert_error(r, 404)
    assert r.json()["message"] == "Payment method nonexistent_id not found"
    r = await client.delete(
        f"/api/customers/{other_cust['id']}/payment-methods/{method['id']}", headers=h
    )
    assert_error(r, 404)
    assert_error(await client.get("/api/customers/nonexistent_id/payment-methods", headers=h), 404)

    o = other_tenant.key_headers
    assert_error(await client.post(URL, headers=o, json=base), 404)
    for method_name, path in (
        ("get", f"{URL}/{method['id']}"),
        ("patch", f"{URL}/{method['id']}/set-default"),
        ("delete", f"{URL}/{method['id']}"),
        ("delete", f"/api/customers/{cust['id']}/payment-methods/{method['id']}"),
    ):
        assert_error(await client.request(method_name, path, headers=o), 404)
        assert_error(await client.request(method_name, path), 401)
    assert (await client.get(f"{URL}/customer/{cust['id']}", headers=o)).json() == []
    assert_error(await client.post(URL, json=base), 401)
    assert_error(await client.get(f"{URL}/customer/{cust['id']}"), 401)
    still = (await client.get(f"{URL}/{method['id']}", headers=h)).json()
    assert still["isDefault"] is True


async def test_subscription_payment_method_id(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    h = tenant.key_headers
    api = Api(client, tenant)
    plan = await api.plan("MONTHLY", "IN_ARREARS", {"USD": "10"})
    cust = await api.customer()
    other = await api.customer()
    mine = await _method(client, h, cust["id"])
    theirs = await _method(client, h, other["id"])
    body = {"customerId": cust["id"], "planId": plan["id"], "currency": "USD"}

    r = await client.post("/api/subscriptions", headers=h, json={**body, "paymentMethodId": "x"})
    assert_error(r, 404)
    assert r.json()["message"] == "Payment method not found"
    r = await client.post(
        "/api/subscriptions", headers=h, json={**body, "paymentMethodId": theirs["id"]}
    )
    assert_error(r, 400)
    r = await client.post(
        "/api/subscriptions", headers=h, json={**body, "planId": "nope", "paymentMethodId": "x"}
    )
    assert_error(r, 400, "planId")  # the endpoint's own checks come first
    assert (await client.get(f"/api/customers/{cust['id']}/subscriptions", headers=h)).json() == []

    sub = await api.subscription(cust["id"], plan["id"], "USD", paymentMethodId=mine["id"])
    assert sub["paymentMethodId"] == mine["id"]
    path = f"/api/subscriptions/{sub['id']}"

    # PATCH: paymentMethodId alone keeps metadata; null clears it; bad ones change nothing
    r = await client.patch(path, headers=h, json={"metadata": {"seat": 3}})
    assert r.status_code == 200 and r.json()["metadata"] == {"seat": 3}
    r = await client.patch(path, headers=h, json={"paymentMethodId": None})
    assert r.status_code == 200, r.text
    assert r.json()["paymentMethodId"] is None and r.json()["metadata"] == {"seat": 3}
    r = await client.patch(path, headers=h, json={"paymentMethodId": theirs["id"]})
    assert_error(r, 400)
    r = await client.patch(path, headers=h, json={"paymentMethodId": "missing"})
    assert_error(r, 404)
    assert_error(await client.patch(path, headers=h, json={}), 400, "metadata")
    assert_error(await client.patch(path, headers=h, json={"paymentMethodId": 5}), 400)
    r = await client.patch(path, headers=h, json={"paymentMethodId": mine["id"], "metadata": None})
    assert r.status_code == 200
    assert r.json()["paymentMethodId"] == mine["id"] and r.json()["metadata"] is None
    r = await client.patch(
        "/api/subscriptions/nonexistent_id", headers=h, json={"paymentMethodId": mine["id"]}
    )
    assert_error(r, 404)

    # a method used by an ACTIVE subscription cannot be deleted (either route)
    for target in (
        f"{URL}/{mine['id']}",
        f"/api/customers/{cust['id']}/payment-methods/{mine['id']}",
    ):
        r = await client.delete(target, headers=h)
        assert_error(r, 400)
        assert r.json()["message"] == (
            "Cannot delete payment method: 1 active subscription(s) are using it"
        )
    assert (await client.get(path, headers=h)).json()["paymentMethodId"] == mine["id"]
    assert (await client.get(f"{URL}/{mine['id']}", headers=h)).status_code == 200

    # a PAUSED one does not block the deletion and loses the method
    r = await client.post(f"{path}/pause", headers=h)
    assert r.status_code == 201, r.text
    r = await client.delete(f"{URL}/{mine['id']}", headers=h)
    assert r.status_code == 200, r.text
    assert (await client.get(path, headers=h)).json()["paymentMethodId"] is None
