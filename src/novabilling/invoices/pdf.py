"""Invoice PDF with fpdf2 core fonts: header, customer, lines table (paged), totals.

Core fonts only know windows-1252, so every string goes through ``pdf_safe``: characters
outside it lose their accents (``Ọ`` -> ``O``) or become ``?``; nothing raises.
Amounts use ``kit.money.format_display`` in the invoice currency. Given the same view and
``created_at`` the bytes are identical.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from novabilling.kit.clock import SystemClock
from novabilling.kit.money import format_display
from novabilling.notifications.views import InvoiceView, format_day

ENCODING = "windows-1252"
_FONT = "Helvetica"
_LINE_H = 5.0
# Table columns (mm): description, qty, unit, amount. Page width 210 - 2 * 15 margins.
_COLS = (96.0, 16.0, 34.0, 34.0)
_HEADINGS = ("Description", "Qty", "Unit price", "Amount")


def pdf_safe(text: str) -> str:
    """``text`` reduced to what a core font can print (windows-1252).

    Unprintable letters lose their accents (``Ọ`` -> ``O``), stray combining marks are
    dropped, anything else becomes ``?``.
    """
    try:
        text.encode(ENCODING)
        return text
    except UnicodeEncodeError:
        pass
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text):
        try:
            char.encode(ENCODING)
            out.append(char)
            continue
        except UnicodeEncodeError:
            pass
        base = "".join(
            c
            for c in unicodedata.normalize("NFKD", char)
            if not unicodedata.combining(c) and _encodable(c)
        )
        out.append(base or ("" if unicodedata.combining(char) else "?"))
    return "".join(out)


def _encodable(char: str) -> bool:
    try:
        char.encode(ENCODING)
    except UnicodeEncodeError:
        return False
    return True


class _InvoicePdf(FPDF):
    def __init__(self, view: InvoiceView) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.core_fonts_encoding = ENCODING
        self.view = view
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=18)
        self.alias_nb_pages()

    def footer(self) -> None:
        self.set_y(-13)
        self.set_font(_FONT, size=8)
        self.set_text_color(120)
        label = f"{self.view.number} - page {self.page_no()} of {{nb}}"
        self.cell(0, 5, pdf_safe(label), align="C")
        self.set_text_color(0)


def render_invoice_pdf(view: InvoiceView, *, created_at: datetime | None = None) -> bytes:
    """The invoice as PDF bytes. ``created_at`` (default: now) is the only varying input."""
    pdf = _InvoicePdf(view)
    pdf.set_creation_date(created_at or SystemClock().now())
    pdf.set_title(pdf_safe(f"Invoice {view.number}"))
    pdf.set_author(pdf_safe(view.tenant.name))
    pdf.set_creator("NovaBilling")
    pdf.add_page()
    _header(pdf, view)
    _table_headings(pdf)
    for line in view.lines:
        _line_row(
            pdf,
            line.description,
            str(line.quantity),
            format_display(line.unit_amount_minor, view.currency),
            format_display(line.amount_minor, view.currency),
        )
    _totals(pdf, view)
    return bytes(pdf.output())


def _header(pdf: FPDF, view: InvoiceView) -> None:
    tenant = view.tenant
    top = pdf.get_y()
    left_w = 110.0
    pdf.set_font(_FONT, "B", 16)
    pdf.multi_cell(left_w, 8, pdf_safe(tenant.name), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=9)
    details = [*(tenant.address or "").splitlines(), tenant.country or ""]
    if tenant.tax_id:
        details.append(f"Tax ID: {tenant.tax_id}")
    for text in filter(None, (d.strip() for d in details)):
        pdf.multi_cell(left_w, 4.5, pdf_safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    left_bottom = pdf.get_y()

    right_x = pdf.l_margin + left_w
    right_w = pdf.epw - left_w
    pdf.set_xy(right_x, top)
    pdf.set_font(_FONT, "B", 20)
    pdf.cell(right_w, 9, "INVOICE", align="R", new_x=XPos.LEFT, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=9)
    for label, value in (
        ("Number", view.number),
        ("Status", view.status),
        ("Issued", format_day(view.issued_on)),
        ("Due", format_day(view.due_on)),
    ):
        pdf.set_x(right_x)
        pdf.cell(
            right_w, 4.5, pdf_safe(f"{label}: {value}"), align="R", new_x=XPos.LEFT, new_y=YPos.NEXT
        )
    pdf.set_y(max(left_bottom, pdf.get_y()) + 8)

    pdf.set_font(_FONT, "B", 10)
    pdf.cell(0, 5, "Bill to", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font(_FONT, size=10)
    for text in (view.customer_name, view.customer_email):
        if text:
            pdf.multi_cell(0, 5, pdf_safe(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(6)


def _table_headings(pdf: FPDF) -> None:
    pdf.set_font(_FONT, "B", 9)
    pdf.set_fill_color(235, 238, 242)
    for index, (width, heading) in enumerate(zip(_COLS, _HEADINGS, strict=True)):
        pdf.cell(width, 7, heading, border="B", align="L" if index == 0 else "R", fill=True)
    pdf.ln(7)
    pdf.set_font(_FONT, size=9)


def _line_row(pdf: FPDF, description: str, qty: str, unit: str, amount: str) -> None:
    text = pdf_safe(description) or "-"
    count = 1
    if "\n" in text or pdf.get_string_width(text) > _COLS[0] - 2 * pdf.c_margin:
        lines = pdf.multi_cell(_COLS[0], _LINE_H, text, dry_run=True, output="LINES")
        count = len(lines) if isinstance(lines, list) else 1
    height = max(1, count) * _LINE_H + 1
    if pdf.get_y() + height > pdf.page_break_trigger:
        pdf.add_page()
        _table_headings(pdf)
    y = pdf.get_y()
    x = pdf.l_margin
    pdf.set_xy(x, y + 0.5)
    if count == 1:
        pdf.cell(_COLS[0], _LINE_H, text)
    else:
        pdf.multi_cell(_COLS[0], _LINE_H, text, new_x=XPos.RIGHT, new_y=YPos.TOP)
    x += _COLS[0]
    for width, value in zip(_COLS[1:], (qty, unit, amount), strict=True):
        pdf.set_xy(x, y + 0.5)
        pdf.cell(width, _LINE_H, pdf_safe(value), align="R")
        x += width
    pdf.set_draw_color(225)
    pdf.line(pdf.l_margin, y + height, pdf.l_margin + sum(_COLS), y + height)
    pdf.set_draw_color(0)
    pdf.set_xy(pdf.l_margin, y + height)


def _totals(pdf: FPDF, view: InvoiceView) -> None:
    rows: list[tuple[str, int, bool]] = [("Subtotal", view.subtotal_minor, False)]
    if view.tax_minor:
        rows.append(("Tax", view.tax_minor, False))
    rows.append(("Total", view.total_minor, True))
    if view.amount_paid_minor:
        rows.append(("Amount paid", view.amount_paid_minor, False))
    rows.append(("Amount due", view.amount_due_minor, True))
    needed = len(rows) * 6 + 6
    if pdf.get_y() + needed > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(3)
    label_w = _COLS[2]
    value_w = _COLS[3]
    for label, minor, bold in rows:
        pdf.set_font(_FONT, "B" if bold else "", 10)
        pdf.set_x(pdf.l_margin + sum(_COLS) - label_w - value_w)
        pdf.cell(label_w, 6, label, align="R")
        pdf.cell(value_w, 6, pdf_safe(format_display(minor, view.currency)), align="R")
        pdf.ln(6)
    if view.notes:
        pdf.ln(6)
        pdf.set_font(_FONT, "B", 9)
        pdf.cell(0, 5, "Notes", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(_FONT, size=9)
        pdf.multi_cell(0, 4.5, pdf_safe(view.notes), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
