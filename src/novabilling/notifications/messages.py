"""Email builders: a view in, a ready ``EmailMessage`` out (multipart/alternative text+HTML).

Templates live in ``templates/<name>.txt`` and ``templates/<name>.html`` (Jinja2,
``StrictUndefined``; HTML autoescaped). Amounts go through the ``money`` filter, i.e.
``kit.money.format_display``. Builders do no I/O; sending is a ``Mailer``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from novabilling.kit.clock import SystemClock
from novabilling.kit.money import format_display
from novabilling.notifications.views import (
    InvoiceView,
    Mailbox,
    PaymentView,
    RefundView,
    SubscriptionView,
    format_day,
    method_words,
)

_TEMPLATES = Path(__file__).parent / "templates"


def _environment(*, html: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["money"] = format_display
    env.filters["day"] = format_day
    env.filters["method"] = method_words
    return env


_HTML = _environment(html=True)
_TEXT = _environment(html=False)


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"


def _address(mailbox: Mailbox | str) -> Address:
    if isinstance(mailbox, str):
        mailbox = Mailbox(address=mailbox)
    try:
        return Address(display_name=mailbox.name, addr_spec=mailbox.address.strip())
    except (ValueError, IndexError) as exc:
        raise ValueError(f"invalid email address {mailbox.address!r}: {exc}") from None


def compose(
    template: str,
    *,
    subject: str,
    sender: Mailbox,
    recipient: Mailbox | str,
    context: dict[str, Any],
    attachments: tuple[Attachment, ...] = (),
) -> EmailMessage:
    """Render ``template``.txt/.html with ``context`` into a message from sender to recipient."""
    context = {"subject": subject, **context}
    sender_address = _address(sender)
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender_address
    message["To"] = _address(recipient)
    message["Date"] = format_datetime(SystemClock().now())
    message["Message-ID"] = make_msgid(domain=sender_address.domain or None)
    message.set_content(_TEXT.get_template(f"{template}.txt").render(context))
    message.add_alternative(_HTML.get_template(f"{template}.html").render(context), subtype="html")
    for item in attachments:
        maintype, _, subtype = item.mime_type.partition("/")
        message.add_attachment(
            item.content, maintype=maintype, subtype=subtype, filename=item.filename
        )
    return message


def invoice_issued(
    invoice: InvoiceView, *, sender: Mailbox, recipient: Mailbox | str, pdf: bytes | None
) -> EmailMessage:
    """The invoice, with ``invoice-<number>.pdf`` attached when ``pdf`` is given."""
    attachments: tuple[Attachment, ...] = ()
    if pdf is not None:
        attachments = (Attachment(f"invoice-{invoice.number}.pdf", pdf, "application/pdf"),)
    return compose(
        "invoice_issued",
        subject=f"Invoice {invoice.number} from {invoice.tenant.name}",
        sender=sender,
        recipient=recipient,
        context={"invoice": invoice, "tenant": invoice.tenant},
        attachments=attachments,
    )


def invoice_voided(
    invoice: InvoiceView, *, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    return compose(
        "invoice_voided",
        subject=f"Invoice {invoice.number} from {invoice.tenant.name} has been voided",
        sender=sender,
        recipient=recipient,
        context={"invoice": invoice, "tenant": invoice.tenant},
    )


def payment_received(
    payment: PaymentView, *, sender: Mailbox, recipient: Mailbox | str, pdf: bytes | None = None
) -> EmailMessage:
    """The receipt for a successful payment, with the (paid) invoice PDF attached when
    ``pdf`` is given."""
    attachments: tuple[Attachment, ...] = ()
    if pdf is not None:
        name = f"invoice-{payment.invoice_number}.pdf"
        attachments = (Attachment(name, pdf, "application/pdf"),)
    return compose(
        "payment_received",
        subject=f"Receipt for invoice {payment.invoice_number} from {payment.tenant.name}",
        sender=sender,
        recipient=recipient,
        context={"payment": payment, "tenant": payment.tenant, "attached": pdf is not None},
        attachments=attachments,
    )


def payment_failed(
    payment: PaymentView, *, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    """A failed charge; names ``next_retry_at`` when another attempt is scheduled."""
    return compose(
        "payment_failed",
        subject=f"Payment failed for invoice {payment.invoice_number} from {payment.tenant.name}",
        sender=sender,
        recipient=recipient,
        context={"payment": payment, "tenant": payment.tenant},
    )


_NOUNS = {
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "yearly": "year",
}


def interval_noun(interval: str) -> str:
    """``monthly`` -> ``month`` (for "per month")."""
    return _NOUNS.get(interval.lower(), interval.lower())


def days_until(moment: datetime, now: datetime) -> int:
    """Calendar days (UTC) from ``now`` to ``moment``: 0 today, 1 tomorrow."""
    return (moment.astimezone(UTC).date() - now.astimezone(UTC).date()).days


def trial_ending(
    subscription: SubscriptionView, *, now: datetime, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    ends = subscription.trial_ends_at or now
    days_left = max(0, days_until(ends, now))
    when = "today" if days_left == 0 else "tomorrow" if days_left == 1 else f"in {days_left} days"
    return compose(
        "trial_ending",
        subject=f"Your {subscription.plan_name} trial with {subscription.tenant.name} ends {when}",
        sender=sender,
        recipient=recipient,
        context={
            "subscription": subscription,
            "tenant": subscription.tenant,
            "days_left": days_left,
            "when": when,
            "per": interval_noun(subscription.billing_interval),
        },
    )


def _subscription_message(
    template: str,
    subject: str,
    subscription: SubscriptionView,
    sender: Mailbox,
    recipient: Mailbox | str,
) -> EmailMessage:
    return compose(
        template,
        subject=subject,
        sender=sender,
        recipient=recipient,
        context={
            "subscription": subscription,
            "tenant": subscription.tenant,
            "per": interval_noun(subscription.billing_interval),
        },
    )


def subscription_created(
    subscription: SubscriptionView, *, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    subject = f"Your {subscription.plan_name} subscription with {subscription.tenant.name}"
    return _subscription_message("subscription_created", subject, subscription, sender, recipient)


def subscription_paused(
    subscription: SubscriptionView, *, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    subject = (
        f"Your {subscription.plan_name} subscription with {subscription.tenant.name} is paused"
    )
    return _subscription_message("subscription_paused", subject, subscription, sender, recipient)


def subscription_resumed(
    subscription: SubscriptionView, *, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    subject = (
        f"Your {subscription.plan_name} subscription with {subscription.tenant.name} "
        "is active again"
    )
    return _subscription_message("subscription_resumed", subject, subscription, sender, recipient)


def subscription_plan_changed(
    subscription: SubscriptionView, *, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    subject = f"Your plan with {subscription.tenant.name} has changed"
    return _subscription_message(
        "subscription_plan_changed", subject, subscription, sender, recipient
    )


def trial_started(
    subscription: SubscriptionView, *, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    subject = f"Your {subscription.plan_name} trial with {subscription.tenant.name} has started"
    return _subscription_message("trial_started", subject, subscription, sender, recipient)


def trial_converted(
    subscription: SubscriptionView, *, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    subject = (
        f"Your {subscription.plan_name} subscription with {subscription.tenant.name} is now active"
    )
    return _subscription_message("trial_converted", subject, subscription, sender, recipient)


def refund_issued(refund: RefundView, *, sender: Mailbox, recipient: Mailbox | str) -> EmailMessage:
    amount = format_display(refund.amount_minor, refund.currency)
    return compose(
        "refund_issued",
        subject=(
            f"Refund of {amount} for invoice {refund.invoice_number} from {refund.tenant.name}"
        ),
        sender=sender,
        recipient=recipient,
        context={"refund": refund, "tenant": refund.tenant},
    )


def payment_reminder(
    invoice: InvoiceView,
    *,
    stage: str,
    now: datetime,
    sender: Mailbox,
    recipient: Mailbox | str,
    pdf: bytes | None = None,
) -> EmailMessage:
    """One reminder of the series (``invoices.reminders``): before the due date, on it,
    or overdue; with the invoice PDF attached when given."""
    days_left = (invoice.due_on - now.astimezone(UTC).date()).days
    days = abs(days_left)
    when = "tomorrow" if days_left == 1 else f"in {days_left} days"
    tenant, number, due = invoice.tenant.name, invoice.number, format_day(invoice.due_on)
    subjects = {
        "upcoming": f"Payment reminder: invoice {number} from {tenant} is due {due}",
        "due_today": f"Payment due today: invoice {number} from {tenant}",
        "overdue_14": f"Final notice: invoice {number} from {tenant} is {days} days overdue",
    }
    subject = subjects.get(stage, f"Overdue: invoice {number} from {tenant} was due {due}")
    attachments: tuple[Attachment, ...] = ()
    if pdf is not None:
        attachments = (Attachment(f"invoice-{number}.pdf", pdf, "application/pdf"),)
    return compose(
        "payment_reminder",
        subject=subject,
        sender=sender,
        recipient=recipient,
        context={
            "invoice": invoice,
            "tenant": invoice.tenant,
            "stage": stage,
            "days": days,
            "when": when,
        },
        attachments=attachments,
    )


def subscription_canceled(
    subscription: SubscriptionView, *, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    return compose(
        "subscription_canceled",
        subject=(
            f"Your {subscription.plan_name} subscription with {subscription.tenant.name} "
            "has been canceled"
        ),
        sender=sender,
        recipient=recipient,
        context={"subscription": subscription, "tenant": subscription.tenant},
    )


def reset_link(base_url: str, token: str) -> str:
    """``base_url`` with ``token=<token>`` added to its query string."""
    parts = urlsplit(base_url)
    query = "&".join(q for q in (parts.query, urlencode({"token": token})) if q)
    return urlunsplit(parts._replace(query=query))


def password_reset(
    *,
    account_name: str,
    reset_url: str,
    token: str,
    expires_minutes: int,
    sender: Mailbox,
    recipient: Mailbox | str,
    product_name: str = "NovaBilling",
) -> EmailMessage:
    return compose(
        "password_reset",
        subject=f"Reset your {product_name} password",
        sender=sender,
        recipient=recipient,
        context={
            "account_name": account_name,
            "link": reset_link(reset_url, token),
            "expires_minutes": expires_minutes,
            "product_name": product_name,
        },
    )


def smtp_test(
    *, tenant_name: str, sent_at: datetime, sender: Mailbox, recipient: Mailbox | str
) -> EmailMessage:
    return compose(
        "smtp_test",
        subject=f"SMTP test from {tenant_name}",
        sender=sender,
        recipient=recipient,
        context={"tenant_name": tenant_name, "sent_at": sent_at},
    )
