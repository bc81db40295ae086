"""Serve the API with as few and as small processes as the worker count allows.

``novabilling serve`` migrates, then replaces itself (``exec``) with this module, so
nothing the command line or the migrations loaded (Typer, Rich, Alembic, ...) stays
resident:

- ``--workers 1``: the process binds the port and runs uvicorn itself: one process;
- ``--workers N``: the process becomes a supervisor that imports nothing but the standard
  library (a few MiB), binds the port once and starts N worker processes that inherit the
  listening socket; one that dies is started again, SIGTERM/SIGINT stop them all: one
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


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


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
    def __init__(self, sock: socket.socket, workers: int) -> None:
        self.sock = sock
        self.count = workers
        self.children: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
        self.stopping = False

    def _start(self) -> None:
        fd = self.sock.fileno()
        child = subprocess.Popen(
            headless.command(MODULE, ["worker", "--fd", str(fd)], hidden=HIDDEN),
            pass_fds=(fd,),
            preexec_fn=_die_with_parent,
        )
        self.children[child.pid] = (child, time.monotonic())

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for _ in range(self.count):
            self._start()
        status = 0
        while not self.stopping:
            time.sleep(0.2)
            for pid, (child, started) in list(self.children.items()):
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
                self._start()
        self._terminate()
        return status

    def _terminate(self) -> None:
        for child, _ in self.children.values():
            child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for child, _ in self.children.values():
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
    sock = _bind(args.host, args.port)
    if args.workers <= 1:
        run_worker(sock)
        return 0
    return Supervisor(sock, args.workers).run()


if __name__ == "__main__":
    sys.exit(main())
