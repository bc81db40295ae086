"""Invoice PDF (fpdf2) in embedded Unicode fonts: any name or symbol prints as written.

Fonts come from PyPI packages in the lock (nothing is fetched at run time): Roboto
Regular and Bold (``font-roboto``, Apache-2.0) for Latin, Greek, Cyrillic, Yoruba and
Vietnamese diacritics and currency signs (₦ € £ ₵ ₹ ...); WenQuanYi Micro Hei
(``paperang-p2-fonts-cjk``, Apache-2.0) as the fallback for Chinese, Japanese, Korean and
whatever else Roboto lacks, loaded only when the invoice needs it. A document with
combining marks (``ọ̀``, ``Ẹ̀``) is shaped with HarfBuzz (``uharfbuzz``) so each mark sits
on its letter, capitals included; others skip the shaper (it is slower).

Layout: the business and the customer on page 1; on every later page a running header
(business, invoice number, "continued") and the table headings again; the lines table
wraps long descriptions and never splits a row; totals stay right-aligned under the amount
column and never start a page alone; a footer on every page says "Page n of N".
Negative amounts are credits: ``USD 5.00 CR``; a negative balance reads "Credit balance".
Amounts use ``kit.money.format_display`` in the invoice currency. Given the same view and
``created_at`` the bytes are identical.

Speed: each font file is parsed once per process and each document embeds only the glyphs
it used (invoices/fonts.py): ~15 ms of CPU for a one-page invoice instead of ~85 ms.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from novabilling.invoices import fonts
from novabilling.kit.clock import SystemClock
from novabilling.kit.money import format_display
from novabilling.notifications.views import InvoiceView, format_day

if TYPE_CHECKING:  # fpdf2 and fontTools (~35 MiB) load with the first PDF, not at start
    from fpdf import FPDF

INVOICE = "Invoice"
CREDIT_NOTE = "Credit note"
FONT = "sans"
FALLBACK = "cjk"
_ROBOTO = Path(str(files("font_roboto").joinpath("files")))
FONT_FILES = {"": _ROBOTO / "Roboto-Regular.ttf", "B": _ROBOTO / "Roboto-Bold.ttf"}
FALLBACK_FILE = Path(str(files("paperang_p2_fonts_cjk").joinpath("fonts", "wqy-microhei.ttc")))

_LINE_H = 5.0
_PAD = 1.2
# Table columns (mm): description, qty, unit, amount. Page width 210 - 2 * 16 margins.
_COLS = (92.0, 16.0, 35.0, 35.0)
_HEADINGS = ("Description", "Qty", "Unit price", "Amount")
_BLACK = (25, 25, 25)
_GREY = (110, 110, 110)
_RULE = (222, 226, 232)
_SHADE = (238, 241, 245)


@cache
def _covered() -> frozenset[int]:
    """Code points the main font draws (from the process's parsed copy of it)."""
    return frozenset(fonts.master(FONT_FILES[""]).template.cmap)


def needs_fallback(texts: Iterable[str]) -> bool:
    """True when some printable character is missing from the main font."""
    covered = _covered()
    return any(
        ord(char) not in covered and not char.isspace()
        for text in texts
        for char in unicodedata.normalize("NFC", text)
    )


def has_marks(texts: Iterable[str]) -> bool:
    """True when some text carries a combining mark (it needs the shaper)."""
    return any(unicodedata.combining(char) for text in texts for char in text)


def money(minor: int, currency: str) -> str:
    """``USD 1,234.50``; a negative amount is a credit: ``USD 5.00 CR``."""
    if minor < 0:
        return f"{format_display(-minor, currency)} CR"
    return format_display(minor, currency)


def _view_texts(view: InvoiceView) -> list[str]:
    tenant = view.tenant
    return [
        tenant.name,
        tenant.address or "",
        tenant.country or "",
        tenant.tax_id or "",
        view.customer_name,
        view.customer_email,
        view.number,
        view.notes or "",
        *(line.description for line in view.lines),
    ]


def _style(pdf: FPDF, size: float, *, bold: bool = False, grey: bool = False) -> None:
    """Font, size and colour of the text that follows."""
    pdf.set_font(FONT, "B" if bold else "", size)
    pdf.set_text_color(*(_GREY if grey else _BLACK))


def _rule(pdf: FPDF, y: float) -> None:
    """A light horizontal line across the text width at ``y``."""
    pdf.set_draw_color(*_RULE)
    pdf.set_line_width(0.2)
    pdf.line(pdf.l_margin, y, pdf.l_margin + pdf.epw, y)


@cache
def _pdf_class() -> type[Any]:
    """The invoice document class, built on first use (fpdf2 loads with it). Fonts come
    from the process's parsed copies (invoices/fonts.py), not from the files each time."""

    class InvoicePdf(fonts.pdf_class()):  # type: ignore[misc]
        def __init__(self, view: InvoiceView, title: str = INVOICE) -> None:
            super().__init__(orientation="P", unit="mm", format="A4")
            self.view = view
            self.document = title
            texts = _view_texts(view)
            for style, path in FONT_FILES.items():
                fonts.add_font(self, FONT, style, path)
            if needs_fallback(texts):
                fonts.add_font(self, FALLBACK, "", FALLBACK_FILE)
                self.set_fallback_fonts([FALLBACK], exact_match=False)
            if has_marks(texts):
                self.set_text_shaping(use_shaping_engine=True)
            self.set_margins(16, 16, 16)
            self.set_auto_page_break(auto=True, margin=20)
            self.alias_nb_pages()
            self.in_table = False

        def header(self) -> None:
            if self.page_no() == 1:
                return
            _style(self, 10, bold=True)
            self.cell(self.epw / 2, 6, self.view.tenant.name)
            _style(self, 9, grey=True)
            self.cell(self.epw / 2, 6, f"{self.document} {self.view.number} (continued)", align="R")
            self.ln(6)
            _rule(self, self.get_y())
            self.ln(4)
            if self.in_table:
                _table_headings(self)

        def footer(self) -> None:
            self.set_y(-14)
            _style(self, 8, grey=True)
            self.cell(
                self.epw / 2, 5, f"{self.view.tenant.name} · {self.document} {self.view.number}"
            )
            self.cell(self.epw / 2, 5, f"Page {self.page_no()} of {{nb}}", align="R")

    return InvoicePdf


def render_invoice_pdf(
    view: InvoiceView, *, created_at: datetime | None = None, title: str = INVOICE
) -> bytes:
    """The invoice as PDF bytes. ``created_at`` (default: now) is the only varying input.
    ``title`` ``CREDIT_NOTE``: the same layout as a credit note (no due date; the total is
    what is credited, then what was refunded of it)."""
    pdf = _pdf_class()(view, title)
    pdf.set_creation_date(created_at or SystemClock().now())
    pdf.set_title(f"{title} {view.number}")
    pdf.set_author(view.tenant.name)
    pdf.set_creator("NovaBilling")
    pdf.add_page()
    _header(pdf, view, title)
    _bill_to(pdf, view)
    _table_headings(pdf)
    pdf.in_table = True
    last = len(view.lines) - 1
    for index, line in enumerate(view.lines):
        _line_row(
            pdf,
            line.description,
            str(line.quantity),
            money(line.unit_amount_minor, view.currency),
            money(line.amount_minor, view.currency),
            keep_with=_totals_height(view, title) if index == last else 0.0,
        )
    pdf.in_table = False
    _totals(pdf, view, title)
    _notes(pdf, view)
    return bytes(pdf.output())


def _header(pdf: FPDF, view: InvoiceView, title: str) -> None:
    tenant = view.tenant
    top = pdf.get_y()
    left_w = 108.0
    _style(pdf, 16, bold=True)
    pdf.multi_cell(left_w, 7.5, tenant.name, new_x="LMARGIN", new_y="NEXT", align="L")
    _style(pdf, 9)
    details = [*(tenant.address or "").splitlines(), tenant.country or ""]
    if tenant.tax_id:
        details.append(f"Tax ID: {tenant.tax_id}")
    for text in filter(None, (d.strip() for d in details)):
        pdf.multi_cell(left_w, 4.5, text, new_x="LMARGIN", new_y="NEXT", align="L")
    left_bottom = pdf.get_y()

    right_x = pdf.l_margin + left_w
    right_w = pdf.epw - left_w
    pdf.set_xy(right_x, top)
    _style(pdf, 20, bold=True)
    pdf.cell(right_w, 9, title.upper(), align="R", new_x="LEFT", new_y="NEXT")
    pdf.ln(1)
    rows = [
        ("Number", view.number),
        ("Status", view.status),
        ("Issued", format_day(view.issued_on)),
    ]
    if title == INVOICE:
        rows.append(("Due", format_day(view.due_on)))
    for label, value in rows:
        pdf.set_x(right_x)
        _style(pdf, 9, grey=True)
        pdf.cell(right_w - 38, 4.8, f"{label}:", align="R")
        _style(pdf, 9, bold=label == "Number")
        pdf.cell(38, 4.8, value, align="R", new_x="LEFT", new_y="NEXT")
    pdf.set_y(max(left_bottom, pdf.get_y()) + 8)


def _bill_to(pdf: FPDF, view: InvoiceView) -> None:
    _style(pdf, 9, bold=True, grey=True)
    pdf.cell(0, 5, "BILL TO", new_x="LMARGIN", new_y="NEXT", align="L")
    _style(pdf, 11, bold=True)
    if view.customer_name:
        pdf.multi_cell(110, 5.5, view.customer_name, new_x="LMARGIN", new_y="NEXT", align="L")
    _style(pdf, 10)
    if view.customer_email:
        pdf.multi_cell(110, 5, view.customer_email, new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.ln(7)


def _table_headings(pdf: FPDF) -> None:
    _style(pdf, 9, bold=True)
    pdf.set_fill_color(*_SHADE)
    for index, (width, heading) in enumerate(zip(_COLS, _HEADINGS, strict=True)):
        pdf.cell(width, 7, heading, align="L" if index == 0 else "R", fill=True)
    pdf.ln(7)
    _style(pdf, 9)


def _row_height(pdf: FPDF, text: str) -> tuple[float, bool]:
    if "\n" not in text and pdf.get_string_width(text) <= _COLS[0] - 2 * pdf.c_margin:
        return _LINE_H + 2 * _PAD, False
    lines = pdf.multi_cell(_COLS[0], _LINE_H, text, dry_run=True, output="LINES", align="L")
    count = len(lines) if isinstance(lines, list) else 1
    return max(1, count) * _LINE_H + 2 * _PAD, True


def _line_row(
    pdf: FPDF, description: str, qty: str, unit: str, amount: str, *, keep_with: float
) -> None:
    """One table row, moved whole to the next page when it (plus ``keep_with``) won't fit."""
    text = description.strip() or "-"
    height, wrapped = _row_height(pdf, text)
    if pdf.get_y() + height + keep_with > pdf.page_break_trigger:
        pdf.add_page()  # the running header repeats the headings
    y = pdf.get_y()
    pdf.set_xy(pdf.l_margin, y + _PAD)
    if wrapped:
        pdf.multi_cell(_COLS[0], _LINE_H, text, new_x="RIGHT", new_y="TOP", align="L")
    else:
        pdf.cell(_COLS[0], _LINE_H, text)
    x = pdf.l_margin + _COLS[0]
    for width, value in zip(_COLS[1:], (qty, unit, amount), strict=True):
        pdf.set_xy(x, y + _PAD)
        pdf.cell(width, _LINE_H, value, align="R")
        x += width
    _rule(pdf, y + height)
    pdf.set_xy(pdf.l_margin, y + height)


def _totals_rows(view: InvoiceView, title: str) -> list[tuple[str, str, bool]]:
    cur = view.currency
    if title == CREDIT_NOTE:
        rows = [("Total credited", money(view.total_minor, cur), True)]
        if view.amount_paid_minor:
            rows.append(("Refunded", money(view.amount_paid_minor, cur), False))
        return rows
    rows = [("Subtotal", money(view.subtotal_minor, cur), False)]
    if view.tax_minor:
        rows.append(("Tax", money(view.tax_minor, cur), False))
    rows.append(("Total", money(view.total_minor, cur), True))
    if view.amount_paid_minor:
        rows.append(("Amount paid", money(view.amount_paid_minor, cur), False))
    if view.amount_due_minor < 0:
        rows.append(("Credit balance", format_display(-view.amount_due_minor, cur), True))
    else:
        rows.append(("Amount due", money(view.amount_due_minor, cur), True))
    return rows


def _totals_height(view: InvoiceView, title: str) -> float:
    return len(_totals_rows(view, title)) * 6.5 + 4


def _totals(pdf: FPDF, view: InvoiceView, title: str) -> None:
    rows = _totals_rows(view, title)
    if pdf.get_y() + _totals_height(view, title) > pdf.page_break_trigger:
        pdf.add_page()
    pdf.ln(3)
    label_w, value_w = 45.0, _COLS[3]
    left = pdf.l_margin + sum(_COLS) - label_w - value_w
    for index, (label, value, bold) in enumerate(rows):
        # the invoice's last row (amount due); a credit note's total credited
        last = bold if title == CREDIT_NOTE else index == len(rows) - 1
        pdf.set_x(left)
        _style(pdf, 11 if last else 10, bold=bold)
        pdf.set_fill_color(*_SHADE)
        pdf.cell(label_w, 6.5, label, align="R", fill=last)
        pdf.cell(value_w, 6.5, value, align="R", fill=last)
        pdf.ln(6.5)


def _notes(pdf: FPDF, view: InvoiceView) -> None:
    if not view.notes:
        return
    pdf.ln(6)
    if pdf.get_y() + 15 > pdf.page_break_trigger:
        pdf.add_page()
    _style(pdf, 9, bold=True, grey=True)
    pdf.cell(0, 5, "NOTES", new_x="LMARGIN", new_y="NEXT", align="L")
    _style(pdf, 9)
    pdf.multi_cell(0, 4.5, view.notes, new_x="LMARGIN", new_y="NEXT", align="L")
