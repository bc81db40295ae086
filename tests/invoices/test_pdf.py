"""The invoice PDF, read back with pypdf."""

from __future__ import annotations

import io
import time
from dataclasses import replace
from datetime import UTC, date, datetime

from pypdf import PdfReader

from novabilling.invoices.pdf import render_invoice_pdf
from novabilling.notifications.views import InvoiceLineView, InvoiceView, TenantView

CREATED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def make_invoice(
    *, currency: str = "USD", lines: tuple[InvoiceLineView, ...] | None = None, **changes: object
) -> InvoiceView:
    if lines is None:
        lines = (
            InvoiceLineView("Pro plan (March 2026)", 1, 4_999, 4_999),
            InvoiceLineView("Extra seats", 3, 1_050, 3_150),
        )
    subtotal = sum(line.amount_minor for line in lines)
    view = InvoiceView(
        tenant=TenantView(
            name="Acme Payments Ltd",
            address="12 Marina Road\nLagos",
            country="NG",
            tax_id="TIN-99812",
        ),
        customer_name="Zoë Okafor",
        customer_email="zoe@example.com",
        number="INV-00042",
        status="PENDING",
        currency=currency,
        issued_on=date(2026, 3, 1),
        due_on=date(2026, 3, 31),
        lines=lines,
        subtotal_minor=subtotal,
        tax_minor=612,
        total_minor=subtotal + 612,
        amount_paid_minor=0,
        amount_due_minor=subtotal + 612,
        notes="Bank transfer to GTBank 0123456789.",
    )
    return replace(view, **changes)  # type: ignore[arg-type]


def pdf_text(data: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_shows_tenant_customer_number_dates_and_lines() -> None:
    data = render_invoice_pdf(make_invoice(), created_at=CREATED)
    assert data.startswith(b"%PDF-")
    pages, text = pdf_text(data)
    assert pages == 1
    for expected in (
        "Acme Payments Ltd",
        "12 Marina Road",
        "Lagos",
        "Tax ID: TIN-99812",
        "Zoë Okafor",
        "zoe@example.com",
        "Number: INV-00042",
        "Status: PENDING",
        "Issued: 1 Mar 2026",
        "Due: 31 Mar 2026",
        "Pro plan (March 2026)",
        "Extra seats",
        "Bank transfer to GTBank 0123456789.",
    ):
        assert expected in text, expected


def test_usd_amounts_have_two_decimals() -> None:
    _, text = pdf_text(render_invoice_pdf(make_invoice(), created_at=CREATED))
    assert "USD 49.99" in text  # unit and amount of line 1
    assert "USD 10.50" in text  # unit of line 2
    assert "USD 31.50" in text
    assert "Subtotal USD 81.49" in text
    assert "Tax USD 6.12" in text
    assert "Total USD 87.61" in text
    assert "Amount due USD 87.61" in text


def test_ugx_amounts_have_no_decimals() -> None:
    lines = (InvoiceLineView("Fibre 50 Mbps", 2, 125_000, 250_000),)
    view = make_invoice(currency="UGX", lines=lines, tax_minor=45_000, total_minor=295_000)
    view = replace(view, amount_paid_minor=95_000, amount_due_minor=200_000)
    _, text = pdf_text(render_invoice_pdf(view, created_at=CREATED))
    assert "UGX 125,000" in text
    assert "Subtotal UGX 250,000" in text
    assert "Tax UGX 45,000" in text
    assert "Total UGX 295,000" in text
    assert "Amount paid UGX 95,000" in text
    assert "Amount due UGX 200,000" in text
    assert "UGX 250,000.00" not in text and "125,000." not in text


def test_two_hundred_lines_break_onto_several_pages_and_keep_every_line() -> None:
    lines = tuple(InvoiceLineView(f"Usage item {i:03d}", 1, 100, 100) for i in range(200))
    started = time.perf_counter()
    data = render_invoice_pdf(make_invoice(lines=lines), created_at=CREATED)
    elapsed = time.perf_counter() - started
    pages, text = pdf_text(data)
    assert pages >= 4
    assert all(f"Usage item {i:03d}" in text for i in range(200))
    reader = PdfReader(io.BytesIO(data))
    with_lines = [p.extract_text() for p in reader.pages if "Usage item" in p.extract_text()]
    assert len(with_lines) >= pages - 1  # totals may start a page of their own
    assert all("Description Qty Unit price Amount" in page for page in with_lines)
    assert f"Page {pages} of {pages}" in text
    assert "Subtotal USD 200.00" in text
    assert elapsed < 3.0  # embedded TrueType fonts: ~0.2 s here, generous for a busy CI


def test_long_description_wraps_without_losing_words() -> None:
    long = "Implementation services " + " ".join(f"word{i}" for i in range(40))
    _, text = pdf_text(render_invoice_pdf(make_invoice(lines=(InvoiceLineView(long, 1, 1, 1),))))
    assert "word0" in text and "word39" in text


def test_same_input_and_creation_date_give_identical_bytes() -> None:
    view = make_invoice()
    assert render_invoice_pdf(view, created_at=CREATED) == render_invoice_pdf(
        view, created_at=CREATED
    )


def test_small_invoice_renders_in_well_under_a_second() -> None:
    view = make_invoice()
    render_invoice_pdf(view)  # warm up imports
    started = time.perf_counter()
    for _ in range(10):
        render_invoice_pdf(view)
    # two embedded TrueType fonts are parsed and subset per document: ~0.1 s on a busy
    # 2-core machine (core fonts took ~7 ms but could not print ₦ or Ọ)
    assert (time.perf_counter() - started) / 10 < 0.5
