"""The HTTP server's own 400s (a request it cannot parse, before the app runs) carry the
contract's error body, not plain text (issue 14, defect 14): a real uvicorn on a free port,
raw bytes on a socket, with each HTTP implementation ``serve`` may use."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn
import uvicorn.importer

from novabilling.app import create_app
from novabilling.bootstrap import build_runtime
from novabilling.config import Settings
from novabilling.web import serving
from novabilling.web.server import ContractH11Protocol, ContractHttpToolsProtocol
from tests.outages import free_port

BAD_REQUESTS = [
    b"GARBAGE\r\n\r\n",
    b"GET /api/customers?x=1 HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
    b"POST /api/auth/login HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
    b"GET /api/plans HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n",
]


@pytest.fixture(params=[ContractHttpToolsProtocol, ContractH11Protocol], ids=["httptools", "h11"])
async def server(request: pytest.FixtureRequest, sqlite_settings: Settings) -> AsyncIterator[int]:
    runtime = build_runtime(sqlite_settings)
    port = free_port()
    config = uvicorn.Config(
        create_app(sqlite_settings, runtime=runtime),
        host="127.0.0.1",
        port=port,
        http=request.param,
        lifespan="off",
        log_config=None,
        log_level="critical",
    )
    served = uvicorn.Server(config)
    task = asyncio.create_task(served.serve())
    for _ in range(1000):
        if served.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        served.should_exit = True
        await task
        await runtime.close()


async def _exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(raw)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, body


@pytest.mark.parametrize("raw", BAD_REQUESTS, ids=["garbage", "header", "chunk", "length"])
async def test_unparsable_requests_get_the_contract_error_body(server: int, raw: bytes) -> None:
    status, headers, body = await _exchange(server, raw)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert headers["x-content-type-options"] == "nosniff"
    payload = json.loads(body)
    assert set(payload) == {"statusCode", "message", "errors", "timestamp", "path"}
    assert payload["statusCode"] == 400 and payload["errors"] is None
    assert payload["timestamp"].endswith("Z") and len(payload["timestamp"]) == 24


async def test_the_path_is_echoed_when_the_server_read_it(server: int) -> None:
    raw = b"GET /api/customers?x=1 HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n"
    _, _, body = await _exchange(server, raw)
    assert json.loads(body)["path"] in ("/api/customers?x=1", "")


async def test_good_requests_are_untouched(server: int) -> None:
    status, headers, body = await _exchange(
        server, b"GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_serve_runs_uvicorn_with_the_contract_protocol(monkeypatch: pytest.MonkeyPatch) -> None:
    """``novabilling serve``'s workers (web/serving.py) use ContractHttpToolsProtocol."""
    seen: list[uvicorn.Config] = []

    def fake_run(self: uvicorn.Server, sockets: object = None) -> None:
        seen.append(self.config)

    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    with socket.socket() as sock:
        serving.run_worker(sock)
    [config] = seen
    assert isinstance(config.http, str)
    assert uvicorn.importer.import_from_string(config.http) is ContractHttpToolsProtocol
