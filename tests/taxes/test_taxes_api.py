"""/api/taxes (contract taxes.md): rates, default taxes, assignments, on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from tests.billing.support import Api
from tests.conftest import TenantCreds, assert_error
from tests.usage.support import UsageApi

URL = "/api/taxes"


async def _tax(client: httpx.AsyncClient, h: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await client.post(URL, headers=h, json={"name": "VAT", "code": "vat", "rate": 7.5, **body})
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


async def test_create_get_list_update_delete(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    h = tenant.key_headers
    vat = await _tax(client, h, description="Value added tax")
    assert {k: vat[k] for k in ("name", "code", "rate", "description", "appliedByDefault")} == {
        "name": "VAT",
        "code": "vat",
        "rate": "7.5",
        "description": "Value added tax",
        "appliedByDefault": False,
    }
    assert vat["createdAt"].endswith("Z") and vat["updatedAt"].endswith("Z")
    gst = await _tax(client, h, name="GST", code="gst_1", rate="100", appliedByDefault=True)
    assert gst["rate"] == "100" and gst["appliedByDefault"] is True

    got = (await client.get(f"{URL}/{vat['id']}", headers=tenant.token_headers)).json()
    assert got == vat
    listed = (await client.get(URL, headers=h)).json()
    assert [t["code"] for t in listed["data"]] == ["gst_1", "vat"]  # newest first
    assert listed["meta"] == {"total": 2, "page": 1, "limit": 50, "totalPages": 1}
    only = (await client.get(URL, headers=h, params={"appliedByDefault": "true"})).json()
    assert [t["code"] for t in only["data"]] == ["gst_1"]
    others = (await client.get(URL, headers=h, params={"appliedByDefault": "no"})).json()
    assert [t["code"] for t in others["data"]] == ["vat"]
    paged = (await client.get(URL, headers=h, params={"limit": "1", "page": "2"})).json()
    assert [t["code"] for t in paged["data"]] == ["vat"] and paged["meta"]["totalPages"] == 2

    r = await client.patch(
        f"{URL}/{vat['id']}",
        headers=h,
        json={"rate": "16", "name": "VAT 16", "description": None, "appliedByDefault": True},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["rate"], r.json()["name"], r.json()["description"]) == ("16", "VAT 16", None)
    assert r.json()["appliedByDefault"] is True and r.json()["code"] == "vat"

    r = await client.delete(f"{URL}/{vat['id']}", headers=h)
    assert r.status_code == 200 and r.json() == {"message": "Tax deleted successfully"}
    assert_error(await client.get(f"{URL}/{vat['id']}", headers=h), 404)


async def test_bad_input_and_conflicts(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    h = tenant.key_headers
    vat = await _tax(client, h)
    for body, field in (
        ({"name": "X", "code": "x", "rate": 100.0001}, "rate"),
        ({"name": "X", "code": "x", "rate": "100.0001"}, "rate"),
        ({"name": "X", "code": "x", "rate": -1}, "rate"),
        ({"name": "X", "code": "x", "rate": "abc"}, "rate"),
        ({"name": "X", "code": "Bad-Code", "rate": 1}, "code"),
        ({"name": "", "code": "x", "rate": 1}, "name"),
        ({"code": "x", "rate": 1}, "name"),
        ({"name": "X", "code": "x", "rate": 1, "extra": 1}, "property"),
    ):
        assert_error(await client.post(URL, headers=h, json=body), 400, field)
    r = await client.post(URL, headers=h, json={"name": "Other", "code": "vat", "rate": 1})
    assert_error(r, 409)
    assert r.json()["message"] == 'Tax with code "vat" already exists'
    for body, field in (
        ({"code": "other"}, "property"),
        ({"rate": 101}, "rate"),
        ({"rate": None}, "rate"),
        ({"name": None}, "name"),
    ):
        r = await client.patch(f"{URL}/{vat['id']}", headers=h, json=body)
        assert_error(r, 400, field)
    unchanged = (await client.get(f"{URL}/{vat['id']}", headers=h)).json()
    assert unchanged == vat
    for method in ("get", "patch", "delete"):
        kwargs: dict[str, Any] = {"json": {}} if method == "patch" else {}
        r = await client.request(method, f"{URL}/nonexistent_id", headers=h, **kwargs)
        assert_error(r, 404)
        assert r.json()["message"] == "Tax not found"


async def test_other_tenant_and_no_auth(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    vat = await _tax(client, tenant.key_headers)
    o = other_tenant.key_headers
    assert_error(await client.get(f"{URL}/{vat['id']}", headers=o), 404)
    assert_error(await client.patch(f"{URL}/{vat['id']}", headers=o, json={"rate": 1}), 404)
    assert_error(await client.delete(f"{URL}/{vat['id']}", headers=o), 404)
    assert (await client.get(URL, headers=o)).json()["data"] == []
    cust = await Api(client, other_tenant).customer()
    r = await client.post(f"{URL}/customer/{cust['id']}", headers=o, json={"taxId": vat["id"]})
    assert_error(r, 404)
    assert r.json()["message"] == "Tax not found"
    for method, path in (
        ("get", URL),
        ("post", URL),
        ("get", f"{URL}/{vat['id']}"),
        ("patch", f"{URL}/{vat['id']}"),
        ("delete", f"{URL}/{vat['id']}"),
        ("get", f"{URL}/customer/x"),
        ("post", f"{URL}/plan/x"),
        ("delete", f"{URL}/charge/x/{vat['id']}"),
    ):
        assert_error(await client.request(method, path), 401)
    assert (await client.get(f"{URL}/{vat['id']}", headers=tenant.key_headers)).json() == vat


async def test_assignments(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    h = tenant.key_headers
    api = Api(client, tenant)
    usage = UsageApi(client, tenant)
    vat = await _tax(client, h)
    levy = await _tax(client, h, name="Levy", code="levy", rate="2.25")
    cust = await api.customer()
    plan = await usage.plan()
    metric = await usage.metric("COUNT", code="calls")
    charge = await usage.charge(plan["id"], metric["id"], "STANDARD", properties={"amount": 1})
    owners = {"customer": cust["id"], "plan": plan["id"], "charge": charge["id"]}
    fields = {"customer": "customerId", "plan": "planId", "charge": "chargeId"}
    for kind, owner in owners.items():
        path = f"{URL}/{kind}/{owner}"
        assert (await client.get(path, headers=h)).json() == []
        for tax in (levy, vat):
            r = await client.post(path, headers=h, json={"taxId": tax["id"]})
            assert r.status_code == 201, r.text
            body = r.json()
            assert set(body) == {"id", fields[kind], "taxId"}
            assert (body[fields[kind]], body["taxId"]) == (owner, tax["id"])
        r = await client.post(path, headers=h, json={"taxId": vat["id"]})
        assert_error(r, 409)  # an existing pair (the original: 500)
        assert [t["code"] for t in (await client.get(path, headers=h)).json()] == ["levy", "vat"]
        for body, field in (({}, "taxId"), ({"taxId": ""}, "taxId"), ({"taxId": 1}, "taxId")):
            assert_error(await client.post(path, headers=h, json=body), 400, field)
        r = await client.post(path, headers=h, json={"taxId": "nonexistent_id"})
        assert_error(r, 404)
        assert r.json()["message"] == "Tax not found"
        r = await client.post(f"{URL}/{kind}/nonexistent_id", headers=h, json={"taxId": vat["id"]})
        assert_error(r, 404)
        assert r.json()["message"] == f"{kind.title()} not found"
        r = await client.delete(f"{path}/{levy['id']}", headers=h)
        assert r.status_code == 200 and r.json() == {"message": f"Tax unassigned from {kind}"}
        r = await client.delete(f"{path}/{levy['id']}", headers=h)  # always 200
        assert r.status_code == 200
        assert [t["code"] for t in (await client.get(path, headers=h)).json()] == ["vat"]
    assert (await client.get(f"{URL}/customer/nonexistent_id", headers=h)).json() == []
    # a deleted tax leaves no assignment behind
    await client.delete(f"{URL}/{vat['id']}", headers=h)
    for kind, owner in owners.items():
        assert (await client.get(f"{URL}/{kind}/{owner}", headers=h)).json() == []
