"""``LeanRoute``: a plain Starlette route for the few hot paths that skip FastAPI's
dependency injection and body models (the webhook intake, usage event ingestion, creating
and listing customers). It records itself in the scope as FastAPI's routes do, so metrics
and the access log label requests with the path template and rate limiting keys on it.
``parse_body`` validates a lean route's JSON body with the errors FastAPI would raise."""

from __future__ import annotations

from typing import TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.routing import Match, Route
from starlette.types import Scope

M = TypeVar("M", bound=BaseModel)


class LeanRoute(Route):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def parse_body(model: type[M], body: bytes) -> M:
    """The request body as ``model``; a ``RequestValidationError`` (the app's 400 naming
    each field) when it does not validate, located under ``body`` as FastAPI's are (so a
    body sent with another content type gets the same answer as on any route)."""
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in exc.errors()]
        raise RequestValidationError(errors) from None
