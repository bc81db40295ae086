"""``LeanRoute``: a plain Starlette route for the few hot paths that skip FastAPI's
dependency injection and body models (the webhook intake, usage event ingestion). It
records itself in the scope as FastAPI's routes do, so metrics and the access log label
requests with the path template and rate limiting keys on it."""

from __future__ import annotations

from starlette.routing import Match, Route
from starlette.types import Scope


class LeanRoute(Route):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child
