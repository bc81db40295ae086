"""Daraja's callbacks as Safaricom posts them (unsigned, to the URL named in each request):
the STK ``{"Body": {"stkCallback": ...}}`` and the reversal ``{"Result": ...}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from novabilling.simulators.mpesa.state import Push

RESULT_DESC = {
    0: "The service request is processed successfully.",
    1: "The balance is insufficient for the transaction.",
    1019: "Transaction has expired",
    1032: "Request cancelled by user",
    1037: "DS timeout user cannot be reached",
    2001: "The initiator information is invalid.",
}
REVERSAL_DESC: dict[int | str, str] = {
    0: "The service request is processed successfully.",
    "R000001": "The transaction has already been reversed.",
    "R000002": "The OriginalTransactionID is invalid.",
}


def result_desc(code: int) -> str:
    return RESULT_DESC.get(code, "Request failed")


def stk_callback(push: Push, result_code: int) -> dict[str, Any]:
    """The answered prompt; a paid one carries ``CallbackMetadata`` with the receipt."""
    callback: dict[str, Any] = {
        "MerchantRequestID": push.merchant_request_id,
        "CheckoutRequestID": push.checkout_request_id,
        "ResultCode": result_code,
        "ResultDesc": result_desc(result_code),
    }
    if result_code == 0:
        items = [
            {"Name": "Amount", "Value": push.amount},
            {"Name": "MpesaReceiptNumber", "Value": push.receipt},
            {"Name": "Balance"},
            {"Name": "TransactionDate", "Value": 20250101120031},
            {"Name": "PhoneNumber", "Value": int(push.phone)},
        ]
        callback["CallbackMetadata"] = {"Item": items}
    return {"Body": {"stkCallback": callback}}


def reversal_result(
    code: int | str,
    *,
    n: int,
    originator: str,
    conversation: str,
    amount: str,
    receipt: str,
) -> dict[str, Any]:
    """``code`` 0 (reversed: ``amount``, whole shillings, is echoed), ``R000001`` (already
    reversed), ``R000002`` (unknown receipt or more than was paid)."""
    result: dict[str, Any] = {
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": REVERSAL_DESC[code],
        "OriginatorConversationID": originator,
        "ConversationID": conversation,
        "TransactionID": f"TR{n:08d}",
    }
    if code == 0:
        result["ResultParameters"] = {
            "ResultParameter": [
                {"Key": "Amount", "Value": int(amount)},
                {"Key": "OriginalTransactionID", "Value": receipt},
            ]
        }
    return {"Result": result}
