"""Plain, frozen read models that email templates and the invoice PDF are drawn from.

Services build these from ORM rows; nothing here touches the database. Money is always an
``int`` in minor units next to its ISO currency code (DESIGN "Rules" §1); formatting for
people happens in templates and the PDF through ``kit.money.format_display``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_day(value: date) -> str:
    """``date``/``datetime`` -> ``"5 Mar 2026"``, independent of the process locale."""
    return f"{value.day} {_MONTHS[value.month - 1]} {value.year}"


_METHOD_WORDS = {
    "stripe": "Card",
    "card": "Card",
    "mpesa": "M-Pesa",
    "m-pesa": "M-Pesa",
    "paystack": "Paystack",
    "flutterwave": "Flutterwave",
    "dpo": "DPO Pay",
    "dpo-group": "DPO Pay",
    "payu": "PayU",
    "pesapal": "Pesapal",
    "manual": "Manual payment",
    "cash": "Cash",
    "bank_transfer": "Bank transfer",
    "banktransfer": "Bank transfer",
    "transfer": "Bank transfer",
    "wire": "Wire transfer",
    "wire_transfer": "Wire transfer",
    "check": "Cheque",
    "cheque": "Cheque",
    "mobile_money": "Mobile money",
    "mobilemoney": "Mobile money",
    "ussd": "USSD",
    "eft": "EFT",
}


def method_words(code: str) -> str:
    """How a payment was made, for people: ``stripe`` -> "Card", ``mpesa`` -> "M-Pesa",
    ``bank_transfer`` -> "Bank transfer"; any other (free-text, contract payments.md)
    method reads as sent, ``_``/``-`` as spaces, first letter capital."""
    key = code.strip().lower()
    known = _METHOD_WORDS.get(key) or _METHOD_WORDS.get(key.replace("-", "_").replace(" ", "_"))
    if known:
        return known
    text = " ".join(key.replace("_", " ").replace("-", " ").split())
    return text[:1].upper() + text[1:] if text else "Manual payment"


@dataclass(frozen=True, slots=True)
class Mailbox:
    """An email address with an optional display name (``"Acme" <billing@acme.test>``)."""

    address: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class TenantView:
    """The business sending the message; address/country/taxId come from tenant settings."""

    name: str
    address: str | None = None
    country: str | None = None
    tax_id: str | None = None

    @classmethod
    def from_settings(cls, name: str, settings: Mapping[str, Any] | None) -> TenantView:
        """Read the optional ``address``, ``country`` and ``taxId`` tenant settings keys."""
        settings = settings or {}

        def text(key: str) -> str | None:
            value = settings.get(key)
            return str(value).strip() or None if value is not None else None

        return cls(
            name=name, address=text("address"), country=text("country"), tax_id=text("taxId")
        )


@dataclass(frozen=True, slots=True)
class InvoiceLineView:
    description: str
    quantity: Decimal  # usage lines may bill fractional units
    unit_amount_minor: int
    amount_minor: int


@dataclass(frozen=True, slots=True)
class InvoiceView:
    tenant: TenantView
    customer_name: str
    customer_email: str
    number: str
    status: str
    currency: str
    issued_on: date
    due_on: date
    lines: tuple[InvoiceLineView, ...]
    subtotal_minor: int
    tax_minor: int
    total_minor: int
    amount_paid_minor: int = 0
    amount_due_minor: int = 0
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentView:
    """A payment attempt on an invoice: a receipt when it succeeded, a notice when it failed."""

    tenant: TenantView
    customer_name: str
    customer_email: str
    invoice_number: str
    currency: str
    amount_minor: int
    occurred_at: datetime
    method: str  # a code (``stripe``, ``cash``); templates show ``method_words``
    reference: str | None = None
    reference_label: str = "Reference"  # "M-Pesa receipt" for M-Pesa
    failure_reason: str | None = None
    next_retry_at: datetime | None = None
    amount_due_minor: int = 0


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    tenant: TenantView
    customer_name: str
    customer_email: str
    plan_name: str
    status: str
    currency: str
    amount_minor: int
    billing_interval: str
    trial_ends_at: datetime | None = None
    current_period_end: datetime | None = None
    canceled_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class RefundView:
    """A refund of (part of) a payment: ``amount_minor`` this refund,
    ``refunded_total_minor`` all refunds of the payment so far, ``paid_minor`` the payment."""

    tenant: TenantView
    customer_name: str
    customer_email: str
    invoice_number: str
    currency: str
    amount_minor: int
    refunded_total_minor: int
    paid_minor: int
    method: str
    refunded_at: datetime
    reason: str | None = None
