"""Email builders: headers, text and HTML bodies, attachments."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import pytest

from novabilling.notifications import messages
from novabilling.notifications.views import (
    InvoiceLineView,
    InvoiceView,
    Mailbox,
    PaymentView,
    SubscriptionView,
    TenantView,
    method_words,
)

SENDER = Mailbox(address="billing@acme.test", name="Acme Billing")
TENANT = TenantView(name="Acme", address="12 Marina Road, Lagos", country="NG", tax_id="TIN-1")
PDF = b"%PDF-1.3 fake invoice bytes"


def sample_invoice(currency: str = "USD") -> InvoiceView:
    return InvoiceView(
        tenant=TENANT,
        customer_name="Zoë <Okafor>",
        customer_email="zoe@example.com",
        number="INV-00001",
        status="PENDING",
        currency=currency,
        issued_on=date(2026, 3, 1),
        due_on=date(2026, 3, 31),
        lines=(
            InvoiceLineView("Pro plan", 1, 123_450, 123_450),
            InvoiceLineView("Seats & support", 2, 500, 1_000),
        ),
        subtotal_minor=124_450,
        tax_minor=0,
        total_minor=124_450,
        amount_paid_minor=0,
        amount_due_minor=124_450,
        notes="Thank you for your business.",
    )


def sample_payment(*, next_retry_at: datetime | None = None) -> PaymentView:
    return PaymentView(
        tenant=TENANT,
        customer_name="Zoë Okafor",
        customer_email="zoe@example.com",
        invoice_number="INV-00001",
        currency="UGX",
        amount_minor=25_000,
        occurred_at=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
        method="mpesa",
        reference="QK7H2XY",
        reference_label="M-Pesa receipt",
        failure_reason="Insufficient funds" if next_retry_at else None,
        next_retry_at=next_retry_at,
    )


def sample_subscription() -> SubscriptionView:
    return SubscriptionView(
        tenant=TENANT,
        customer_name="Zoë Okafor",
        customer_email="zoe@example.com",
        plan_name="Pro",
        status="TRIALING",
        currency="KES",
        amount_minor=150_000,
        billing_interval="monthly",
        trial_ends_at=datetime(2026, 3, 10, tzinfo=UTC),
        canceled_at=datetime(2026, 3, 5, tzinfo=UTC),
        ends_at=datetime(2026, 3, 31, tzinfo=UTC),
    )


def bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()  # type: ignore[attr-defined]


def all_kinds() -> dict[str, EmailMessage]:
    """One message of every kind, to ``zoe@example.com``."""
    to = Mailbox(address="zoe@example.com", name="Zoë Okafor")
    sub = sample_subscription()
    return {
        "invoice_issued": messages.invoice_issued(
            sample_invoice(), sender=SENDER, recipient=to, pdf=PDF
        ),
        "invoice_voided": messages.invoice_voided(sample_invoice(), sender=SENDER, recipient=to),
        "payment_received": messages.payment_received(
            sample_payment(), sender=SENDER, recipient=to, pdf=PDF
        ),
        "payment_failed": messages.payment_failed(
            sample_payment(next_retry_at=datetime(2026, 3, 5, tzinfo=UTC)),
            sender=SENDER,
            recipient=to,
        ),
        "trial_ending": messages.trial_ending(
            sub, now=datetime(2026, 3, 7, 9, tzinfo=UTC), sender=SENDER, recipient=to
        ),
        "subscription_canceled": messages.subscription_canceled(sub, sender=SENDER, recipient=to),
        "password_reset": messages.password_reset(
            account_name="Ada",
            reset_url="https://app.novabilling.test/reset?lang=en",
            token="tok/en+1",
            expires_minutes=60,
            sender=SENDER,
            recipient=to,
        ),
        "smtp_test": messages.smtp_test(
            tenant_name="Acme",
            sent_at=datetime(2026, 3, 1, 14, 5, tzinfo=UTC),
            sender=SENDER,
            recipient=to,
        ),
    }


# kind -> (subject, phrases in both bodies)
EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "invoice_issued": (
        "Invoice INV-00001 from Acme",
        ("INV-00001", "USD 1,244.50", "USD 1,234.50", "USD 10.00", "31 Mar 2026", "Pro plan"),
    ),
    "invoice_voided": ("Invoice INV-00001 from Acme has been voided", ("USD 1,244.50", "voided")),
    "payment_received": (
        "Receipt for invoice INV-00001 from Acme",
        ("UGX 25,000", "INV-00001", "2 Mar 2026", "M-Pesa", "M-Pesa receipt", "QK7H2XY"),
    ),
    "payment_failed": (
        "Payment failed for invoice INV-00001 from Acme",
        ("UGX 25,000", "Insufficient funds", "try again on", "5 Mar 2026"),
    ),
    "trial_ending": (
        "Your Pro trial with Acme ends in 3 days",
        ("in 3 days", "10 Mar 2026", "KES 1,500.00", "per month"),
    ),
    "subscription_canceled": (
        "Your Pro subscription with Acme has been canceled",
        ("5 Mar 2026", "until", "31 Mar 2026"),
    ),
    "password_reset": (
        "Reset your NovaBilling password",
        ("Hello Ada", "60 minutes"),
    ),
    "smtp_test": ("SMTP test from Acme", ("1 Mar 2026 at 14:05 UTC", "SMTP settings work")),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_every_kind_has_subject_headers_and_both_bodies(kind: str) -> None:
    message = all_kinds()[kind]
    subject, phrases = EXPECTED[kind]
    assert message["Subject"] == subject
    assert message["From"] == "Acme Billing <billing@acme.test>"
    assert message["To"] == "Zoë Okafor <zoe@example.com>"
    assert message["Message-ID"].endswith("@acme.test>")
    assert message["Date"]
    text, html = bodies(message)
    assert html.lstrip().startswith("<!DOCTYPE html>")
    for phrase in phrases:
        assert phrase in text, (kind, "text", phrase)
        assert phrase in html, (kind, "html", phrase)


def test_invoice_issued_attaches_the_pdf() -> None:
    message = all_kinds()["invoice_issued"]
    assert message.get_content_type() == "multipart/mixed"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "invoice-INV-00001.pdf"
    assert attachment.get_content() == PDF  # type: ignore[attr-defined]


def test_the_receipt_carries_the_paid_invoice_and_says_the_method_in_words() -> None:
    message = all_kinds()["payment_received"]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "invoice-INV-00001.pdf"
    assert attachment.get_content() == PDF  # type: ignore[attr-defined]
    text, html = bodies(message)
    assert "Method:  M-Pesa" in text and "mpesa" not in text
    assert "M-Pesa receipt: QK7H2XY" in text
    assert "attached as a PDF" in text and "attached as a PDF" in html
    bare = messages.payment_received(
        replace(sample_payment(), method="bank_transfer", reference=None, reference_label="x"),
        sender=SENDER,
        recipient="zoe@example.com",
    )
    text, _ = bodies(bare)
    assert "Method:  Bank transfer" in text and "attached" not in text
    assert list(bare.iter_attachments()) == []


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("stripe", "Card"),
        ("mpesa", "M-Pesa"),
        ("MPESA", "M-Pesa"),
        ("bank_transfer", "Bank transfer"),
        ("bank-transfer", "Bank transfer"),
        ("cash", "Cash"),
        ("check", "Cheque"),
        ("manual", "Manual payment"),
        ("paystack", "Paystack"),
        ("dpo", "DPO Pay"),
        ("mobile_money", "Mobile money"),
        ("crypto_wallet", "Crypto wallet"),
        ("  ", "Manual payment"),
    ],
)
def test_payment_methods_read_as_words(code: str, words: str) -> None:
    assert method_words(code) == words


def test_invoice_issued_without_pdf_is_plain_alternative() -> None:
    message = messages.invoice_issued(
        sample_invoice(), sender=SENDER, recipient="zoe@example.com", pdf=None
    )
    assert message.get_content_type() == "multipart/alternative"
    assert list(message.iter_attachments()) == []


def test_html_escapes_but_text_keeps_raw_characters() -> None:
    text, html = bodies(all_kinds()["invoice_issued"])
    assert "Zoë &lt;Okafor&gt;" in html and "<Okafor>" not in html
    assert "Seats &amp; support" in html
    assert "Hello Zoë <Okafor>," in text
    assert "Seats & support" in text


def test_ugx_invoice_has_no_decimals() -> None:
    invoice = sample_invoice("UGX")
    text, html = bodies(
        messages.invoice_issued(invoice, sender=SENDER, recipient="z@example.com", pdf=None)
    )
    assert "UGX 124,450" in text and "UGX 124,450" in html
    assert "UGX 124,450." not in text


def test_payment_failed_without_retry_says_no_more_attempts() -> None:
    text, html = bodies(
        messages.payment_failed(sample_payment(), sender=SENDER, recipient="z@example.com")
    )
    assert "No further attempts are scheduled" in text
    assert "try again" not in text and "try again" not in html


@pytest.mark.parametrize(
    ("days", "subject_end"), [(0, "ends today"), (1, "ends tomorrow"), (7, "ends in 7 days")]
)
def test_trial_ending_wording(days: int, subject_end: str) -> None:
    sub = sample_subscription()
    assert sub.trial_ends_at is not None
    now = sub.trial_ends_at - timedelta(days=days)
    message = messages.trial_ending(sub, now=now, sender=SENDER, recipient="z@example.com")
    assert message["Subject"].endswith(subject_end)


def test_trial_reminder_counts_calendar_days_and_says_per_month() -> None:
    """Seen: "ends tomorrow (4 Dec)" two days before, and "billed NGN 15,000.00 per
    monthly". Two calendar days ahead is "in 2 days", whatever the hour."""
    sub = replace(
        sample_subscription(),
        currency="NGN",
        amount_minor=1_500_000,
        trial_ends_at=datetime(2026, 12, 4, 10, 0, tzinfo=UTC),
    )
    message = messages.trial_ending(
        sub, now=datetime(2026, 12, 2, 12, 0, tzinfo=UTC), sender=SENDER, recipient="z@x.test"
    )
    text, html = bodies(message)
    assert message["Subject"].endswith("ends in 2 days")
    assert "ends in 2 days (4 Dec 2026)" in text
    assert "NGN 15,000.00 per month." in text and "per monthly" not in text + html
    evening = messages.trial_ending(
        sub, now=datetime(2026, 12, 3, 23, 0, tzinfo=UTC), sender=SENDER, recipient="z@x.test"
    )
    assert evening["Subject"].endswith("ends tomorrow")


def test_password_reset_link_carries_the_token_encoded() -> None:
    text, html = bodies(all_kinds()["password_reset"])
    link = "https://app.novabilling.test/reset?lang=en&token=tok%2Fen%2B1"
    assert link in text
    assert f'href="{link.replace("&", "&amp;")}"' in html
    assert messages.reset_link("https://x.test/reset", "abc") == "https://x.test/reset?token=abc"


def test_invalid_recipient_is_rejected() -> None:
    with pytest.raises(ValueError, match="invalid email address"):
        messages.smtp_test(
            tenant_name="Acme",
            sent_at=datetime(2026, 3, 1, tzinfo=UTC),
            sender=SENDER,
            recipient="not an address",
        )
