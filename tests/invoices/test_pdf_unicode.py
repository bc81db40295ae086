"""Invoice PDFs print any name and symbol as written (embedded Unicode fonts), read back
with poppler's pdftotext as a person's PDF viewer would; and the pages are what a business
would send: running header and headings on every page, page numbers, credits as credits,
totals never alone on a page."""

from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest
from pypdf import PdfReader

from novabilling.invoices.pdf import money, needs_fallback, render_invoice_pdf
from novabilling.notifications.views import InvoiceLineView, TenantView
from tests.invoices.test_pdf import CREATED, make_invoice
from tests.live import IN_CI

TENANT = "Ẹ̀kọ́ Ventures ₦ — 東京"
CUSTOMER = "Ọlá Adébáyọ̀"
LINES = (
    InvoiceLineView("Ṣọ́ọ̀bù subscription · €9 / £7 / ₵12 / ₹99 / ₦500", 1, 1_000, 1_000),
    InvoiceLineView("王伟 (北京) · 김민준 · ありがとう", 2, 2_500, 5_000),
    InvoiceLineView("Zoë Ñúñez — Đặng Thị Ngọc", 1, 700, 700),
)


def pdftotext(data: bytes, tmp_path: Path, *, page: int | None = None) -> str:
    if not shutil.which("pdftotext"):
        message = "pdftotext is needed (apt-get install poppler-utils)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    path = tmp_path / "invoice.pdf"
    path.write_bytes(data)
    pages = ["-f", str(page), "-l", str(page)] if page else []
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", *pages, str(path), "-"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    return unicodedata.normalize("NFC", out)


def fonts_of(data: bytes) -> set[str]:
    names: set[str] = set()
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


def test_names_and_symbols_come_back_exactly_from_pdftotext(tmp_path: Path) -> None:
    view = make_invoice(
        currency="NGN",
        tenant=TenantView(name=TENANT, address="14 Adéọlá Street\nLagos", country="NG"),
        customer_name=CUSTOMER,
        customer_email="ola@example.ng",
        lines=LINES,
        notes="Pay to GTBank 0123456789 (₦) — 谢谢!",
    )
    text = pdftotext(render_invoice_pdf(view, created_at=CREATED), tmp_path)
    for expected in (
        TENANT,
        "14 Adéọlá Street",
        CUSTOMER,
        *(line.description for line in LINES),
        "Pay to GTBank 0123456789 (₦) — 谢谢!",
        "NGN 50.00",
    ):
        assert unicodedata.normalize("NFC", expected) in text, (expected, text)
    assert "?" not in text.replace("Pay to", "")  # nothing replaced by a question mark


def test_the_cjk_fallback_font_is_embedded_only_when_needed() -> None:
    latin = render_invoice_pdf(make_invoice(customer_name=CUSTOMER), created_at=CREATED)
    assert any("Roboto" in name for name in fonts_of(latin))
    assert not any("WenQuanYi" in name for name in fonts_of(latin))
    cjk = render_invoice_pdf(make_invoice(customer_name="王伟"), created_at=CREATED)
    assert any("WenQuanYi" in name for name in fonts_of(cjk))
    assert needs_fallback(["김민준"]) and not needs_fallback([CUSTOMER, "₦ € £ ₵ ₹"])


def test_negative_amounts_read_as_credits(tmp_path: Path) -> None:
    lines = (
        InvoiceLineView("Pro plan", 1, 5_000, 5_000),
        InvoiceLineView("Credit: outage on 12 Mar", 1, -7_500, -7_500),
    )
    view = make_invoice(
        lines=lines,
        tax_minor=0,
        subtotal_minor=-2_500,
        total_minor=-2_500,
        amount_due_minor=-2_500,
    )
    text = pdftotext(render_invoice_pdf(view, created_at=CREATED), tmp_path)
    assert "USD 75.00 CR" in text
    assert "Credit balance" in text and "Amount due" not in text
    assert "USD -" not in text and "-75" not in text
    assert money(-1, "UGX") == "UGX 1 CR" and money(1_050, "USD") == "USD 10.50"


def test_every_page_has_header_headings_and_number_and_totals_are_not_alone(
    tmp_path: Path,
) -> None:
    words = " ".join(f"detail{i}" for i in range(30))
    lines = tuple(
        InvoiceLineView(f"Item {i:03d} " + (words if i % 7 == 0 else ""), 1, 100, 100)
        for i in range(90)
    )
    view = replace(make_invoice(lines=lines), number="INV-LONG-7")
    data = render_invoice_pdf(view, created_at=CREATED)
    pages = len(PdfReader(io.BytesIO(data)).pages)
    assert pages >= 3
    for page in range(1, pages + 1):
        text = pdftotext(data, tmp_path, page=page)
        assert f"Page {page} of {pages}" in text
        assert "Description" in text and "Amount" in text  # the headings
        assert "Item " in text  # no page without line items (totals never alone)
        if page > 1:
            assert "Invoice INV-LONG-7 (continued)" in text
            assert "Acme Payments Ltd" in text
    last = pdftotext(data, tmp_path, page=pages)
    assert "Item 089" in last and "Amount due" in last
    whole = pdftotext(data, tmp_path)
    assert all(f"Item {i:03d}" in whole for i in range(90))
    assert "detail29" in whole  # wrapped descriptions keep every word


def test_totals_follow_the_last_line_whatever_the_line_count() -> None:
    """For every count around a page break the page holding the totals holds lines too."""
    moved = 0
    for count in range(22, 40):
        lines = tuple(InvoiceLineView(f"Item {i:03d}", 1, 100, 100) for i in range(count))
        reader = PdfReader(io.BytesIO(render_invoice_pdf(make_invoice(lines=lines, notes=None))))
        last = reader.pages[-1].extract_text()
        assert "Amount due" in last and f"Item {count - 1:03d}" in last, count
        if len(reader.pages) > 1 and f"Item {count - 2:03d}" not in last:
            moved += 1  # the last line was carried over to keep the totals company
    assert moved >= 1  # the range really crosses the case where totals would be alone
