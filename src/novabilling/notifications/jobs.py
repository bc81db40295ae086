"""Customer e-mails as jobs: their names, and ``queue`` to send one after the commit.

Every customer e-mail is a job on the ``emails`` queue (retried with backoff; billing
never waits on SMTP). A domain queues the e-mails of its own events and registers their
handlers (``invoices.emails``, ``payments.emails``, ``subscriptions.emails``); the handler
reloads what it needs and renders the message with ``notifications.messages``. Payloads
always carry ``tenant_id``:

- ``email.invoice_issued``   ``{invoice_id, to?, checkout_url?}`` - with the PDF attached
- ``email.invoice_voided``   ``{invoice_id}``
- ``email.payment_received`` ``{invoice_id, method?, reference?}``
- ``email.payment_failed``   ``{invoice_id, reason?, next_retry_at?}``
- ``email.trial_ending``     ``{subscription_id}``
- ``email.subscription_created`` / ``_canceled`` / ``_paused`` / ``_resumed`` /
  ``_plan_changed``  ``{subscription_id}``
- ``email.trial_started`` / ``email.trial_converted``  ``{subscription_id}``
- ``email.refund_issued``    ``{refund_id}``
- ``email.payment_reminder`` ``{invoice_id, stage, at}`` (``invoices.reminders``)
"""

from __future__ import annotations

from typing import Any

from novabilling.kit.jobs import QUEUE_EMAILS, enqueue_after_commit

INVOICE_ISSUED = "email.invoice_issued"
INVOICE_VOIDED = "email.invoice_voided"
PAYMENT_RECEIVED = "email.payment_received"
PAYMENT_FAILED = "email.payment_failed"
TRIAL_ENDING = "email.trial_ending"
SUBSCRIPTION_CREATED = "email.subscription_created"
SUBSCRIPTION_CANCELED = "email.subscription_canceled"
SUBSCRIPTION_PAUSED = "email.subscription_paused"
SUBSCRIPTION_RESUMED = "email.subscription_resumed"
SUBSCRIPTION_PLAN_CHANGED = "email.subscription_plan_changed"
TRIAL_STARTED = "email.trial_started"
TRIAL_CONVERTED = "email.trial_converted"
REFUND_ISSUED = "email.refund_issued"
PAYMENT_REMINDER = "email.payment_reminder"
EMAIL_ATTEMPTS = 6


def queue(tenant_id: str, name: str, data: dict[str, Any], *, key: str | None = None) -> None:
    """Queue an e-mail after the commit; ``key`` makes it once-only (dedup job id)."""
    job_id = f"{tenant_id}:{name}:{key}" if key else None
    enqueue_after_commit(
        QUEUE_EMAILS,
        name,
        {"tenant_id": tenant_id, **data},
        job_id=job_id,
        attempts=EMAIL_ATTEMPTS,
    )


def queue_invoice_email(
    tenant_id: str,
    invoice_id: str,
    *,
    to: str | None = None,
    checkout_url: str | None = None,
    resend: bool = False,
) -> None:
    """The invoice with its PDF; once per invoice unless ``resend`` (send-email)."""
    data: dict[str, Any] = {"invoice_id": invoice_id}
    if to:
        data["to"] = to
    if checkout_url:
        data["checkout_url"] = checkout_url
    queue(tenant_id, INVOICE_ISSUED, data, key=None if resend else invoice_id)
