"""GET /api/currencies: public, bare array in the contract's fixed order."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from novabilling.kit.money import CURRENCIES
from novabilling.kit.wire import WireOut
from novabilling.web.openapi import returns

router = APIRouter(prefix="/api/currencies", tags=["currencies"])


class CurrencyOut(WireOut):
    code: str
    symbol: str
    name: str
    decimals: int


_BODY = [
    {"code": c.code, "symbol": c.symbol, "name": c.name, "decimals": c.decimals}
    for c in CURRENCIES.values()
]


@router.get("", summary="List the supported currencies", responses=returns(list[CurrencyOut]))
async def list_currencies() -> list[dict[str, Any]]:
    return _BODY
