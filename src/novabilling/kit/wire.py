"""Base for request bodies: camelCase on the wire, unknown keys rejected (400), free-form
objects (``metadata``, ``settings``, ``properties``, ``credentials``) bounded: at most
``MAX_FREEFORM_BYTES`` as JSON, 32 levels, int64 integers, finite numbers, no NUL."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)
from pydantic.alias_generators import to_camel

from novabilling.kit.jsonguard import MAX_FREEFORM_BYTES, JsonRejected, check_value

_EMAIL = re.compile(r"^[^\s@]+@[^\s@.]+(\.[^\s@.]+)*\.[A-Za-z]{2,}$")


class WireModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=False,
    )

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_freeform(cls, value: Any) -> Any:
        """Every object-valued field of every body, in one place (issue 14, defect 4). A
        hot model whose only object field is known may override this method (same name)
        with a validator of that field alone: one call per element instead of one per
        field."""
        return bounded_freeform(value)


def bounded_freeform(value: Any) -> Any:
    """``value`` unchanged; a dict over the free-form bounds raises ValueError."""
    if isinstance(value, dict):
        try:
            check_value(value, max_bytes=MAX_FREEFORM_BYTES)
        except JsonRejected as exc:
            detail = exc.message.removeprefix("body ")
            raise ValueError(detail if exc.field == "body" else f"is invalid: {detail}") from None
    return value


def _check_email(value: str) -> str:
    if not _EMAIL.match(value) or len(value) > 320:
        raise ValueError("must be an email")
    return value


Email = Annotated[str, AfterValidator(_check_email)]
"""Syntax-only email check (contract README §7): ``x@test.local`` is valid."""


def bounded(min_length: int = 0, max_length: int = 255) -> type[str]:
    return Annotated[  # type: ignore[return-value]
        str, StringConstraints(min_length=min_length, max_length=max_length)
    ]


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


class WireOut(BaseModel):
    """Base of the models that document an answer body in the OpenAPI document (camelCase,
    no other keys). Routes still return the dicts built by ``schemas.py`` and rendered by
    orjson: these models are never instantiated per request (``web.openapi.returns``)."""

    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=True, defer_build=True
    )


Timestamp = Annotated[
    str,
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2026-03-01T09:15:02.123Z"]}
    ),
]
"""An instant on the wire: ISO 8601, UTC, milliseconds (``kit.timestamps.to_wire``)."""

DecimalText = Annotated[
    str,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
            "description": "A decimal amount in major units, as a string",
            "examples": ["5000", "19.99"],
        }
    ),
]
"""Money (or a plan-level decimal) as a canonical decimal string (``kit.money.to_wire``)."""

FreeForm = dict[str, Any]


class MessageOut(WireOut):
    """``{"message": ...}``: the answer of deletions and of actions with nothing to return."""

    message: str
