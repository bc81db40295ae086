"""/api/events (contract events.md): single and batch intake, reads; SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from novabilling.kit.timestamps import to_wire
from tests.conftest import TenantCreds, assert_error
from tests.usage.support import UsageApi


async def setup(client: httpx.AsyncClient, tenant: TenantCreds) -> tuple[UsageApi, Any, Any]:
    api = UsageApi(client, tenant)
    plan = await api.plan()
    sub = await api.subscription(plan["id"], externalId=f"ext_{secrets.token_hex(4)}")
    metric = await api.metric("SUM", code="tokens", fieldName="tokens")
    return api, sub, metric


def event(sub: str, **extra: Any) -> dict[str, Any]:
    return {
        "transactionId": f"tx_{secrets.token_hex(6)}",
        "subscriptionId": sub,
        "code": "tokens",
        **extra,
    }


async def test_single_event_by_external_id(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    api, sub, _ = await setup(client, tenant)
    at = datetime.now(UTC).isoformat()
    body = event(sub["externalId"], properties={"tokens": 1500, "region": "eu"}, timestamp=at)
    created = await api.post("/api/events", body)
    assert created["subscriptionId"] == sub["id"]  # always the internal id
    assert created["transactionId"] == body["transactionId"] and created["code"] == "tokens"
    assert created["properties"] == {"tokens": 1500, "region": "eu"}
    assert created["timestamp"].endswith("Z") and created["createdAt"].endswith("Z")
    fetched = await api.get(f"/api/events/{created['id']}")
    assert fetched == created
    bare = await api.post("/api/events", event(sub["id"]))
    assert bare["properties"] == {}


async def test_repeat_returns_the_stored_event_and_checks_nothing(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    api, sub, _ = await setup(client, tenant)
    first = await api.post(
        "/api/events", event(sub["id"], transactionId="same-1", properties={"tokens": 5})
    )
    again = await api.post(
        "/api/events",
        {"transactionId": "same-1", "subscriptionId": "nope", "code": "unknown_code"},
    )
    assert again == first
    page = await api.get(f"/api/events/subscription/{sub['id']}")
    assert page["meta"]["total"] == 1


async def test_concurrent_equal_transaction_ids_store_one_event(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    api, sub, _ = await setup(client, tenant)
    body = event(sub["id"], transactionId="race-1", properties={"tokens": 1})
    answers = await asyncio.gather(
        *(client.post("/api/events", headers=api.headers, json=body) for _ in range(8))
    )
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["id"] for r in answers}) == 1
    assert (await api.get(f"/api/events/subscription/{sub['id']}"))["meta"]["total"] == 1


async def test_single_event_refusals(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    api, sub, _ = await setup(client, tenant)
    headers = api.headers
    now = datetime.now(UTC)

    async def post(body: dict[str, Any]) -> httpx.Response:
        return await client.post("/api/events", headers=headers, json=body)

    assert_error(await post(event("no_such_subscription")), 404)
    assert_error(await post(event(sub["id"], code="no_such_metric")), 404)
    assert_error(
        await post(event(sub["id"], properties={"tokens": "many"})), 400, "properties.tokens"
    )
    assert_error(
        await post(event(sub["id"], properties={"tokens": True})), 400, "properties.tokens"
    )
    future = (now + timedelta(hours=1)).isoformat()
    assert_error(await post(event(sub["id"], timestamp=future)), 400, "timestamp")
    before = (now - timedelta(days=3)).isoformat()
    assert_error(await post(event(sub["id"], timestamp=before)), 400, "timestamp")
    assert_error(await post(event(sub["id"], timestamp="1999-01-01T00:00:00Z")), 400, "timestamp")
    assert_error(await post(event(sub["id"], timestamp="yesterday")), 400, "timestamp")
    assert_error(await post(event(sub["id"], properties=[1, 2])), 400, "properties")
    assert_error(await post(event(sub["id"], properties="x")), 400, "properties")
    assert_error(await post(event(sub["id"], colour="red")), 400, "property")
    assert_error(await post({"subscriptionId": sub["id"], "code": "tokens"}), 400, "transactionId")
    assert_error(await post(event(sub["id"], transactionId="")), 400, "transactionId")
    ok = await post(event(sub["id"], properties={"tokens": "12.5"}))
    assert ok.status_code == 201, ok.text
    await api.post(f"/api/subscriptions/{sub['id']}/cancel", {"cancelAt": "now"})
    assert_error(await post(event(sub["id"])), 400)


async def test_batch_reports_each_element(client: httpx.AsyncClient, tenant: TenantCreds) -> None:
    api, sub, _ = await setup(client, tenant)
    stored = await api.post("/api/events", event(sub["id"], transactionId="known"))
    answer = await api.batch(
        [
            event(sub["id"], transactionId="a", properties={"tokens": 1}),
            event(sub["externalId"], transactionId="b", properties={"tokens": 2}),
            event(sub["id"], transactionId="known"),
            event("no_such_subscription", transactionId="c"),
            event(sub["id"], transactionId="d", code="no_such_metric"),
            event(sub["id"], transactionId="a", properties={"tokens": 9}),
            event(sub["id"], transactionId="e", properties={"tokens": "NaN"}),
        ]
    )
    assert answer["total"] == 7
    assert (answer["created"], answer["duplicates"], answer["errors"]) == (2, 1, 4)
    statuses = [(r["transactionId"], r["status"]) for r in answer["results"]]
    assert statuses == [
        ("a", "created"),
        ("b", "created"),
        ("known", "duplicate"),
        ("c", "error"),
        ("d", "error"),
        ("a", "error"),
        ("e", "error"),
    ]
    errors = {r["transactionId"]: r.get("error") for r in answer["results"][3:]}
    assert "not found" in errors["c"] and "no_such_metric" in errors["d"]
    assert "repeats element 0" in errors["a"] and "tokens" in errors["e"]
    assert all("error" not in r for r in answer["results"][:3])
    page = await api.get(f"/api/events/subscription/{sub['id']}")
    assert page["meta"]["total"] == 3
    assert stored["id"] in {e["id"] for e in page["data"]}
    again = await api.batch([event(sub["id"], transactionId="a"), event("x", transactionId="b")])
    assert (again["created"], again["duplicates"], again["errors"]) == (0, 2, 0)


@pytest.mark.parametrize(
    ("events", "field"),
    [
        ([], "events"),
        (None, "events"),
        ("many", "events"),
        (
            [{"transactionId": f"t{i}", "subscriptionId": "s", "code": "c"} for i in range(101)],
            "events",
        ),
        ([{"transactionId": "t", "subscriptionId": "s"}], "events.0.code"),
        (
            [{"transactionId": "t", "subscriptionId": "s", "code": "c", "properties": 3}],
            "events.0.properties",
        ),
        ([{"transactionId": "t", "subscriptionId": "s", "code": "c", "extra": 1}], "property"),
    ],
)
async def test_batch_validation_is_all_or_nothing(
    client: httpx.AsyncClient, shared_tenant: TenantCreds, events: Any, field: str
) -> None:
    r = await client.post(
        "/api/events/batch", headers=shared_tenant.key_headers, json={"events": events}
    )
    assert_error(r, 400, field)


async def test_list_by_subscription_filters_and_pages(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    api, sub, _ = await setup(client, tenant)
    await api.metric("COUNT", code="logins")
    start = datetime.fromisoformat(sub["startedAt"].replace("Z", "+00:00"))
    stamps = [start + timedelta(minutes=m) for m in (1, 2, 3, 4)]
    for n, at in enumerate(stamps):
        await api.post(
            "/api/events",
            event(
                sub["id"],
                transactionId=f"t{n}",
                timestamp=at.isoformat(),
                code="tokens" if n % 2 == 0 else "logins",
            ),
        )
    url = f"/api/events/subscription/{sub['id']}"
    page = await api.get(url)
    assert [e["transactionId"] for e in page["data"]] == ["t3", "t2", "t1", "t0"]
    assert page["meta"] == {"total": 4, "page": 1, "perPage": 50, "totalPages": 1}
    assert [e["transactionId"] for e in (await api.get(f"{url}?code=tokens"))["data"]] == [
        "t2",
        "t0",
    ]
    window = (
        f"{url}?from={stamps[1].isoformat().replace('+00:00', 'Z')}"
        f"&to={stamps[2].isoformat().replace('+00:00', 'Z')}"
    )
    assert [e["transactionId"] for e in (await api.get(window))["data"]] == ["t2", "t1"]
    paged = await api.get(f"{url}?perPage=3&page=2")
    assert [e["transactionId"] for e in paged["data"]] == ["t0"]
    assert paged["meta"] == {"total": 4, "page": 2, "perPage": 3, "totalPages": 2}
    capped = await api.get(f"{url}?perPage=5000&page=zero")
    assert capped["meta"]["perPage"] == 1000 and capped["meta"]["page"] == 1
    assert (await api.get("/api/events/subscription/unknown"))["data"] == []
    r = await client.get(f"{url}?from=notadate", headers=api.headers)
    assert_error(r, 400, "from")


async def test_other_tenant_sees_nothing(
    client: httpx.AsyncClient, tenant: TenantCreds, other_tenant: TenantCreds
) -> None:
    api, sub, _ = await setup(client, tenant)
    created = await api.post("/api/events", event(sub["id"]))
    theirs = other_tenant.key_headers
    assert_error(await client.get(f"/api/events/{created['id']}", headers=theirs), 404)
    assert_error(await client.get("/api/events/nonexistent_id", headers=theirs), 404)
    r = await client.get(f"/api/events/subscription/{sub['id']}", headers=theirs)
    assert r.status_code == 200 and r.json()["data"] == []
    r = await client.post("/api/events", headers=theirs, json=event(sub["id"]))
    assert_error(r, 404)  # their subscription is unknown here
    r = await client.post("/api/events/batch", headers=theirs, json={"events": [event(sub["id"])]})
    assert r.status_code == 201 and r.json()["errors"] == 1


async def test_missing_auth_is_401_before_validation(client: httpx.AsyncClient) -> None:
    assert_error(await client.post("/api/events", json={"code": ""}), 401)
    assert_error(await client.post("/api/events/batch", json={"events": []}), 401)
    assert_error(await client.get("/api/events/x"), 401)
    assert_error(await client.get("/api/events/subscription/x"), 401)
    bad = {"Authorization": "Bearer sk_live_" + "0" * 64}
    assert_error(await client.post("/api/events", headers=bad, json={}), 401)


async def test_batch_stores_properties_and_instants_exactly(
    client: httpx.AsyncClient, tenant: TenantCreds
) -> None:
    """What the batch writer sends as one JSON document comes back as it was given."""
    api, sub, _ = await setup(client, tenant)
    at = datetime.now(UTC) + timedelta(seconds=2)  # after the start, within the skew
    properties = {
        "tokens": 2**63 - 1,
        "ratio": 0.1,
        "tiny": -1.5e-7,
        "text": 'naïve "quoted" \\ back\nslash ✓',
        "nested": {"list": [1, "two", None, True, {"deep": []}]},
        "empty": {},
    }
    answer = await api.batch(
        [
            event(sub["id"], transactionId="exact-1", properties=properties,
                  timestamp=at.isoformat()),
            event(sub["externalId"], transactionId="exact-2"),
        ]
    )  # fmt: skip
    assert answer["created"] == 2
    page = await api.get(f"/api/events/subscription/{sub['id']}")
    stored = {e["transactionId"]: e for e in page["data"]}
    assert stored["exact-1"]["properties"] == properties
    assert stored["exact-1"]["timestamp"] == to_wire(at)
    assert stored["exact-1"]["subscriptionId"] == sub["id"]
    assert stored["exact-2"]["properties"] == {}
    assert stored["exact-2"]["subscriptionId"] == sub["id"]  # the externalId resolved
