"""Shortcuts of the usage tests: plans, customers, subscriptions, metrics and charges
through the API."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.conftest import TenantCreds


class UsageApi:
    def __init__(self, client: httpx.AsyncClient, creds: TenantCreds) -> None:
        self.client = client
        self.creds = creds

    @property
    def headers(self) -> dict[str, str]:
        return self.creds.key_headers

    async def post(self, path: str, body: Any, status: int = 201) -> Any:
        r = await self.client.post(path, headers=self.headers, json=body)
        assert r.status_code == status, r.text
        return r.json()

    async def get(self, path: str, status: int = 200) -> Any:
        r = await self.client.get(path, headers=self.headers)
        assert r.status_code == status, r.text
        return r.json()

    async def plan(
        self, *, timing: str = "IN_ARREARS", prices: dict[str, Any] | None = None, **extra: Any
    ) -> Any:
        return await self.post(
            "/api/plans",
            {
                "name": "Metered",
                "code": f"p_{secrets.token_hex(4)}",
                "billingInterval": "MONTHLY",
                "billingTiming": timing,
                "prices": [
                    {"currency": c, "amount": a} for c, a in (prices or {"USD": 10}).items()
                ],
                **extra,
            },
        )

    async def customer(self, currency: str = "USD") -> Any:
        return await self.post(
            "/api/customers",
            {
                "externalId": f"c_{secrets.token_hex(5)}",
                "email": "meter@test.local",
                "name": "Meter Reader",
                "currency": currency,
            },
        )

    async def subscription(
        self, plan_id: str, *, currency: str = "USD", customer_id: str | None = None, **extra: Any
    ) -> Any:
        if customer_id is None:
            customer_id = (await self.customer(currency))["id"]
        return await self.post(
            "/api/subscriptions",
            {"customerId": customer_id, "planId": plan_id, "currency": currency, **extra},
        )

    async def metric(self, aggregation: str = "COUNT", **extra: Any) -> Any:
        body: dict[str, Any] = {
            "name": extra.pop("name", f"Metric {aggregation.lower()}"),
            "code": extra.pop("code", f"m_{secrets.token_hex(4)}"),
            "aggregationType": aggregation,
            **extra,
        }
        if aggregation not in ("COUNT",) and "fieldName" not in body:
            body["fieldName"] = "value"
        return await self.post("/api/billable-metrics", body)

    async def charge(self, plan_id: str, metric_id: str, model: str, **extra: Any) -> Any:
        return await self.post(
            "/api/charges",
            {"planId": plan_id, "billableMetricId": metric_id, "chargeModel": model, **extra},
        )

    async def event(self, sub: str, code: str, **extra: Any) -> Any:
        body = {"transactionId": f"tx_{secrets.token_hex(8)}", "subscriptionId": sub, "code": code}
        return await self.post("/api/events", {**body, **extra})

    async def batch(self, events: list[dict[str, Any]], status: int = 201) -> Any:
        return await self.post("/api/events/batch", {"events": events}, status)
