"""Real processes for end-to-end tests: ``novabilling serve`` and ``novabilling simulate``
started as a user would (the installed console script in a subprocess, on a free loopback
port, with a temporary NB_DATA_DIR), waited for, and stopped (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def console_script() -> str:
    """The ``novabilling`` command of the environment running the tests."""
    found = shutil.which("novabilling", path=str(Path(sys.executable).parent))
    assert found, "the novabilling console script is not installed (uv sync)"
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """The test process's environment without any NB_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NB_")}
    env.update(extra)
    return env


@dataclass
class Process:
    url: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _stop(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is not None:
        return
    popen.send_signal(signal.SIGTERM)
    try:
        popen.wait(timeout=10)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait(timeout=10)


@contextmanager
def running(
    args: list[str], *, url: str, ready_path: str, env: dict[str, str], log: Path
) -> Iterator[Process]:
    """Start ``novabilling <args>``, wait until ``url + ready_path`` answers, stop at exit."""
    with log.open("wb") as out:
        popen = subprocess.Popen(
            [console_script(), *args], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    process = Process(url=url, popen=popen, log=log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if popen.poll() is not None:
                raise AssertionError(f"{args[0]} exited {popen.returncode}:\n{process.output()}")
            try:
                if httpx.get(url + ready_path, timeout=2).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{args[0]} did not answer in 120 s:\n{process.output()}")
            time.sleep(0.2)
        yield process
    finally:
        _stop(popen)


@contextmanager
def api_server(data_dir: Path, *, port: int | None = None, **settings: str) -> Iterator[Process]:
    """``novabilling serve`` on ``port`` (default: a free one), embedded (SQLite) in
    ``data_dir``."""
    port = port or free_port()
    env = clean_env(
        NB_DATA_DIR=str(data_dir),
        NB_PORT=str(port),
        NB_HOST="127.0.0.1",
        NB_LOG_LEVEL="WARNING",
        NB_RATE_LIMIT="0",
        NB_ARGON2_TIME_COST="1",
        NB_ARGON2_MEMORY_KIB="1024",
        **settings,
    )
    with running(
        ["serve"],
        url=f"http://127.0.0.1:{port}",
        ready_path="/health/ready",
        env=env,
        log=data_dir / "serve.log",
    ) as process:
        yield process


def register(base_url: str, company: str = "Acme Ltd") -> dict[str, str]:
    """Register a tenant over HTTP: {"apiKey", "accessToken", "tenantId"}."""
    r = httpx.post(
        f"{base_url}/api/auth/register",
        json={
            "name": "Ada Obi",
            "email": f"owner-{secrets.token_hex(6)}@test.local",
            "password": "correct-horse-battery",
            "companyName": company,
        },
        timeout=30,
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return {
        "apiKey": body["apiKey"],
        "accessToken": body["accessToken"],
        "tenantId": body["tenant"]["id"],
    }
