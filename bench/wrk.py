"""wrk as the load generator when it is installed (``apt-get install wrk``).

wrk is C: on a 2-core machine the Python loader (``bench/load.py``) takes a good part of a
core away from the server it measures; wrk with one thread takes a few percent. Results
have the same keys as ``load.py``'s JSON (``rps``, ``latency_ms``, ``statuses``-like
counts), plus ``loader``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "lua"
SEPARATOR = "\n<<<nb-request>>>\n"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def available() -> bool:
    return shutil.which("wrk") is not None


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return round(float(number) * _UNITS[unit], 2)


def parse(out: str) -> dict[str, Any]:
    """The numbers of one ``wrk --latency`` report."""
    pct = {m[0]: _ms(m[1]) for m in re.findall(r"^\s+(50|90|99)%\s+(\S+)", out, re.M)}
    total = re.search(r"(\d+) requests in", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if total is None or rps is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return {
        "loader": "wrk",
        "requests": int(total.group(1)),
        "rps": float(rps.group(1)),
        "latency_ms": {"p50": pct.get("50"), "p90": pct.get("90"), "p99": pct.get("99")},
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "errors": errors.group(1) if errors else None,
    }


def _wrk(
    url: str,
    *,
    connections: int,
    duration: float,
    options: list[str] = [],  # noqa: B006 - read only
    script_args: list[str] = [],  # noqa: B006 - read only
) -> dict[str, Any]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(duration))}s", "--latency"]
    cmd += [*options, url]
    if script_args:
        cmd += ["--", *script_args]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {out.stderr or out.stdout}")
    return parse(out.stdout)


def get(url: str, *, headers: list[str], connections: int, duration: float) -> dict[str, Any]:
    """GET ``url`` with ``headers`` ("Name: value") on keep-alive connections."""
    options = [arg for header in headers for arg in ("-H", header)]
    return _wrk(url, connections=connections, duration=duration, options=options)


def templated(
    url: str,
    *,
    method: str,
    path: str,
    template: str,
    headers: list[str],
    connections: int,
    duration: float,
) -> dict[str, Any]:
    """``method path`` with a JSON body where ``{n}`` is unique per request."""
    return _wrk(
        url,
        connections=connections,
        duration=duration,
        options=["-s", str(LUA / "template.lua")],
        script_args=[method, path, template, *headers],
    )


def replay(url: str, requests: list[bytes], *, connections: int, duration: float) -> dict[str, Any]:
    """Send pre-built raw HTTP/1.1 requests (each once, then again from the start)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "requests.bin"
        data.write_bytes(b"".join(r + SEPARATOR.encode() for r in requests))
        return _wrk(
            url,
            connections=connections,
            duration=duration,
            options=["-s", str(LUA / "replay.lua")],
            script_args=[str(data), SEPARATOR, "1"],
        )


def round_robin(
    url: str, *, path: str, keys_file: Path, connections: int, duration: float
) -> dict[str, Any]:
    """GET ``path``, each request with the next API key of ``keys_file`` (one a line)."""
    return _wrk(
        url,
        connections=connections,
        duration=duration,
        options=["-s", str(LUA / "tenants.lua"), "--timeout", "10s"],
        script_args=[path, str(keys_file)],
    )
