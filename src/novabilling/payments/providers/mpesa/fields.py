"""Daraja field formats (mpesa.md §3): whole-shilling amounts, MSISDNs, the 12-char
``AccountReference``, the STK password and its EAT timestamp, ResultCode -> outcome."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta, timezone

from novabilling.kit.clock import SystemClock
from novabilling.payments.providers.base import Outcome, ProviderError

EAT = timezone(timedelta(hours=3), "EAT")  # Africa/Nairobi, no DST
RESULT_MESSAGES = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    1019: "Transaction has expired.",
    1032: "Request cancelled by user.",
    1037: "DS timeout user cannot be reached.",
    2001: "Wrong PIN (the initiator information is invalid).",
}
_MSISDN = re.compile(r"254[17]\d{8}")


def stk_password(shortcode: str, passkey: str, timestamp: str) -> str:
    """``base64(shortcode + passkey + timestamp)`` (mpesa.md §3.1)."""
    return base64.b64encode(f"{shortcode}{passkey}{timestamp}".encode()).decode()


def stk_auth(shortcode: str, passkey: str) -> dict[str, str]:
    """The fields that open every STK push and query body, timestamped now (EAT)."""
    timestamp = SystemClock().now().astimezone(EAT).strftime("%Y%m%d%H%M%S")
    return {
        "BusinessShortCode": shortcode,
        "Password": stk_password(shortcode, passkey, timestamp),
        "Timestamp": timestamp,
    }


def account_reference(reference: str) -> str:
    """Our reference squeezed into Daraja's 12-char ``AccountReference``: itself when it is
    <= 12 alphanumerics, else its last 6 alphanumerics + 6 hex of its SHA-256."""
    alnum = re.sub(r"[^A-Za-z0-9]", "", reference).upper()
    if 0 < len(alnum) <= 12:
        return alnum
    return alnum[-6:] + hashlib.sha256(reference.encode()).hexdigest()[:6].upper()


def whole_kes(amount_minor: int, currency: str) -> int:
    if currency.upper() != "KES":
        raise ProviderError("M-Pesa charges KES only", code="currency")
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ProviderError("amount_minor must be a positive integer", code="invalid_amount")
    if amount_minor % 100:
        raise ProviderError("M-Pesa STK takes whole shillings only", code="invalid_amount")
    return amount_minor // 100


def msisdn(phone: str | None) -> str:
    """``+254 712 ...`` / ``0712...`` / ``254712...`` -> ``254712...``."""
    digits = re.sub(r"\D", "", phone or "")
    if digits.startswith("0") and len(digits) == 10:
        digits = "254" + digits[1:]
    if not _MSISDN.fullmatch(digits):
        raise ProviderError(f"not a Kenyan M-Pesa number: {phone!r}", code="invalid_phone")
    return digits


def result_outcome(code: int | str | None) -> Outcome:
    """A final STK ResultCode -> outcome: 0 paid, any other code ended unpaid."""
    if code is None:
        return Outcome.UNKNOWN
    try:
        return Outcome.SUCCEEDED if int(code) == 0 else Outcome.FAILED
    except ValueError:
        return Outcome.FAILED
