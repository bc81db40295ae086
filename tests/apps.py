"""FastAPI apps built once per settings and lent to one runtime at a time.

Building the app - every route's dependency and model analysis - costs 0.3-0.9 s, more
than most tests' own requests. A request reaches the process's services only through
``app.state.runtime``, so one app serves test after test: ``lend`` points an idle app of
the runtime's settings at that runtime (building one when none is idle), ``give_back``
returns it when the runtime closes. Two runtimes open at once in one test (the ``client``
fixture's and a ``TestClock`` one) get an app each.

Only apps of the last few settings objects are kept: a test that builds its own settings
(``model_copy``) gets a fresh app, as before, that is not kept for long.
"""

from __future__ import annotations

from collections import OrderedDict

from fastapi import FastAPI

from novabilling.app import create_app
from novabilling.config import Settings
from novabilling.kit.logging import configure_logging
from novabilling.runtime import Runtime


class AppPool:
    def __init__(self, *, keep: int) -> None:
        self._keep = keep
        self._idle: OrderedDict[int, tuple[Settings, list[FastAPI]]] = OrderedDict()
        self._lent: dict[int, tuple[Runtime, FastAPI]] = {}

    def lend(self, runtime: Runtime) -> FastAPI:
        """The app lent to ``runtime`` (the same one until ``give_back``)."""
        lent = self._lent.get(id(runtime))
        if lent is not None and lent[0] is runtime:
            return lent[1]
        settings = runtime.settings
        idle = self._idle.get(id(settings))
        if idle is not None and idle[0] is settings and idle[1]:
            app = idle[1].pop()
            # create_app configured logging; a test may have reconfigured it since
            configure_logging(json=settings.json_logs, level=settings.log_level)
        else:
            app = create_app(settings, runtime=runtime)
        app.state.runtime = runtime
        self._lent[id(runtime)] = (runtime, app)
        return app

    def give_back(self, runtime: Runtime) -> None:
        """``runtime`` is closing: its app waits for the next runtime of its settings."""
        lent = self._lent.pop(id(runtime), None)
        if lent is None or lent[0] is not runtime:
            return
        app = lent[1]
        app.state.runtime = None
        settings = runtime.settings
        idle = self._idle.get(id(settings))
        if idle is None or idle[0] is not settings:
            idle = self._idle[id(settings)] = (settings, [])
        self._idle.move_to_end(id(settings))
        idle[1].append(app)
        while len(self._idle) > self._keep:
            self._idle.popitem(last=False)


APPS = AppPool(keep=4)
