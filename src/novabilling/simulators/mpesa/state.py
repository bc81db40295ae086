"""What the Daraja simulator stores (access tokens, STK pushes by CheckoutRequestID,
reversed receipts) and what happens to it: the customer answers a prompt (the phone's
scripted outcome below, or ``/_sim/pay``), which queues the STK callback; a reversal
settles against a paid push."""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass

from novabilling.simulators.base import SimulatorBase, WebhookSender
from novabilling.simulators.mpesa import callbacks

SHORTCODE = "174379"
PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
PHONE_SUCCESS = "254708374149"  # sandbox MSISDN; any unlisted valid number succeeds too
PHONE_INSUFFICIENT = "254700000001"  # ResultCode 1
PHONE_CANCELLED = "254700001032"  # 1032
PHONE_TIMEOUT_USER = "254700001037"  # 1037 (phone unreachable)
PHONE_EXPIRED = "254700001019"  # 1019
PHONE_WRONG_PIN = "254700002001"  # 2001
PHONE_NO_CALLBACK = "254700000000"  # paid (0) but the callback is lost: only the query knows
PHONE_TIMEOUT = "254700000504"  # the push is recorded, then the API stalls and answers 500
PHONE_DECLINE = PHONE_INSUFFICIENT
PHONE_OUTCOMES = {
    PHONE_INSUFFICIENT: 1,
    PHONE_CANCELLED: 1032,
    PHONE_TIMEOUT_USER: 1037,
    PHONE_EXPIRED: 1019,
    PHONE_WRONG_PIN: 2001,
}


def account_reference(reference: str) -> str:
    """Same deterministic 12-char mapping the adapter documents (for ``charges_for``)."""
    alnum = re.sub(r"[^A-Za-z0-9]", "", reference).upper()
    if 0 < len(alnum) <= 12:
        return alnum
    return alnum[-6:] + hashlib.sha256(reference.encode()).hexdigest()[:6].upper()


@dataclass
class Push:
    merchant_request_id: str
    checkout_request_id: str
    amount: int
    phone: str
    account_reference: str
    callback_url: str
    result_code: int | None = None  # None while the prompt is open
    receipt: str | None = None
    attempts: int = 1


class MpesaState(SimulatorBase):
    def __init__(self, *, sender: WebhookSender, duplicate_callbacks: bool) -> None:
        self.sender = sender
        self.duplicate_callbacks = duplicate_callbacks  # deliver every STK callback twice
        self.pushes: dict[str, Push] = {}
        self.reversed_receipts: set[str] = set()
        self.tokens: set[str] = set()
        self.injected: list[str] = []
        self._ids = itertools.count(1)

    # ---- test helpers -----------------------------------------------------------------

    def fail_next(self, count: int = 1, code: str = "500.003.02") -> None:
        """The next ``count`` API calls (not OAuth) answer HTTP 500 with ``code``."""
        self.injected.extend([code] * count)

    def _for_reference(self, reference: str) -> list[Push]:
        keys = {reference, account_reference(reference)}
        return [p for p in self.pushes.values() if p.account_reference in keys]

    def charges_for(self, reference: str) -> int:
        return len(self._for_reference(reference))

    def attempts_for(self, reference: str) -> int:
        return sum(p.attempts for p in self._for_reference(reference))

    def settle(self) -> None:
        """Every open prompt gets its phone's scripted answer."""
        for push in self.pushes.values():
            if push.result_code is None:
                self.answer(push, PHONE_OUTCOMES.get(push.phone, 0))

    def answer(self, push: Push, result_code: int) -> None:
        """The customer answers the prompt (0 = paid); queues the STK callback."""
        push.result_code = result_code
        if result_code == 0:
            push.receipt = f"TA{self.next_id():08d}"
        if push.phone == PHONE_NO_CALLBACK:
            return
        copies = 2 if self.duplicate_callbacks else 1
        for _ in range(copies):
            self.sender.queue(callbacks.stk_callback(push, result_code), url=push.callback_url)

    # ---- Daraja's side ------------------------------------------------------------------

    def next_id(self) -> int:
        return next(self._ids)

    def issue_token(self, secret_key: str, *, single: bool) -> str:
        """A new access token; ``single``: it invalidates the earlier ones."""
        token = hashlib.sha1(f"{secret_key}:{self.next_id()}".encode()).hexdigest()[:28]
        if single:
            self.tokens.clear()
        self.tokens.add(token)
        return token

    def open_push(self, phone: str) -> Push | None:
        """The push whose prompt is still open on ``phone`` (Daraja locks the subscriber)."""
        return next(
            (p for p in self.pushes.values() if p.phone == phone and p.result_code is None), None
        )

    def new_push(self, *, amount: int, phone: str, reference: str, callback_url: str) -> Push:
        n = self.next_id()
        push = Push(
            merchant_request_id=f"{n:04d}-4b64-97ff-b827b542881d{n:04d}",
            checkout_request_id=f"ws_CO_01012025120000{n:03d}{phone[3:]}",
            amount=amount,
            phone=phone,
            account_reference=reference,
            callback_url=callback_url,
        )
        self.pushes[push.checkout_request_id] = push
        return push

    def find_push(self, key: str) -> Push | None:
        """A push by CheckoutRequestID or by our reference."""
        return self.pushes.get(key) or next(
            (p for p in self.pushes.values() if p.account_reference == account_reference(key)),
            None,
        )

    def reverse(self, receipt: str, amount: str) -> int | str:
        """Reverse a paid push by receipt: 0, ``R000001`` already reversed, ``R000002``
        unknown receipt or more than was paid."""
        paid = [p for p in self.pushes.values() if p.receipt == receipt]
        if not paid or int(amount) > paid[0].amount:
            return "R000002"
        if receipt in self.reversed_receipts:
            return "R000001"
        self.reversed_receipts.add(receipt)
        return 0
