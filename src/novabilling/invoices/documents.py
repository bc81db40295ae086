"""What invoices look like outside the API: the tenant profile they are issued by, the
``InvoiceView`` that PDFs and emails are drawn from, and the stored PDF file.

PDFs are stored under ``<NB_DATA_DIR>/uploads/invoices/invoice-{id}.pdf`` and exposed as
``pdfUrl = /uploads/invoices/invoice-{id}.pdf`` (contract invoices.md).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from novabilling.customers.models import Customer
from novabilling.errors import NotFound
from novabilling.invoices.models import Invoice, InvoiceLine
from novabilling.notifications.views import InvoiceLineView, InvoiceView, TenantView
from novabilling.tenancy.models import Tenant

PDF_URL = "/uploads/invoices/invoice-{id}.pdf"
_TTL_SECONDS = 30.0


@dataclass(frozen=True)
class TenantProfile:
    """The tenant an invoice is issued by (central DB), read-only."""

    id: str
    name: str
    email: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    webhook_url: str | None = None

    @property
    def view(self) -> TenantView:
        return TenantView.from_settings(self.name, self.settings)

    def setting_int(self, key: str) -> int | None:
        value = self.settings.get(key)
        if isinstance(value, bool) or value is None:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            return None


_cache: dict[str, tuple[float, TenantProfile]] = {}


async def load_tenant(
    central: async_sessionmaker[AsyncSession], tenant_id: str, *, fresh: bool = False
) -> TenantProfile:
    """The tenant's name and settings, cached for a few seconds per process."""
    hit = _cache.get(tenant_id)
    if hit is not None and not fresh and hit[0] > time.monotonic():
        return hit[1]
    async with central() as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.id == tenant_id))
    if tenant is None:
        raise NotFound("Tenant not found")
    profile = TenantProfile(
        id=tenant.id,
        name=tenant.name,
        email=tenant.email,
        settings=dict(tenant.settings or {}),
        webhook_url=tenant.webhook_url,
    )
    _cache[tenant_id] = (time.monotonic() + _TTL_SECONDS, profile)
    return profile


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
        tenant=tenant.view,
        customer_name=customer.name or customer.email,
        customer_email=customer.email,
        number=invoice.invoice_number,
        status=invoice.status,
        currency=invoice.currency,
        issued_on=(invoice.finalized_at or invoice.created_at).date(),
        due_on=invoice.due_date.date(),
        lines=tuple(
            InvoiceLineView(
                description=line.description,
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


async def render_pdf(view: InvoiceView) -> bytes:
    """Render off the event loop (fpdf2 is CPU work). fpdf2 with fontTools (~35 MiB
    resident) loads with the first PDF, not in every process at start."""
    from novabilling.invoices.pdf import render_invoice_pdf  # heavy: on first use

    return await asyncio.to_thread(render_invoice_pdf, view)


async def render_and_store(
    session: AsyncSession, invoice: Invoice, tenant: TenantProfile, data_dir: Path
) -> bytes:
    """Render the PDF, store it, set ``pdf_url`` (the caller's transaction commits it)."""
    view, _ = await invoice_view(session, invoice, tenant)
    data = await render_pdf(view)
    await asyncio.to_thread(_write_atomic, pdf_path(data_dir, invoice.id), data)
    url = PDF_URL.format(id=invoice.id)
    if invoice.pdf_url != url:
        invoice.pdf_url = url
    return data


def invoice_event(invoice: Invoice, *, with_amount: bool = True) -> dict[str, Any]:
    """``data`` of the outbound ``invoice.*`` webhooks (contract webhooks.md)."""
    from novabilling.kit.money import to_number

    data: dict[str, Any] = {
        "invoiceId": invoice.id,
        "invoiceNumber": invoice.invoice_number,
        "customerId": invoice.customer_id,
    }
    if with_amount:
        data["amount"] = to_number(invoice.total_minor, invoice.currency)
        data["currency"] = invoice.currency
    return data
