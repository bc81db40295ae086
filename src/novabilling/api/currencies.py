"""GET /api/currencies: public, bare array in the contract's fixed order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.kit.money import CURRENCIES

router = APIRouter(prefix="/api/currencies", tags=["currencies"])

_BODY = [
    {"code": c.code, "symbol": c.symbol, "name": c.name, "decimals": c.decimals}
    for c in CURRENCIES.values()
]


@router.get("")
async def list_currencies() -> list[dict[str, Any]]:
    return _BODY
