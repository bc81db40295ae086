"""Schemathesis over the whole OpenAPI document (issue 14, "Show at the end"): every
operation, generated requests with a tenant's API key (its access token on
``/api/tenants/me*``), in-process over ASGI on the embedded SQLite backend. Checks: no
5xx, every response conforms to the documented schema, every status code is documented.

Bounded: a few examples per operation (``MAX_EXAMPLES``), no shrinking, one process.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from novabilling.app import create_app
from novabilling.config import Settings
from novabilling.tenancy.operations import migrate_central

MAX_EXAMPLES = 5
BASE_URL = f"http://{asgi.HOST}"
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


class Fuzzed:
    def __init__(self, client: asgi.ASGIClient, key: str, token: str) -> None:
        self.client = client
        self.key_headers = {"Authorization": f"Bearer {key}"}
        self.token_headers = {"Authorization": f"Bearer {token}"}

    def headers_for(self, path: str) -> dict[str, str]:
        return self.token_headers if path.startswith("/api/tenants/me") else self.key_headers


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    data_dir: Path = tmp_path_factory.mktemp("nb-fuzz")
    settings = Settings(
        env="test",
        data_dir=data_dir,
        rate_limit="1000000/60s",
        log_level="CRITICAL",
        argon2_time_cost=1,
        argon2_memory_kib=1024,
    )
    asyncio.run(migrate_central(settings))
    app = create_app(settings)
    with asgi.get_client(app) as client:
        r = client.post(
            "/api/auth/register",
            json={
                "name": "Fuzz Owner",
                "email": f"fuzz-{secrets.token_hex(6)}@test.local",
                "password": "correct-horse-battery",
                "companyName": "Fuzz Ltd",
            },
        )
        assert r.status_code == 201, r.text
        body = r.json()
        schema.app = app  # the generated requests go to this app in-process (ASGI)
        yield Fuzzed(client, body["apiKey"], body["accessToken"])


def _document() -> dict[str, Any]:
    """The served document (generating it needs no database)."""
    return create_app(Settings(env="test", log_level="CRITICAL")).openapi()


schema = schemathesis.openapi.from_dict(_document())


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_every_operation(case: Any, fuzzed: Fuzzed) -> None:
    case.call_and_validate(
        base_url=BASE_URL,
        session=fuzzed.client,
        headers=fuzzed.headers_for(case.path),
        checks=CHECKS,
    )


def _seed(fuzzed: Fuzzed) -> dict[str, str]:
    """A small real data set (through the API), so the reads answer real objects."""
    client, key = fuzzed.client, fuzzed.key_headers

    def post(path: str, body: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
        r = client.post(path, json=body, headers=key)
        if required:
            assert r.status_code == 201, (path, r.text)
        return r.json() if r.status_code == 201 else {}

    ids: dict[str, str] = {}
    ext = f"seed-{secrets.token_hex(4)}"
    customer = post(
        "/api/customers", {"externalId": ext, "email": "seed@test.local", "currency": "NGN"}
    )
    ids["customer_id"], ids["external_id"] = customer["id"], ext
    code = f"seed_{secrets.token_hex(4)}"
    plan = post(
        "/api/plans",
        {
            "name": "Seed",
            "code": code,
            "billingInterval": "MONTHLY",
            "prices": [{"currency": "NGN", "amount": "5000"}],
        },
    )
    ids["plan_id"], ids["price_id"] = plan["id"], plan["prices"][0]["id"]
    sub = post(
        "/api/subscriptions",
        {"customerId": customer["id"], "planId": plan["id"], "currency": "NGN"},
    )
    ids["subscription_id"] = sub["id"]
    invoice = post(
        "/api/invoices",
        {
            "customerId": customer["id"],
            "dueDate": "2030-01-31T00:00:00.000Z",
            "items": [{"description": "Setup", "quantity": 2, "unitAmount": "1500"}],
        },
    )
    ids["invoice_id"] = invoice["id"]
    payment = post(
        "/api/payments",
        {
            "invoiceId": invoice["id"],
            "provider": "manual",
            "amount": "3000",
            "currency": "NGN",
            "status": "SUCCEEDED",
        },
        required=False,
    )
    if payment:
        ids["payment_id"] = payment["id"]
    metric = post(
        "/api/billable-metrics",
        {"name": "Calls", "code": f"calls_{code}", "aggregationType": "COUNT"},
    )
    ids["metric_id"] = metric["id"]
    return ids


def test_real_objects_conform(fuzzed: Fuzzed) -> None:
    """Every read whose path ids the seed can fill answers 2xx with a body that conforms
    to the document (the generated run above mostly meets unknown ids)."""
    ids = _seed(fuzzed)
    checked = []
    for path, methods in schema.raw_schema["paths"].items():
        if "get" not in methods or not path.startswith("/api/"):
            continue
        names = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        if not all(name in ids for name in names):
            continue
        case = schema[path]["GET"].Case(path_parameters={n: ids[n] for n in names})
        headers = fuzzed.headers_for(path)
        response = case.call(base_url=BASE_URL, session=fuzzed.client, headers=headers)
        assert 200 <= response.status_code < 300, (path, response.status_code, response.text)
        case.validate_response(response, checks=CHECKS, headers=headers)
        checked.append(path)
    assert len(checked) >= 40, checked
