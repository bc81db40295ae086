"""``kit.db.is_unavailable``: which failures mean "the database is not there right now"
(503 + Retry-After) and which are bugs (500)."""

from __future__ import annotations

import errno
import socket

import pytest
from sqlalchemy import exc as sa_exc

from novabilling.kit.db import is_unavailable


class FakePgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _wrapped(inner: BaseException) -> sa_exc.DBAPIError:
    try:
        try:
            raise inner
        except BaseException as caught:
            raise sa_exc.DBAPIError("SELECT 1", None, Exception("adapter")) from caught
    except sa_exc.DBAPIError as outer:
        return outer


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
        ConnectionResetError(errno.ECONNRESET, "reset"),
        TimeoutError(),
        OSError("Multiple exceptions: [Errno 111] Connect call failed ('127.0.0.1', 5432)"),
        OSError(errno.EHOSTUNREACH, "no route"),
        socket.gaierror(-2, "Name or service not known"),
        sa_exc.TimeoutError("QueuePool limit reached"),
        FakePgError("57P03"),  # the database system is starting up / shutting down
        FakePgError("57P01"),  # admin shutdown
        FakePgError("08006"),  # connection failure
        FakePgError("53300"),  # too many connections
        _wrapped(ConnectionRefusedError(errno.ECONNREFUSED, "refused")),
        _wrapped(FakePgError("57P01")),
    ],
)
def test_unavailable(error: BaseException) -> None:
    assert is_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad"),
        KeyError("x"),
        FakePgError("23505"),  # unique violation: a conflict, not an outage
        FakePgError("22021"),  # bad byte sequence: bad input
        FileNotFoundError(errno.ENOENT, "missing"),
        OSError(errno.ENOSPC, "disk full"),
        _wrapped(FakePgError("42P01")),  # undefined table: a bug
    ],
)
def test_not_unavailable(error: BaseException) -> None:
    assert not is_unavailable(error)
