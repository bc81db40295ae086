"""The HTTP server's own answers in the contract's error body (issue 14, defect 14).

Uvicorn answers a request it cannot parse (a bad request line, a malformed or oversized
header, a broken chunked body) itself, before the app sees anything, with a plain-text
``400 Invalid HTTP request received.``. ``ContractHttpToolsProtocol`` (what ``serve`` uses)
and ``ContractH11Protocol`` answer it as the app would:
``{"statusCode": 400, "message": "Bad Request", "errors": null, "timestamp", "path"}`` with
the security headers, then close the connection (as uvicorn does).

What stays outside any shaping, by nature: a connection closed without an answer (client
gone, keep-alive timeout, TLS handshake failure, a request so broken the server cannot tell
it is HTTP is still answered as above but with ``path: ""``), and uvicorn's plain
``503 Service Unavailable`` for ``--limit-concurrency``, which ``serve`` never sets. The
app itself never lets uvicorn send its plain ``500``: every exception is answered inside
(``RequestContextMiddleware``).
"""

from __future__ import annotations

from typing import Any

import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from novabilling.kit.clock import SystemClock
from novabilling.kit.timestamps import to_wire

_SECURITY = (
    b"x-content-type-options: nosniff\r\n"
    b"x-frame-options: SAMEORIGIN\r\n"
    b"referrer-policy: no-referrer\r\n"
)
_MAX_PATH = 2048


def bad_request_bytes(path: str) -> bytes:
    """A complete HTTP/1.1 400 response carrying the contract's error body."""
    body = orjson.dumps(
        {
            "statusCode": 400,
            "message": "Bad Request",
            "errors": None,
            "timestamp": to_wire(SystemClock().now()),
            "path": path[:_MAX_PATH],
        }
    )
    head = (
        b"HTTP/1.1 400 Bad Request\r\n"
        b"content-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"connection: close\r\n" + _SECURITY + b"\r\n"
    )
    return head + body


def _path_of(raw: Any) -> str:
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("latin-1")
    return ""


class ContractHttpToolsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        self.transport.write(bad_request_bytes(_path_of(getattr(self, "url", b""))))
        self.transport.close()


class ContractH11Protocol(H11Protocol):
    def send_400_response(self, msg: str) -> None:
        scope = getattr(self, "scope", None)
        raw = scope.get("raw_path") if isinstance(scope, dict) else None
        self.transport.write(bad_request_bytes(_path_of(raw)))
        self.transport.close()
