"""``GET /checkout/complete``: where a payer lands after a hosted checkout opened without a
``callbackUrl`` (Stripe's ``success_url``, Flutterwave's ``redirect_url``; see
``payments.credentials.RETURN_PATH``). Public, no auth, not rate limited, not part of the
API document: a plain page that says the payment was received (or, for Flutterwave's
``?status=cancelled|failed``, that it was not). Nothing from the request is echoed back."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from novabilling.payments.credentials import RETURN_PATH

router = APIRouter(include_in_schema=False)

_NOT_PAID = frozenset({"cancelled", "canceled", "failed", "error"})
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;
color:#1f2328}}h1{{font-size:1.5rem}}p{{line-height:1.5}}</style></head>
<body><h1>{title}</h1><p>{text}</p></body></html>
"""
_RECEIVED = _PAGE.format(
    title="Payment received",
    text="Thank you. Your payment has been received and is being confirmed: the invoice "
    "will show as paid in a moment and a receipt is on its way by e-mail. You can close "
    "this page.",
)
_NOT_COMPLETED = _PAGE.format(
    title="Payment not completed",
    text="The payment was not completed and nothing was charged. You can open the payment "
    "link again to try once more.",
)


@router.get(RETURN_PATH)
async def checkout_complete(status: str | None = None) -> HTMLResponse:
    page = _NOT_COMPLETED if (status or "").lower() in _NOT_PAID else _RECEIVED
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
