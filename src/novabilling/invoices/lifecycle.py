"""The invoice state machine: the only writer of ``Invoice.status``.

``issue`` inserts drafts made by ``invoices.builder`` (one or many at once); ``finalize``,
``settle``, ``fail`` and ``void`` move an existing invoice, each allowed only from the
statuses in ``RULES``. Side effects hang off the transitions and are queued in the same
unit of work (the job buffer stages them into the tenant database's outbox at the
commit; see ``kit.outbox``), so they happen exactly when the transition commits:

- issue -> DRAFT / PENDING / PAID: a subscription invoice is announced as
  ``invoice.drafted`` (DRAFT) or ``invoice.created`` (otherwise), once per invoice; a
  PENDING one is e-mailed with its PDF, sent as ``invoice.finalized`` and charged
  automatically; a manual one gets its PDF (and no ``invoice.created``);
- finalize -> PENDING: e-mail with PDF, ``invoice.finalized``, automatic charge;
- settle -> PAID: a PAST_DUE subscription becomes ACTIVE, receipt e-mail, ``invoice.paid``;
- fail -> FAILED: (dunning decides the retry and the subscription's fate);
- void -> CANCELED: ``invoice.voided``; the e-mail only if the invoice was ever sent.

The API's finalize and the grace-period finalize of the billing tick are the same call.
"Automatic charge" means: the invoice belongs to a subscription with a saved payment
method and is above zero; the ``payments.charge`` job then picks the provider.
Functions flush, never commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

import structlog
from sqlalchemy import Table, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from novabilling.errors import BusinessRule, Conflict
from novabilling.invoices import numbering
from novabilling.invoices.builder import Draft
from novabilling.invoices.models import (
    CANCELED,
    DRAFT,
    FAILED,
    PAID,
    PENDING,
    Invoice,
    InvoiceLine,
)
from novabilling.kit.clock import Clock
from novabilling.kit.ids import new_id
from novabilling.kit.jobs import QUEUE_BILLING, QUEUE_PAYMENTS, enqueue_after_commit
from novabilling.kit.money import to_number
from novabilling.kit.timestamps import to_wire
from novabilling.notifications import jobs as emails
from novabilling.subscriptions import lifecycle as subscription_lifecycle
from novabilling.subscriptions.models import PendingInvoiceItem, Subscription
from novabilling.webhooks import outbound

__all__ = [
    "CHARGE_JOB",
    "ISSUED_JOB",
    "RENDER_PDF_JOB",
    "RULES",
    "Issued",
    "Transition",
    "fail",
    "finalize",
    "created_event",
    "emit_created",
    "invoice_event",
    "issue",
    "queue_charge",
    "settle",
    "void",
]

log = structlog.get_logger(__name__)

CHARGE_JOB = "payments.charge"  # {tenant_id, invoice_id, attempt}: handled by billing
ISSUED_JOB = "invoices.issued"  # {tenant_id, invoices: [[id, charge], ...]}: fan-out
RENDER_PDF_JOB = "invoice.render_pdf"  # {tenant_id, invoice_id}
FAN_OUT_FROM = 5  # issuing this many at once queues one fan-out job instead of N jobs

_INVOICES = cast(Table, Invoice.__table__)
_LINES = cast(Table, InvoiceLine.__table__)
_PENDING = cast(Table, PendingInvoiceItem.__table__)


class Transition(StrEnum):
    FINALIZE = "finalize"
    SETTLE = "settle"
    FAIL = "fail"
    VOID = "void"


# transition -> (statuses it may start from, status it leads to)
RULES: Mapping[Transition, tuple[frozenset[str], str]] = {
    Transition.FINALIZE: (frozenset({DRAFT}), PENDING),
    Transition.SETTLE: (frozenset({DRAFT, PENDING, FAILED}), PAID),
    Transition.FAIL: (frozenset({PENDING, FAILED}), FAILED),
    Transition.VOID: (frozenset({DRAFT, PENDING, FAILED, CANCELED}), CANCELED),
}

_REFUSALS = {
    Transition.FINALIZE: "Only DRAFT invoices can be finalized (status is {status})",
    Transition.SETTLE: "Invoice cannot be marked paid (status is {status})",
    Transition.FAIL: "Invoice cannot fail collection (status is {status})",
    Transition.VOID: "Cannot void a paid invoice; refund it instead",
}


def _refusal(transition: Transition, status: str) -> BusinessRule:
    return BusinessRule(_REFUSALS[transition].format(status=status))


async def _move(
    session: AsyncSession,
    invoice: Invoice,
    transition: Transition,
    **values: Any,
) -> None:
    """Compare-and-set the status in the database: only one of two racing transitions
    matches (SQLite has no row locks); ``BusinessRule`` for the loser or a wrong source."""
    sources, target = RULES[transition]
    if invoice.status not in sources:
        raise _refusal(transition, invoice.status)
    result = await session.execute(
        update(Invoice)
        .where(Invoice.id == invoice.id, Invoice.status.in_(sources))
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        await session.refresh(invoice)
        raise _refusal(transition, invoice.status)
    await session.refresh(invoice)


def event_data(
    invoice_id: str,
    number: str,
    customer_id: str,
    amount: tuple[int, str] | None,
) -> dict[str, Any]:
    """``data`` of the outbound ``invoice.*`` webhooks (contract webhooks.md); ``amount``
    is (minor units, currency) or None for events without it."""
    data: dict[str, Any] = {
        "invoiceId": invoice_id,
        "invoiceNumber": number,
        "customerId": customer_id,
    }
    if amount is not None:
        data["amount"] = to_number(*amount)
        data["currency"] = amount[1]
    return data


def invoice_event(invoice: Invoice, *, with_amount: bool = True) -> dict[str, Any]:
    amount = (invoice.total_minor, invoice.currency) if with_amount else None
    return event_data(invoice.id, invoice.invoice_number, invoice.customer_id, amount)


def created_event(
    invoice_id: str,
    number: str,
    customer_id: str,
    subscription_id: str | None,
    amount: tuple[int, str],
    due_date: datetime,
    status: str,
) -> tuple[str, dict[str, Any]]:
    """``invoice.drafted`` (DRAFT) or ``invoice.created`` and its ``data`` (contract
    webhooks.md and invoice-composition.md step 12): the final amount as a number,
    ``dueDate`` ISO, the status the invoice was issued with."""
    data = event_data(invoice_id, number, customer_id, amount)
    data["subscriptionId"] = subscription_id
    data["dueDate"] = to_wire(due_date)
    data["status"] = status
    return ("invoice.drafted" if status == DRAFT else "invoice.created"), data


def emit_created(tenant_id: str, invoice: Invoice, *, clock: Clock) -> None:
    """The ``invoice.created`` / ``invoice.drafted`` webhook of a subscription invoice as
    issued (its id is the dedup key: once per invoice)."""
    name, data = created_event(
        invoice.id,
        invoice.invoice_number,
        invoice.customer_id,
        invoice.subscription_id,
        (invoice.total_minor, invoice.currency),
        invoice.due_date,
        invoice.status,
    )
    outbound.emit(tenant_id, name, data, clock=clock, key=invoice.id)


def queue_charge(tenant_id: str, invoice_id: str, *, attempt: int, again: str = "") -> None:
    """``payments.charge``: collect with the saved method. ``again`` (e.g. an hour stamp)
    makes a fresh job id to re-queue a job that was lost."""
    job_id = f"{tenant_id}:charge:{invoice_id}:{attempt}" + (f":{again}" if again else "")
    enqueue_after_commit(
        QUEUE_PAYMENTS,
        CHARGE_JOB,
        {"tenant_id": tenant_id, "invoice_id": invoice_id, "attempt": attempt},
        job_id=job_id,
        attempts=3,
    )


def queue_render_pdf(tenant_id: str, invoice_id: str) -> None:
    enqueue_after_commit(
        QUEUE_BILLING,
        RENDER_PDF_JOB,
        {"tenant_id": tenant_id, "invoice_id": invoice_id},
        job_id=f"{tenant_id}:pdf:{invoice_id}",
        attempts=3,
    )


def announce(tenant_id: str, invoice: Invoice, *, clock: Clock, charge: bool) -> None:
    """An invoice that just became PENDING: e-mail, ``invoice.finalized``, charge."""
    emails.queue_invoice_email(tenant_id, invoice.id)
    outbound.emit(
        tenant_id, "invoice.finalized", invoice_event(invoice), clock=clock, key=invoice.id
    )
    if charge and invoice.total_minor > 0:
        queue_charge(tenant_id, invoice.id, attempt=invoice.collection_attempts)


async def _chargeable(session: AsyncSession, invoice: Invoice) -> bool:
    if invoice.subscription_id is None or invoice.total_minor <= 0:
        return False
    method = await session.scalar(
        select(Subscription.payment_method_id).where(Subscription.id == invoice.subscription_id)
    )
    return method is not None


# --- issue --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issued:
    id: str
    number: str
    status: str
    total_minor: int
    charge: bool  # the automatic charge is queued (PENDING, above zero, saved method)


def _row(draft: Draft, invoice_id: str, number: str) -> dict[str, Any]:
    inputs = draft.inputs
    now = inputs.now
    paid_at = inputs.paid_at or (now if draft.status == PAID else None)
    return {
        "id": invoice_id,
        "customer_id": inputs.customer_id,
        "subscription_id": inputs.subscription_id,
        "invoice_number": number,
        "status": draft.status,
        "currency": inputs.currency,
        "subtotal_minor": draft.subtotal_minor,
        "tax_minor": draft.tax_minor,
        "total_minor": draft.total_minor,
        "due_date": draft.due_date,
        "paid_at": paid_at,
        "finalized_at": None if draft.status == DRAFT else now,
        "voided_at": now if draft.status == CANCELED else None,
        # interim invoices name their period in metadata only: not under the period key
        "period_start": inputs.period[0] if inputs.period and not inputs.interim else None,
        "period_end": inputs.period[1] if inputs.period and not inputs.interim else None,
        "pdf_url": None,
        "collection_attempts": 0,
        "next_retry_at": None,
        "grace_ends_at": draft.grace_ends_at,
        "metadata": draft.metadata,
        "created_at": inputs.created_at or now,
        "updated_at": now,
    }


def _line_rows(draft: Draft, invoice_id: str) -> list[dict[str, Any]]:
    return [
        {
            "id": new_id(),
            "invoice_id": invoice_id,
            "position": position,
            "type": line.type or "manual",
            "description": line.description,
            "quantity": line.quantity,
            "unit_amount_minor": line.unit_amount_minor,
            "amount_minor": line.amount_minor,
            "period_start": line.period_start,
            "period_end": line.period_end,
            "charge_id": line.charge_id,
            "charge_bucket": line.bucket,
        }
        for position, line in enumerate(draft.lines)
    ]


def _carry_row(draft: Draft) -> dict[str, Any]:
    inputs = draft.inputs
    start, end = inputs.period or (inputs.now, inputs.now)
    return {
        "id": new_id(),
        "subscription_id": inputs.subscription_id,
        "customer_id": inputs.customer_id,
        "currency": inputs.currency,
        "kind": "credit_carried",
        "description": "Credit carried forward",
        "amount_minor": draft.carry_minor,
        "period_start": start,
        "period_end": end,
        "invoice_id": None,
        "created_at": inputs.now,
    }


async def _numbers(session: AsyncSession, drafts: Sequence[Draft]) -> list[str]:
    """A number per draft: the supplied one (unique, 409), else the next of the tenant's
    sequence (one counter update for the whole batch, taken last: the row stays locked
    only until the commit)."""
    wanted = sum(1 for d in drafts if d.inputs.invoice_number is None)
    first = await numbering.reserve(session, wanted) if wanted else 0
    out: list[str] = []
    for draft in drafts:
        supplied = draft.inputs.invoice_number
        if supplied is None:
            out.append(numbering.format_number(first))
            first += 1
            continue
        taken = await session.scalar(select(Invoice.id).where(Invoice.invoice_number == supplied))
        if taken is not None:
            raise Conflict(f"Invoice number {supplied} already exists")
        await numbering.note_supplied(session, supplied)
        out.append(supplied)
    return out


async def issue(
    session: AsyncSession,
    drafts: Sequence[Draft],
    *,
    tenant_id: str,
    clock: Clock,
    charge: Mapping[int, bool] | None = None,
) -> list[Issued]:
    """Insert ``drafts`` (numbered, with their lines; pending lines marked billed; carried
    credit recorded) and queue each one's side effects. ``charge[i]``: draft ``i`` belongs
    to a subscription with a saved payment method. A draft whose period is already
    invoiced raises ``IntegrityError`` (the unique period key): the caller rolls back.
    Many drafts at once get one fan-out job instead of jobs per invoice."""
    if not drafts:
        return []
    ids = [new_id() for _ in drafts]
    numbers = await _numbers(session, drafts)
    rows = [_row(d, i, n) for d, i, n in zip(drafts, ids, numbers, strict=True)]
    lines = [row for d, i in zip(drafts, ids, strict=True) for row in _line_rows(d, i)]
    try:
        await session.execute(_INVOICES.insert(), rows)
    except IntegrityError as exc:
        if any(d.inputs.invoice_number for d in drafts) and len(drafts) == 1:
            raise Conflict(f"Invoice number {numbers[0]} already exists") from exc
        raise
    if lines:
        await session.execute(_LINES.insert(), lines)
    for draft, invoice_id in zip(drafts, ids, strict=True):
        if draft.consumed:
            await session.execute(
                update(PendingInvoiceItem)
                .where(PendingInvoiceItem.id.in_(draft.consumed))
                .values(invoice_id=invoice_id)
                .execution_options(synchronize_session=False)
            )
    carries = [_carry_row(d) for d in drafts if d.carry_minor]
    if carries:
        await session.execute(_PENDING.insert(), carries)
    issued = [
        Issued(
            id=invoice_id,
            number=number,
            status=draft.status,
            total_minor=draft.total_minor,
            charge=bool((charge or {}).get(n)) and draft.status == PENDING,
        )
        for n, (draft, invoice_id, number) in enumerate(zip(drafts, ids, numbers, strict=True))
    ]
    _after_issue(drafts, issued, tenant_id=tenant_id, clock=clock)
    log.info("invoice.issued", count=len(issued), first=issued[0].number)
    return issued


def _after_issue(
    drafts: Sequence[Draft],
    issued: Sequence[Issued],
    *,
    tenant_id: str,
    clock: Clock,
) -> None:
    pending: list[Issued] = []
    announced: list[Issued] = []  # subscription invoices: invoice.created / drafted
    for draft, invoice in zip(drafts, issued, strict=True):
        if draft.inputs.plan is None:
            queue_render_pdf(tenant_id, invoice.id)  # manual: the PDF at once
            continue
        announced.append(invoice)
        if invoice.status == PENDING:
            pending.append(invoice)
    if len(announced) >= FAN_OUT_FROM:
        enqueue_after_commit(
            QUEUE_BILLING,
            ISSUED_JOB,
            {
                "tenant_id": tenant_id,
                "invoices": [[i.id, i.charge] for i in pending],
                "created": [i.id for i in announced],
            },
            job_id=f"{tenant_id}:issued:{announced[0].id}",
            attempts=5,
        )
        return
    by_id = {i.id: d for d, i in zip(drafts, issued, strict=True)}
    for invoice in announced:
        inputs = by_id[invoice.id].inputs
        name, data = created_event(
            invoice.id,
            invoice.number,
            inputs.customer_id,
            inputs.subscription_id,
            (invoice.total_minor, inputs.currency),
            by_id[invoice.id].due_date,
            invoice.status,
        )
        outbound.emit(tenant_id, name, data, clock=clock, key=invoice.id)
    for invoice in pending:
        inputs = by_id[invoice.id].inputs
        data = event_data(
            invoice.id, invoice.number, inputs.customer_id, (invoice.total_minor, inputs.currency)
        )
        emails.queue_invoice_email(tenant_id, invoice.id)
        outbound.emit(tenant_id, "invoice.finalized", data, clock=clock, key=invoice.id)
        if invoice.charge and invoice.total_minor > 0:
            queue_charge(tenant_id, invoice.id, attempt=0)


# --- transitions of an existing invoice ---------------------------------------------------


async def finalize(
    session: AsyncSession,
    invoice: Invoice,
    *,
    tenant_id: str,
    clock: Clock,
) -> Invoice:
    """DRAFT -> PENDING (the API's finalize and the end of a grace period): e-mail,
    ``invoice.finalized`` and, for a subscription with a saved method, the charge."""
    now = clock.now()
    await _move(
        session,
        invoice,
        Transition.FINALIZE,
        finalized_at=now,
        updated_at=now,
        grace_ends_at=None,
    )
    announce(tenant_id, invoice, clock=clock, charge=await _chargeable(session, invoice))
    log.info("invoice.finalized", invoice_id=invoice.id, number=invoice.invoice_number)
    return invoice


async def settle(
    session: AsyncSession,
    invoice: Invoice,
    *,
    tenant_id: str,
    clock: Clock,
    method: str,
    reference: str | None = None,
    paid_at: datetime | None = None,
    payment_id: str | None = None,
) -> Invoice:
    """-> PAID (a confirmed payment or a manual one): a PAST_DUE subscription becomes
    ACTIVE again, the receipt is e-mailed (naming ``payment_id``'s reference, e.g. the
    M-Pesa receipt number, when given), ``invoice.paid`` is sent."""
    now = clock.now()
    await _move(
        session,
        invoice,
        Transition.SETTLE,
        paid_at=paid_at or now,
        next_retry_at=None,
        updated_at=now,
    )
    if invoice.subscription_id is not None:
        sub = await session.scalar(
            select(Subscription).where(Subscription.id == invoice.subscription_id).with_for_update()
        )
        if sub is not None and sub.status == "PAST_DUE":
            await subscription_lifecycle.reactivate(session, sub, now=now)
    emails.queue(
        tenant_id,
        emails.PAYMENT_RECEIVED,
        {
            "invoice_id": invoice.id,
            "method": method,
            "reference": reference,
            "payment_id": payment_id,
        },
        key=invoice.id,
    )
    outbound.emit(tenant_id, "invoice.paid", invoice_event(invoice), clock=clock, key=invoice.id)
    log.info("invoice.paid", invoice_id=invoice.id, method=method)
    return invoice


async def fail(
    session: AsyncSession, invoice: Invoice, *, clock: Clock, retry_at: datetime | None
) -> Invoice:
    """Automatic collection failed: -> FAILED, one more attempt counted, retried at
    ``retry_at`` (None: no retry left). The caller (dunning) decides the rest."""
    now = clock.now()
    await _move(
        session,
        invoice,
        Transition.FAIL,
        collection_attempts=invoice.collection_attempts + 1,
        next_retry_at=retry_at,
        updated_at=now,
    )
    return invoice


async def void(session: AsyncSession, invoice: Invoice, *, tenant_id: str, clock: Clock) -> Invoice:
    """Anything but PAID -> CANCELED (again on CANCELED); stops dunning. The customer is
    told only about an invoice they were sent (a DRAFT never was)."""
    now = clock.now()
    first = invoice.status != CANCELED
    was_sent = invoice.status in (PENDING, FAILED)
    await _move(
        session,
        invoice,
        Transition.VOID,
        voided_at=invoice.voided_at or now,
        next_retry_at=None,
        updated_at=now,
    )
    if first:
        if was_sent:
            emails.queue(
                tenant_id, emails.INVOICE_VOIDED, {"invoice_id": invoice.id}, key=invoice.id
            )
        outbound.emit(
            tenant_id,
            "invoice.voided",
            invoice_event(invoice, with_amount=False),
            clock=clock,
            key=invoice.id,
        )
    log.info("invoice.voided", invoice_id=invoice.id)
    return invoice
