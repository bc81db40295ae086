"""A small bounded HTTP/1.1 keep-alive load generator (loopback only).

    uv run python bench/load.py --url http://127.0.0.1:8000/health -c 32 -d 10 \
        [-H "Authorization: Bearer ..."] [--method POST --body-template '{"email": "u{n}@x.test"}']

Each connection sends its next request as soon as the previous answer is complete.
Prints requests/s, status counts and latency percentiles (p50/p90/p99/max) as JSON.
``{n}`` in the body template is replaced by a unique counter per request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None  # type: ignore[assignment]


class _Conn(asyncio.Protocol):
    def __init__(self, owner: Load) -> None:
        self.owner = owner
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.ready = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ready.set_result(None)

    def send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.owner.next_request())

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buf[:head_end]).lower()
            length = 0
            idx = head.find(b"content-length:")
            if idx >= 0:
                line_end = head.find(b"\r\n", idx)
                length = int(head[idx + 15 : line_end if line_end > 0 else None].strip())
            total = head_end + 4 + length
            if len(self.buf) < total:
                return
            status = int(head[9:12])
            del self.buf[:total]
            self.owner.record(status, time.perf_counter() - self.sent_at)
            if self.owner.running:
                self.send()
            else:
                self.owner.finished(self)
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.errors += 1
        self.owner.finished(self)


class Load:
    def __init__(self, args: argparse.Namespace) -> None:
        parts = urlsplit(args.url)
        self.host = parts.hostname or "127.0.0.1"
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("loopback only")
        self.port = parts.port or 80
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        self.method = args.method
        self.path = path
        self.headers = "".join(f"{h}\r\n" for h in args.header)
        self.template: str | None = args.body_template
        self.counter = 0
        self.prefix = f"{int(time.time() * 1000):x}"
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self.running = True
        self.open = 0
        self.done = asyncio.Event()
        self.static = self._build(None) if self.template is None else None

    def _build(self, body: bytes | None) -> bytes:
        head = f"{self.method} {self.path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        return head.encode() + b"\r\n" + (body or b"")

    def next_request(self) -> bytes:
        if self.static is not None:
            return self.static
        self.counter += 1
        assert self.template is not None
        body = self.template.replace("{n}", f"{self.prefix}{self.counter}")
        return self._build(body.encode())

    def record(self, status: int, seconds: float) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if self.running:
            self.latencies.append(seconds)

    def finished(self, _conn: _Conn) -> None:
        self.open -= 1
        if self.open <= 0:
            self.done.set()


async def run(args: argparse.Namespace) -> dict[str, object]:
    load = Load(args)
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(args.connections):
        _, proto = await loop.create_connection(lambda: _Conn(load), load.host, load.port)
        await proto.ready
        conns.append(proto)
    load.open = len(conns)
    # warm-up then measure
    started = time.perf_counter()
    for c in conns:
        c.send()
    await asyncio.sleep(args.warmup)
    load.latencies.clear()
    load.statuses.clear()
    measured_from = time.perf_counter()
    await asyncio.sleep(args.duration)
    load.running = False
    elapsed = time.perf_counter() - measured_from
    count = len(load.latencies)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(load.done.wait(), timeout=5)
    for c in conns:
        if c.transport is not None:
            c.transport.close()
    lat = sorted(load.latencies)

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 2) if lat else 0.0

    return {
        "url": args.url,
        "method": args.method,
        "connections": args.connections,
        "duration_s": round(elapsed, 2),
        "requests": count,
        "rps": round(count / elapsed, 1),
        "statuses": load.statuses,
        "errors": load.errors,
        "latency_ms": {
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "max": round(lat[-1] * 1000, 2) if lat else 0.0,
            "mean": round(statistics.fmean(lat) * 1000, 2) if lat else 0.0,
        },
        "total_s": round(time.perf_counter() - started, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("-c", "--connections", type=int, default=32)
    parser.add_argument(
        "-d", "--duration", type=float, default=10.0, help="measured seconds (max 120)"
    )
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("-H", "--header", action="append", default=[])
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body-template", default=None)
    args = parser.parse_args()
    args.duration = min(args.duration, 120.0)
    if uvloop is not None:
        uvloop.install()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
