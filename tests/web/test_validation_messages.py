"""Validation messages are written for people (issue 13), in the one error handler for
every route: ``currency must be a 3-letter ISO currency code``, not pydantic's ``String
should have at most 3 characters``; a body sent as something else than JSON says so."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import TenantCreds, assert_error

CUSTOMER = {"externalId": "c-1", "email": "ada@test.local", "currency": "NGN"}
PLAN = {"name": "Pro", "code": "pro", "billingInterval": "MONTHLY"}


def messages(response: httpx.Response, status: int = 400) -> dict[str, str]:
    assert_error(response, status)
    body: dict[str, Any] = response.json()
    assert body["message"] == "Validation failed"
    return {e["field"]: e["message"] for e in body["errors"]}


async def test_customer_fields_are_explained(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    bad = {
        **CUSTOMER,
        "externalId": "",
        "currency": "NGNX",
        "netPaymentTerms": 1.5,
        "name": 5,
        "metadata": [],
    }
    r = await client.post("/api/customers", json=bad, headers=tenant.key_headers)
    assert messages(r) == {
        "externalId": "externalId must not be empty",
        "currency": "currency must be a 3-letter ISO currency code (e.g. NGN, USD)",
        "netPaymentTerms": "netPaymentTerms must be a whole number",
        "name": "name must be a string",
        "metadata": "metadata must be an object",
    }
    r = await client.post(
        "/api/customers", json={**CUSTOMER, "netPaymentTerms": 400}, headers=tenant.key_headers
    )
    assert messages(r) == {"netPaymentTerms": "netPaymentTerms must be at most 365"}


async def test_plan_fields_are_explained(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    bad = {**PLAN, "code": "Pro Plan", "billingInterval": "FORTNIGHTLY", "features": "x"}
    r = await client.post("/api/plans", json=bad, headers=tenant.key_headers)
    assert messages(r) == {
        "code": "code must contain only lowercase letters, digits and underscores",
        "billingInterval": (
            "billingInterval must be one of: HOURLY, DAILY, WEEKLY, MONTHLY, QUARTERLY, YEARLY"
        ),
        "features": "features must be an array",
    }
    long_name = {**PLAN, "name": "x" * 101, "prices": [{"currency": "US", "amount": 5}]}
    r = await client.post("/api/plans", json=long_name, headers=tenant.key_headers)
    assert messages(r)["name"] == "name must be at most 100 characters"


async def test_choices_booleans_and_bounds(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    r = await client.post(
        "/api/payment-providers",
        json={"providerName": "paystack", "credentials": {}, "isActive": "yes", "priority": 0},
        headers=tenant.key_headers,
    )
    assert messages(r) == {
        "isActive": "isActive must be a boolean (true or false)",
        "priority": "priority must be at least 1",
    }


async def test_a_body_that_is_not_json_says_so(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        r = await client.post(
            "/api/customers",
            content="externalId=c-1&email=ada@test.local&currency=NGN",
            headers={**tenant.key_headers, "Content-Type": content_type},
        )
        assert messages(r) == {
            "body": f"body must be sent as application/json (Content-Type was {content_type})"
        }
    # JSON (with a charset, or a +json type) is read as JSON
    r = await client.post(
        "/api/customers",
        content=b'{"externalId": "c-2", "email": "b@test.local", "currency": "NGN"}',
        headers={**tenant.key_headers, "Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201, r.text


async def test_no_pydantic_wording_reaches_a_person(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("/api/customers", {"externalId": 1, "email": [], "currency": None, "phone": 5}),
        ("/api/plans", {"name": "", "code": "", "billingInterval": 3, "prices": [{}]}),
        ("/api/subscriptions", {"customerId": "", "planId": 1, "currency": "", "trialDays": -1}),
        ("/api/invoices", {"customerId": "c", "items": [{"quantity": 0}], "dueDate": "soon"}),
        ("/api/payments", {"invoiceId": "i", "provider": "x", "amount": "a", "status": "NEW"}),
        ("/api/billable-metrics", {"name": "m", "code": "m", "aggregationType": "AVG"}),
    ]
    for path, body in bodies:
        r = await client.post(path, json=body, headers=tenant.key_headers)
        for field, text in messages(r).items():
            assert text.split(" ", 1)[0] == field, (path, text)
            for pydantic in ("Input should", "String should", "should have", "List should"):
                assert pydantic not in text, (path, text)
