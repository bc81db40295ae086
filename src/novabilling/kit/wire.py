"""Base for request bodies: camelCase on the wire, unknown keys rejected (400)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic.alias_generators import to_camel

_EMAIL = re.compile(r"^[^\s@]+@[^\s@.]+(\.[^\s@.]+)*\.[A-Za-z]{2,}$")


class WireModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        str_strip_whitespace=False,
    )


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
