"""Webhook intake throughput (verify signature + INSERT .. ON CONFLICT into the inbox + 200).

Loopback only, bounded in time. Against a running server (rate limit off)::

    NB_RATE_LIMIT=0 uv run novabilling serve --workers 2 &
    uv run python bench/webhook_intake.py --url http://127.0.0.1:8000 -c 64 -d 10

Registers a tenant, configures Paystack (the intake never calls the provider), pre-signs
``--bodies`` distinct ``charge.success`` deliveries (HMAC-SHA512 over the exact bytes),
then keeps ``-c`` HTTP/1.1 keep-alive connections busy for ``-d`` seconds posting them to
``/webhooks/paystack/{tenant}`` (``--bare`` uses ``/webhooks/paystack``, routed by the
reference). Each body is sent once while they last (new inbox rows + one job each), then
they repeat (duplicates: the ON CONFLICT path). Prints JSON: requests/s, status counts,
latency percentiles. The load comes from wrk when it is installed (``bench/wrk.py``; it
leaves the two cores to the server), else from the asyncio loop below.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import secrets
import statistics
import time
from urllib.parse import urlsplit

import httpx
import wrk

SECRET = "sk_test_" + "b" * 40


async def setup(base: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        email = f"bench-{secrets.token_hex(6)}@bench.test"
        r = await client.post(
            "/api/auth/register",
            json={
                "name": "Bench",
                "email": email,
                "password": "bench-password-1",
                "companyName": "Bench Co",
            },
        )
        r.raise_for_status()
        body = r.json()
        headers = {"Authorization": f"Bearer {body['apiKey']}"}
        r = await client.post(
            "/api/payment-providers",
            json={
                "providerName": "paystack",
                "credentials": {"publicKey": "pk_test_bench", "secretKey": SECRET},
            },
            headers=headers,
        )
        r.raise_for_status()
        return str(body["tenant"]["id"])


def signed_requests(host: str, tenant: str, count: int, bare: bool) -> list[bytes]:
    path = "/webhooks/paystack" if bare else f"/webhooks/paystack/{tenant}"
    out = []
    for i in range(count):
        body = json.dumps(
            {
                "event": "charge.success",
                "data": {
                    "id": 7_000_000_000 + i,
                    "reference": f"cbench{i:019d}-{tenant}",
                    "amount": 500000,
                    "currency": "NGN",
                    "status": "success",
                },
            },
            separators=(",", ":"),
        ).encode()
        sig = hmac.new(SECRET.encode(), body, hashlib.sha512).hexdigest()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"x-paystack-signature: {sig}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        out.append(head + body)
    return out


async def _worker(
    host: str,
    port: int,
    reqs: list[bytes],
    counter: list[int],
    deadline: float,
    stats: dict[int, int],
    lat: list[float],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            i = counter[0]
            counter[0] += 1
            t0 = time.perf_counter()
            writer.write(reqs[i % len(reqs)])
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            code = int(status_line.split()[1]) if status_line else 0
            stats[code] = stats.get(code, 0) + 1
    finally:
        writer.close()


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("-c", "--connections", type=int, default=64)
    p.add_argument("-d", "--duration", type=float, default=10.0)
    p.add_argument("--bodies", type=int, default=200_000)
    p.add_argument("--bare", action="store_true")
    p.add_argument("--loader", choices=("wrk", "python"), default="wrk", help="wrk if installed")
    args = p.parse_args()
    parts = urlsplit(args.url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit("loopback only")
    tenant = await setup(args.url)
    reqs = signed_requests(parts.netloc, tenant, args.bodies, args.bare)
    if wrk.available() and args.loader == "wrk":
        result = wrk.replay(args.url, reqs, connections=args.connections, duration=args.duration)
        print(json.dumps({**result, "bare_path": args.bare}, indent=2))
        return
    stats: dict[int, int] = {}
    lat: list[float] = []
    counter = [0]
    start = time.perf_counter()
    deadline = start + args.duration
    await asyncio.gather(
        *[
            _worker(
                parts.hostname or "127.0.0.1", parts.port or 80, reqs, counter, deadline, stats, lat
            )
            for _ in range(args.connections)
        ]
    )
    elapsed = time.perf_counter() - start
    lat.sort()

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 2) if lat else 0.0

    print(
        json.dumps(
            {
                "requests": len(lat),
                "seconds": round(elapsed, 2),
                "requests_per_second": round(len(lat) / elapsed, 1),
                "status": stats,
                "unique_bodies_sent": min(len(lat), len(reqs)),
                "latency_ms": {
                    "p50": pct(0.5),
                    "p90": pct(0.9),
                    "p99": pct(0.99),
                    "mean": round(statistics.fmean(lat) * 1000, 2) if lat else 0,
                },
                "connections": args.connections,
                "bare_path": args.bare,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
