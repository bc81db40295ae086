"""A simulator served on its own (``novabilling simulate``): it drains itself in the
background, links hosted checkouts to its own pages, and the M-Pesa one takes the
plain-http loopback callback URL a local server has, while the adapter still demands
https from the real Daraja."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import httpx
import pytest

from novabilling.payments.providers import mpesa
from novabilling.payments.providers.base import ChargeRequest, ProviderError
from novabilling.simulators import create_simulator_app, sandbox_credentials
from novabilling.simulators.delivery import SelfDelivering
from novabilling.simulators.flutterwave import FlutterwaveSimulator
from novabilling.simulators.mpesa import PHONE_SUCCESS
from novabilling.simulators.mpesa.api import callback_url_ok
from novabilling.simulators.stripe import StripeSimulator
from tests.providers import harness_mpesa as hm


async def test_self_delivering_drains_between_startup_and_shutdown() -> None:
    calls: list[int] = []

    async def drain() -> list[Any]:
        calls.append(1)
        return []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("lifespan is handled by the wrapper")

    app = SelfDelivering(inner, drain, interval=0.01)
    inbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[dict[str, str]] = []

    async def send(message: dict[str, str]) -> None:
        sent.append(message)

    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
    await asyncio.sleep(0.1)
    assert len(calls) >= 3
    await inbox.put({"type": "lifespan.shutdown"})
    await task
    stopped = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == stopped  # the loop ended with the server
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def test_served_apps_deliver_by_themselves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NB_SIM_WEBHOOK_URL", "http://127.0.0.1:1/webhooks/paystack")
    for name in ("paystack", "flutterwave", "mpesa", "stripe"):
        assert isinstance(create_simulator_app(name), SelfDelivering), name
        credentials = sandbox_credentials(name, "http://127.0.0.1:9100")
        assert credentials and credentials["baseUrl"] == "http://127.0.0.1:9100"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://billing.example.com/webhooks/mpesa/t1", True),
        ("http://127.0.0.1:8000/webhooks/mpesa/t1", True),
        ("http://localhost:8000/webhooks/mpesa/t1", True),
        ("http://[::1]:8000/webhooks/mpesa/t1", True),
        ("http://billing.example.com/webhooks/mpesa/t1", False),
        ("http://10.0.0.5/cb", False),
        ("ftp://127.0.0.1/cb", False),
        ("", False),
    ],
)
def test_mpesa_simulator_callback_urls(url: str, ok: bool) -> None:
    assert callback_url_ok(url) is ok


async def test_the_real_daraja_gets_no_plain_http_callback_url() -> None:
    calls: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500)

    extra = {**hm.CREDENTIALS.extra, "callback_url": "http://127.0.0.1:8000/webhooks/mpesa/t1"}
    credentials = replace(hm.CREDENTIALS, base_url=None, extra=extra)
    adapter = mpesa.MpesaProvider(credentials, transport=httpx.MockTransport(record), backoff=0)
    request = ChargeRequest("NB-1", 150000, "KES", "w@example.com", phone=PHONE_SUCCESS)
    with pytest.raises(ProviderError, match="https CallBackURL") as info:
        await adapter.charge(request)
    assert info.value.code == "CallBackURL"
    assert calls == []  # refused before anything reached Safaricom


async def test_the_simulator_accepts_a_local_http_callback_url() -> None:
    h = hm.make_harness()
    extra = {**hm.CREDENTIALS.extra, "callback_url": "http://127.0.0.1:8000/webhooks/mpesa/t1"}
    credentials = replace(hm.CREDENTIALS, extra=extra)
    transport = httpx.ASGITransport(app=h.simulator.app)
    adapter = mpesa.MpesaProvider(credentials, transport=transport, backoff=0)
    request = ChargeRequest("NB-2", 150000, "KES", "w@example.com", phone=PHONE_SUCCESS)
    tx = await adapter.charge(request)
    assert tx.provider_reference in h.simulator.pushes


@pytest.mark.parametrize("kind", ["stripe", "flutterwave"])
async def test_hosted_checkout_links_point_at_the_simulator_page(kind: str) -> None:
    base = "http://127.0.0.1:9100"
    if kind == "stripe":
        sim: Any = StripeSimulator(checkout_base=f"{base}/c/pay")
        create = (
            "/v1/checkout/sessions",
            {
                "mode": "payment",
                "client_reference_id": "ref-1",
                "line_items[0][price_data][currency]": "usd",
                "line_items[0][price_data][unit_amount]": "1500",
                "line_items[0][price_data][product_data][name]": "Pro",
                "line_items[0][quantity]": "1",
                "success_url": "http://127.0.0.1:8000/paid",
            },
        )
        headers = {"Authorization": f"Bearer {sim.secret_key}"}
    else:
        sim = FlutterwaveSimulator(
            secret_key="FLWSECK_TEST-x", checkout_base=f"{base}/v3/hosted/pay"
        )
        create = (
            "/v3/payments",
            {"tx_ref": "ref-1", "amount": "15", "currency": "NGN", "customer": {"email": "a@b.c"}},
        )
        headers = {"Authorization": "Bearer FLWSECK_TEST-x"}
    transport = httpx.ASGITransport(app=sim.app)
    async with httpx.AsyncClient(transport=transport, base_url=base, headers=headers) as c:
        path, body = create
        r = await (c.post(path, data=body) if kind == "stripe" else c.post(path, json=body))
        assert r.status_code == 200, r.text
        link = r.json()["url"] if kind == "stripe" else r.json()["data"]["link"]
        assert link.startswith(base), link
        page = await c.get(link)
        assert page.status_code == 200 and "outcome=success" in page.text
        action = page.text.split('action="', 1)[1].split('"', 1)[0]
        paid = await c.post(action)
        assert paid.status_code == 200, paid.text
        assert (await c.get(link)).status_code == 404  # paid: the page is closed
        assert (await c.get(link.rsplit("/", 1)[0] + "/nope")).status_code == 404
