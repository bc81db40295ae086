"""The hosted checkout page a simulator serves in place of the provider's own (Stripe
Checkout, Flutterwave Standard): what the payer sees and two buttons that do what paying
or failing on the real page does, through the sim-only ``POST /_sim/pay/{reference}``."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse


def hosted_page(*, provider: str, reference: str, amount: str, currency: str) -> HTMLResponse:
    """A minimal page: amount, reference, "Pay" and "Decline" buttons."""
    ref = escape(reference, quote=True)
    buttons = "".join(
        f'<form method="post" action="/_sim/pay/{ref}?outcome={outcome}">'
        f'<button type="submit" name="outcome" value="{outcome}">{label}</button></form>'
        for outcome, label in (("success", "Pay"), ("failed", "Decline"))
    )
    title = f"{escape(provider)} checkout (simulator)"
    body = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h1>{title}</h1><p>Pay <strong>{escape(amount)} {escape(currency)}</strong>"
        f" for <code>{ref}</code></p>{buttons}</body></html>"
    )
    return HTMLResponse(body)
