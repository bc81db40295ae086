"""``novabilling serve --workers 2`` (web/serving.py): one supervisor and two workers, each
worker on its own listening socket of the port (SO_REUSEPORT), so the kernel spreads
keep-alive connections over both - on one shared socket the worker that woke first
accepted every pending connection (32 to 0 was seen under wrk). A port another server
holds is refused, not shared."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from novabilling.web import serving
from tests.live import api_server

CONNECTIONS = 64


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        ppid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
        if int(ppid) == pid:
            found.append(int(entry))
    return found


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


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT (Linux)")
def test_two_workers_share_the_connections_and_a_held_port_is_refused(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    with api_server(tmp_path / "one", NB_WORKERS="2") as server:
        port = int(server.url.rsplit(":", 1)[1])
        workers = _children(server.popen.pid)
        assert len(workers) == 2, workers  # one supervisor plus two workers, nothing else
        connections = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS)]
        try:
            for conn in connections:
                _health(conn)  # accepted and answered, kept alive
            held = {pid: _established(pid, port) for pid in workers}
            assert sum(held.values()) == CONNECTIONS, held
            # spread by the kernel's hash: below a quarter has odds of about 3 in 100,000
            assert min(held.values()) >= CONNECTIONS // 4, held

            with pytest.raises(OSError, match="in use"):  # what a second server meets
                serving.bind_workers("127.0.0.1", port, 2)
            with socket.create_connection(("127.0.0.1", port)) as conn:
                _health(conn)  # the first server still answers on its port
        finally:
            for conn in connections:
                conn.close()
