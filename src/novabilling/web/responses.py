"""JSON response rendered with orjson (fast, and no float surprises on our dict bodies)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.responses import JSONResponse


class JSONBytes(JSONResponse):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:
            # A value orjson refuses (an integer beyond 64 bits stored before such values
            # were rejected at the edge): render it anyway rather than fail every read.
            text = json.dumps(content, separators=(",", ":"), ensure_ascii=False, default=str)
            return text.encode()
