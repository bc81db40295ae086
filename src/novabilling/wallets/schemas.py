"""Wire shapes of /api/wallets (contract wallets.md)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import StringConstraints

from novabilling.customers.models import Customer
from novabilling.customers.schemas import CustomerOut, customer_out
from novabilling.kit.money import WireAmount
from novabilling.kit.timestamps import InstantInput, to_wire
from novabilling.kit.wire import DecimalText, FreeForm, Timestamp, WireModel, WireOut
from novabilling.wallets.amounts import amount_e4, e4_wire
from novabilling.wallets.models import Wallet, WalletTransaction

Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=3)]
Name = Annotated[str, StringConstraints(max_length=255)]


class WalletCreate(WireModel):
    customer_id: Id
    currency: Code
    name: Name | None = None
    rate_amount: WireAmount | None = None
    granted_credits: WireAmount | None = None
    paid_credits: WireAmount | None = None
    # additive: purchased credits are invoiced (true) or granted free (false, the original)
    invoice_paid_credits: bool = True
    expiration_at: InstantInput | None = None
    created_at: InstantInput | None = None
    metadata: dict[str, Any] | None = None


class WalletPatch(WireModel):
    name: Name | None = None
    expiration_at: InstantInput | None = None
    metadata: dict[str, Any] | None = None


class TopUp(WireModel):
    wallet_id: Id
    paid_credits: WireAmount | None = None
    granted_credits: WireAmount | None = None
    voided_credits: WireAmount | None = None
    invoice_paid_credits: bool = True
    metadata: dict[str, Any] | None = None


def _time(value: Any) -> str | None:
    return to_wire(value) if value is not None else None


def wallet_out(wallet: Wallet, customer: Customer) -> dict[str, Any]:
    """Wallet object with the embedded ``customer`` (every wallet response)."""
    return {
        "id": wallet.id,
        "customerId": wallet.customer_id,
        "name": wallet.name,
        "currency": wallet.currency,
        "rateAmount": e4_wire(wallet.rate_amount_e4),
        "creditsBalance": e4_wire(wallet.credits_balance_e4),
        "balance": e4_wire(amount_e4(wallet.credits_balance_e4, wallet.rate_amount_e4)),
        "consumedCredits": e4_wire(wallet.consumed_credits_e4),
        "consumedAmount": e4_wire(wallet.consumed_amount_e4),
        "status": wallet.status,
        "expirationAt": _time(wallet.expiration_at),
        "terminatedAt": _time(wallet.terminated_at),
        "metadata": wallet.metadata_,
        "createdAt": to_wire(wallet.created_at),
        "updatedAt": to_wire(wallet.updated_at),
        "customer": customer_out(customer),
    }


def transaction_out(tx: WalletTransaction) -> dict[str, Any]:
    return {
        "id": tx.id,
        "walletId": tx.wallet_id,
        "transactionType": tx.transaction_type,
        "status": tx.status,
        "transactionStatus": tx.transaction_status,
        "creditAmount": e4_wire(tx.credit_amount_e4),
        "amount": e4_wire(tx.amount_e4),
        "invoiceId": tx.invoice_id,
        "settledAt": _time(tx.settled_at),
        "metadata": tx.metadata_,
        "createdAt": to_wire(tx.created_at),
    }


class WalletOut(WireOut):
    """A prepaid credit wallet with its customer (amounts as decimal strings)."""

    id: str
    customer_id: str
    name: str | None
    currency: str
    rate_amount: DecimalText
    credits_balance: DecimalText
    balance: DecimalText
    consumed_credits: DecimalText
    consumed_amount: DecimalText
    status: str
    expiration_at: Timestamp | None
    terminated_at: Timestamp | None
    metadata: FreeForm | None
    created_at: Timestamp
    updated_at: Timestamp
    customer: CustomerOut


class TransactionOut(WireOut):
    id: str
    wallet_id: str
    transaction_type: str
    status: str
    transaction_status: str
    credit_amount: DecimalText
    amount: DecimalText
    invoice_id: str | None
    settled_at: Timestamp | None
    metadata: FreeForm | None
    created_at: Timestamp


class TopUpOut(WireOut):
    """The transactions a top-up created and the wallet after it."""

    transactions: list[TransactionOut]
    wallet: WalletOut
