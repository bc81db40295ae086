"""Job name -> handler: wiring only. Each domain registers the handlers of its own jobs;
they open the tenant session, call services and are safe to run twice (delivery is at
least once):

- ``billing.jobs``: the tick, automatic charges, reconciliation, inbound webhooks;
- ``invoices.jobs`` / ``invoices.emails``: the fan-out of a batch of issued invoices, the
  invoice e-mails and PDF rendering;
- ``payments.emails``, ``subscriptions.emails``: the customer e-mails of those domains;
- ``auth.password_reset``: the password reset e-mail (lookup and token in the job);
- ``webhooks.outbound``: delivery of outbound tenant webhooks.
"""

from __future__ import annotations

from novabilling.auth import password_reset
from novabilling.billing import jobs as billing_jobs
from novabilling.invoices import emails as invoice_emails
from novabilling.invoices import jobs as invoice_jobs
from novabilling.kit.jobs import JobHandler
from novabilling.payments import emails as payment_emails
from novabilling.runtime import Runtime
from novabilling.subscriptions import emails as subscription_emails
from novabilling.tenants import idempotency_expiry
from novabilling.webhooks import outbound


def build_handlers(runtime: Runtime) -> dict[tuple[str, str], JobHandler]:
    """Every job handler, bound to ``runtime``. Domains add theirs here."""
    handlers: dict[tuple[str, str], JobHandler] = {}
    for part in (
        billing_jobs.billing_handlers(runtime),
        invoice_jobs.handlers(runtime),
        invoice_emails.handlers(runtime),
        payment_emails.handlers(runtime),
        subscription_emails.handlers(runtime),
        outbound.handlers(runtime),
        password_reset.handlers(runtime),
        idempotency_expiry.handlers(runtime),
    ):
        overlap = set(part) & set(handlers)
        if overlap:
            raise RuntimeError(f"two handlers for {sorted(overlap)}")
        handlers.update(part)
    return handlers
