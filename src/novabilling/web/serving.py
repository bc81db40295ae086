"""Serve the API with as few and as small processes as the worker count allows.

``novabilling serve`` migrates, then replaces itself (``exec``) with this module, so
nothing the command line or the migrations loaded (Typer, Rich, Alembic, ...) stays
resident:

- ``--workers 1``: the process binds the port and runs uvicorn itself: one process;
- ``--workers N``: the process becomes a supervisor that imports nothing but the standard
  library (a few MiB), binds one listening socket per worker on the port
  (``bind_workers``: the kernel spreads the connections) and starts N worker processes
  that inherit them; one that dies is started again on its socket, SIGTERM/SIGINT stop them all: one
  supervisor plus N workers, nothing else (uvicorn's own multi-worker mode also starts
  multiprocessing's resource tracker, and re-imports the command line in every worker).

Every process runs through ``kit.headless`` with Rich, Pygments and ``cryptography``
hidden (structlog, httpx, PyJWT and redis-py import them only because they are installed;
uvicorn needs Click, so it stays).

Workers run with ``MALLOC_ARENA_MAX=2`` unless set: glibc gives every thread (uvicorn's,
the thread pool's) a malloc arena of its own, which only grows a process's memory here.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence

from novabilling.kit import headless

STARTUP_GRACE = 10.0  # a worker that dies sooner failed to start: stop, don't loop
MODULE = "novabilling.web.serving"  # not __name__: run as __main__ it is "__main__"
HIDDEN = ("rich", "pygments", "cryptography")  # see kit/headless.py


def _bind(host: str, port: int, *, shared: bool = False) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def bind_workers(host: str, port: int, workers: int) -> list[socket.socket]:
    """One listening socket per worker, all on ``host:port`` (``SO_REUSEPORT``): the
    kernel spreads new connections over them. On one shared socket the worker that woke
    first accepted every pending connection (an event loop accepts in a loop): keep-alive
    clients stayed 25 to 7 on two workers, and the busier one set the tail latency.

    The port is first bound once without ``SO_REUSEPORT``, so a port another server holds
    fails here ("address already in use") instead of sharing that server's traffic. Where
    ``SO_REUSEPORT`` is missing, the workers share one socket."""
    _bind(host, port).close()
    if workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        return [_bind(host, port)]
    return [_bind(host, port, shared=True) for _ in range(workers)]


def run_worker(sock: socket.socket) -> None:
    """uvicorn (uvloop, httptools) on an already listening socket."""
    import uvicorn

    config = uvicorn.Config(
        "novabilling.asgi:app",
        loop="uvloop",
        # httptools, with the server's own 400s in the contract's error body (web/server.py)
        http="novabilling.web.server:ContractHttpToolsProtocol",
        access_log=False,
        log_level="warning",
        log_config=None,  # uvicorn's own records go through the app's (off-loop) handler
        proxy_headers=True,
        lifespan="on",
    )
    uvicorn.Server(config).run(sockets=[sock])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: the worker gets SIGTERM if the supervisor dies (even by SIGKILL)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Supervisor:
    """Starts worker ``i`` on ``sockets[i]`` (or on the one socket all share), and a
    replacement for a worker that died on the same socket: the connections the kernel
    queued on it wait for the replacement."""

    def __init__(self, sockets: Sequence[socket.socket], workers: int) -> None:
        self.sockets = list(sockets)
        self.count = workers
        self.children: dict[int, tuple[subprocess.Popen[bytes], float, int]] = {}
        self.stopping = False

    def _start(self, slot: int) -> None:
        fd = self.sockets[slot % len(self.sockets)].fileno()
        child = subprocess.Popen(
            headless.command(MODULE, ["worker", "--fd", str(fd)], hidden=HIDDEN),
            pass_fds=(fd,),
            preexec_fn=_die_with_parent,
        )
        self.children[child.pid] = (child, time.monotonic(), slot)

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for slot in range(self.count):
            self._start(slot)
        status = 0
        while not self.stopping:
            time.sleep(0.2)
            for pid, (child, started, slot) in list(self.children.items()):
                if self.stopping:  # a process-group SIGTERM reaches the workers too
                    break
                if child.poll() is None:
                    continue
                del self.children[pid]
                if time.monotonic() - started < STARTUP_GRACE:
                    print(
                        f"worker {pid} failed to start (exit {child.returncode})", file=sys.stderr
                    )
                    self.stopping, status = True, 1
                    break
                print(
                    f"worker {pid} died (exit {child.returncode}); starting another",
                    file=sys.stderr,
                )
                self._start(slot)
        self._terminate()
        return status

    def _terminate(self) -> None:
        for child, _, _ in self.children.values():
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for child, _, _ in self.children.values():
            try:
                child.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def exec_serve(*, host: str, port: int, workers: int) -> None:
    """Replace this process with the server (see the module doc); does not return."""
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")
    options = ["--host", host, "--port", str(port), "--workers", str(workers)]
    args = headless.command(MODULE, ["serve", *options], hidden=HIDDEN)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, args, env)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m novabilling.web.serving")
    sub = parser.add_subparsers(dest="mode", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    worker = sub.add_parser("worker")
    worker.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    if args.mode == "worker":
        run_worker(socket.socket(fileno=args.fd))
        return 0
    if args.workers <= 1:
        run_worker(_bind(args.host, args.port))
        return 0
    return Supervisor(bind_workers(args.host, args.port, args.workers), args.workers).run()


if __name__ == "__main__":
    sys.exit(main())
