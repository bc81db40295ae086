"""Database servers a test (or a benchmark) starts for itself, never the shared one:
``PostgresCluster`` (initdb + pg_ctl from the PostgreSQL binaries under a temp dir, on a
free port) and ``PgBouncer`` (Debian's pgbouncer, transaction pooling, in front of a
server). Both stop and remove everything they made on ``stop()``.

PostgreSQL and PgBouncer refuse to run as root: as root they run as the ``postgres``
system user (their files are handed to it)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_port(port: int, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def _as_service_user() -> list[str]:
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _hand_over(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
        for child in path.rglob("*"):
            shutil.chown(child, "postgres", "postgres")


def _missing(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is required in CI (.ci/run installs it)")
    pytest.skip(f"{what} not installed")


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresCluster:
    """A throwaway PostgreSQL cluster: trust auth on 127.0.0.1, ``max_connections`` as given."""

    def __init__(self, *, max_connections: int = 100, name: str = "pg") -> None:
        binaries = postgres_bin()
        if binaries is None:
            _missing("PostgreSQL server binaries (initdb)")
        assert binaries is not None
        self.bin = binaries
        self.max_connections = max_connections
        self.root = Path(tempfile.mkdtemp(prefix=f"nb-{name}-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.started = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*_as_service_user(), *args], check=True, capture_output=True, timeout=120)

    def start(self) -> PostgresCluster:
        self.root.chmod(0o755)
        _hand_over(self.root)
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        options = (
            f"-c port={self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c max_connections={self.max_connections} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c shared_buffers=32MB"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip
        self.started = True
        _wait_for_port(self.port, timeout=30, what="PostgreSQL")
        return self

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)


class PgBouncer:
    """Debian's pgbouncer in transaction mode in front of ``host:port``.

    Tenants log in with their own role and password (checked against the server's
    ``pg_shadow`` through ``auth_query``); ``postgres`` (the admin that creates tenant
    databases) is trusted from loopback, like on the test server."""

    def __init__(
        self, *, upstream_port: int, server_pool_size: int = 2, server_idle_timeout: float = 10
    ) -> None:
        binary = shutil.which("pgbouncer") or (
            "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
        )
        if binary is None:
            _missing("pgbouncer (apt-get install pgbouncer)")
        assert binary is not None
        self.binary = binary
        self.upstream_port = upstream_port
        self.server_pool_size = server_pool_size
        self.server_idle_timeout = server_idle_timeout
        self.root = Path(tempfile.mkdtemp(prefix="nb-pgbouncer-"))
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def _write_config(self) -> Path:
        (self.root / "hba.conf").write_text(
            "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        (self.root / "users.txt").write_text('"postgres" ""\n')
        config = self.root / "pgbouncer.ini"
        config.write_text(
            f"""[databases]
* = host=127.0.0.1 port={self.upstream_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = hba
auth_hba_file = {self.root}/hba.conf
auth_file = {self.root}/users.txt
auth_user = postgres
auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename=$1
admin_users = postgres
pool_mode = transaction
default_pool_size = {self.server_pool_size}
max_client_conn = 2000
server_idle_timeout = {self.server_idle_timeout}
ignore_startup_parameters = extra_float_digits
logfile = {self.root}/pgbouncer.log
"""
        )
        return config

    def start(self) -> PgBouncer:
        config = self._write_config()
        self.root.chmod(0o755)
        _hand_over(self.root)
        self._proc = subprocess.Popen(
            [self.binary, *(["-u", "postgres"] if os.geteuid() == 0 else []), str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_port(self.port, timeout=20, what="pgbouncer")
        return self

    def admin(self, command: str) -> list[list[str]]:
        """A ``SHOW ...`` on pgbouncer's admin console, rows of text fields."""
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d",
             "pgbouncer", "-AtF", "\t", "-c", command],
            check=True, capture_output=True, text=True, timeout=30,
        ).stdout  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        shutil.rmtree(self.root, ignore_errors=True)
