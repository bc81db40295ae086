"""``novabilling serve --workers N`` leaves one small supervisor plus N workers running,
nothing else (``--workers 1``: a single process), all serving one port, each worker on a
listening socket of its own (SO_REUSEPORT: the kernel spreads keep-alive connections over
them; on one shared socket the worker that woke first accepted every pending connection,
32 to 0 was seen under wrk); a port already held is refused, not shared; SIGTERM stops
them all. Embedded mode in a temporary NB_DATA_DIR, on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from novabilling.kit import headless
from novabilling.web import serving
from tests.servers import free_port

pytestmark = pytest.mark.long(seconds=45)


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        children = Path(f"/proc/{current}/task/{current}/children")
        if children.exists():
            todo += [int(c) for c in children.read_text().split()]
    return out


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _serve(tmp_path: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NB_")}
    env.update(NB_ENV="test", NB_DATA_DIR=str(tmp_path), NB_PORT=str(port), NB_LOG_LEVEL="WARNING")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "novabilling"), "serve", "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, "serve exited"
        time.sleep(0.3)
    proc.kill()
    pytest.fail("serve did not answer /health")


def _established(pid: int, port: int) -> int:
    """Connections to ``port`` that process ``pid`` holds (its fds against /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01" and fields[9] in inodes:  # ESTABLISHED
            count += 1
    return count


def _health(conn: socket.socket) -> None:
    conn.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        assert chunk, "connection closed"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data[:100]


def _spread_over(workers: list[int], port: int, connections: int = 64) -> None:
    """Open ``connections`` keep-alive connections, one request each: every worker holds
    at least a quarter of them (below a quarter has odds of about 3 in 100,000 with the
    kernel's hash) and binding the port again, as a second server would, fails."""
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(connections)]
    try:
        for conn in held:
            _health(conn)
        per_worker = {pid: _established(pid, port) for pid in workers}
        assert sum(per_worker.values()) == connections, per_worker
        assert min(per_worker.values()) >= connections // 4, per_worker
        with pytest.raises(OSError, match="in use"):
            serving.bind_workers("127.0.0.1", port, len(workers))
    finally:
        for conn in held:
            conn.close()


def _stop(proc: subprocess.Popen[bytes], pids: list[int]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)
    left = [p for p in pids if Path(f"/proc/{p}/cmdline").exists()]
    assert left == [], f"processes left running: {left}"


def test_two_workers_are_one_supervisor_plus_two_sharing_the_connections(tmp_path: Path) -> None:
    proc, base = _serve(tmp_path, 2)
    pids = _tree(proc.pid)
    try:
        assert len(pids) == 3, [Path(f"/proc/{p}/cmdline").read_text() for p in pids]
        supervisor, workers = pids[0], pids[1:]
        assert all(_tree(w) == [w] for w in workers)  # no helpers below a worker
        assert _rss_mib(supervisor) < 40  # the supervisor holds no app, CLI or migrations
        for pid in pids:  # all without Rich, Pygments and cryptography (kit.headless)
            argv = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
            hidden = "rich,pygments,cryptography"
            launcher = ["-m", "novabilling.kit.headless", "--hide", hidden]
            assert argv[1:7] == [*headless.INTERPRETER_OPTIONS, *launcher]
        with httpx.Client(base_url=base) as client:
            assert all(client.get("/health").status_code == 200 for _ in range(20))
        _spread_over(workers, int(base.rsplit(":", 1)[1]))
    finally:
        _stop(proc, pids)


def test_one_worker_is_one_process(tmp_path: Path) -> None:
    proc, base = _serve(tmp_path, 1)
    pids = _tree(proc.pid)
    try:
        assert pids == [proc.pid]
        assert httpx.get(f"{base}/api/currencies", timeout=10).status_code == 200
    finally:
        _stop(proc, pids)
