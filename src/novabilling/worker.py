"""Job name -> handler: wiring only. Each domain's jobs module holds its handlers, which
open the tenant session, call services and are safe to run twice (delivery is at least once).

- ``billing``: ``novabilling.billing.jobs.billing_handlers`` (``billing.tick``,
  ``billing.issued``, ``billing.first_invoice``);
- ``emails``: ``novabilling.billing.emails.handlers`` (incl. ``invoice.render_pdf``) and
  ``novabilling.auth.password_reset.handlers`` (``auth.password_reset``);
- ``payments`` / ``webhooks``: ``novabilling.payments.jobs.payment_handlers`` (charge,
  reconcile, inbound processing) and ``novabilling.webhooks.outbound.handlers`` (delivery).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from novabilling.kit.jobs import JobHandler

if TYPE_CHECKING:
    from novabilling.runtime import Runtime


def build_handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    """Every job handler, bound to ``runtime``. Domains add theirs here."""
    from novabilling.auth import password_reset
    from novabilling.billing import emails
    from novabilling.billing.jobs import billing_handlers
    from novabilling.payments.jobs import payment_handlers
    from novabilling.tenancy import idempotency_expiry
    from novabilling.webhooks import outbound

    handlers: dict[tuple[str, str], JobHandler] = {}
    handlers.update(billing_handlers(runtime))
    handlers.update(emails.handlers(runtime))
    handlers.update(payment_handlers(runtime))
    handlers.update(outbound.handlers(runtime))
    handlers.update(password_reset.handlers(runtime))
    handlers.update(idempotency_expiry.handlers(runtime))
    return handlers
