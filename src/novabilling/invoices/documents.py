"""What invoices look like outside the API: the ``InvoiceView`` that PDFs and e-mails are
drawn from, and the stored PDF file.

PDFs are stored under ``<NB_DATA_DIR>/uploads/invoices/invoice-{id}.pdf`` and exposed as
``pdfUrl = /uploads/invoices/invoice-{id}.pdf`` (contract invoices.md).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from novabilling.customers.models import Customer
from novabilling.errors import NotFound
from novabilling.invoices.models import CreditNote, Invoice, InvoiceLine
from novabilling.invoices.pdf import CREDIT_NOTE, INVOICE, render_invoice_pdf
from novabilling.kit.spans import day_range
from novabilling.notifications.views import InvoiceLineView, InvoiceView, TenantView
from novabilling.tenancy.profiles import TenantProfile

PDF_URL = "/uploads/invoices/invoice-{id}.pdf"


def tenant_view(tenant: TenantProfile) -> TenantView:
    """The business an invoice or e-mail comes from."""
    return TenantView.from_settings(tenant.name, tenant.settings)


async def invoice_view(
    session: AsyncSession, invoice: Invoice, tenant: TenantProfile
) -> tuple[InvoiceView, Customer]:
    customer = await session.get(Customer, invoice.customer_id)
    if customer is None:
        raise NotFound("Customer not found")
    lines = (
        await session.scalars(
            select(InvoiceLine)
            .where(InvoiceLine.invoice_id == invoice.id)
            .order_by(InvoiceLine.position)
        )
    ).all()
    paid = invoice.total_minor if invoice.status == "PAID" else 0
    view = InvoiceView(
        tenant=tenant_view(tenant),
        customer_name=customer.name or customer.email,
        customer_email=customer.email,
        number=invoice.invoice_number,
        status=invoice.status,
        currency=invoice.currency,
        issued_on=(invoice.finalized_at or invoice.created_at).date(),
        due_on=invoice.due_date.date(),
        lines=tuple(
            InvoiceLineView(
                description=_described(line),
                quantity=line.quantity,
                unit_amount_minor=line.unit_amount_minor,
                amount_minor=line.amount_minor,
            )
            for line in lines
        ),
        subtotal_minor=invoice.subtotal_minor,
        tax_minor=invoice.tax_minor,
        total_minor=invoice.total_minor,
        amount_paid_minor=paid,
        amount_due_minor=invoice.total_minor - paid,
    )
    return view, customer


def _described(line: InvoiceLine) -> str:
    """A plan line names its period on the documents people read."""
    if line.type == "plan" and line.period_start and line.period_end:
        return f"{line.description}, {day_range(line.period_start, line.period_end)}"
    return line.description


def pdf_path(data_dir: Path, invoice_id: str) -> Path:
    return data_dir / "uploads" / "invoices" / f"invoice-{invoice_id}.pdf"


def remove_pdfs_after_commit(session: AsyncSession, data_dir: Path, invoice_ids: list[str]) -> None:
    """Delete the stored PDFs of deleted invoices once ``session`` commits (they are served
    without auth); a rollback keeps them. A few unlinks, done inline."""
    armed = [True]

    def remove(_session: Session) -> None:
        if armed[0]:
            armed[0] = False
            for invoice_id in invoice_ids:
                pdf_path(data_dir, invoice_id).unlink(missing_ok=True)

    def disarm(_session: Session) -> None:
        armed[0] = False

    event.listen(session.sync_session, "after_commit", remove, once=True)
    event.listen(session.sync_session, "after_rollback", disarm, once=True)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target, then rename over it: readers see the old or the new file,
    never half of one. The temporary name is unique per write, so two writers of the same
    invoice (the API's render and the background job, in one process) cannot take each
    other's file away."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{secrets.token_hex(6)}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


async def render_pdf(view: InvoiceView, *, created_at: datetime, title: str = INVOICE) -> bytes:
    """Render off the event loop (fpdf2 is CPU work; it loads with the first PDF, see
    ``invoices.pdf``)."""
    return await asyncio.to_thread(render_invoice_pdf, view, created_at=created_at, title=title)


_REASONS = {
    "DUPLICATE": "Duplicate charge",
    "PRODUCT_UNSATISFACTORY": "Product unsatisfactory",
    "ORDER_CHANGE": "Order change",
    "OTHER": "Other",
}


def credit_note_number(note: CreditNote) -> str:
    """What the document calls the note: ``CN-`` and the end of its id."""
    return f"CN-{note.id[-8:].upper()}"


async def credit_note_pdf(
    session: AsyncSession, note: CreditNote, invoice: Invoice, tenant: TenantProfile
) -> bytes:
    """A credit note as PDF: one line crediting the invoice, the reason, what was
    refunded of it (rendered on request, not stored)."""
    customer = await session.get(Customer, note.customer_id)
    if customer is None:
        raise NotFound("Customer not found")
    reason = _REASONS.get(note.reason, note.reason)
    line = InvoiceLineView(
        description=f"Credit for invoice {invoice.invoice_number} ({reason})",
        quantity=Decimal(1),
        unit_amount_minor=note.amount_minor,
        amount_minor=note.amount_minor,
    )
    view = InvoiceView(
        tenant=tenant_view(tenant),
        customer_name=customer.name or customer.email,
        customer_email=customer.email,
        number=credit_note_number(note),
        status=note.status,
        currency=note.currency,
        issued_on=note.created_at.date(),
        due_on=note.created_at.date(),
        lines=(line,),
        subtotal_minor=note.amount_minor,
        tax_minor=0,
        total_minor=note.amount_minor,
        amount_paid_minor=note.refunded_minor,
        notes=f"Credit note against invoice {invoice.invoice_number}. Reason: {reason}."
        + (" Credited to the customer's prepaid wallet." if note.credited_minor else ""),
    )
    return await render_pdf(view, created_at=note.created_at, title=CREDIT_NOTE)


async def render_and_store(
    session: AsyncSession, invoice: Invoice, tenant: TenantProfile, data_dir: Path
) -> bytes:
    """Render the PDF, store it, set ``pdf_url`` (the caller's transaction commits it)."""
    view, _ = await invoice_view(session, invoice, tenant)
    data = await render_pdf(view, created_at=invoice.created_at)
    await asyncio.to_thread(_write_atomic, pdf_path(data_dir, invoice.id), data)
    url = PDF_URL.format(id=invoice.id)
    if invoice.pdf_url != url:
        invoice.pdf_url = url
    return data
