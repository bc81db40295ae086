"""Fonts parsed once per process (invoices/fonts.py): the documents are the ones fpdf2's own
per-document ``add_font`` made (same glyph outlines embedded, same pixels on the page), the
shared font is never changed by a document, and documents rendered at once in threads come
out as when rendered one by one. (The speed is measured by bench/pdf.py, not here.)"""

from __future__ import annotations

import io
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader

from novabilling.invoices import fonts
from novabilling.invoices.pdf import FALLBACK_FILE, FONT_FILES, render_invoice_pdf
from novabilling.notifications.views import InvoiceLineView, InvoiceView, TenantView
from tests.invoices.test_pdf import CREATED, make_invoice
from tests.live import IN_CI

LATIN = make_invoice()
SHAPED = make_invoice(customer_name="Ọlá Adébáyọ̀", tenant=TenantView(name="Ẹ̀kọ́ Ventures ₦"))
CJK = make_invoice(
    customer_name="王伟 · 김민준",
    lines=(InvoiceLineView("ありがとう — Zoë Ñúñez, Đặng Thị Ngọc", 2, 2_500, 5_000),),
)


def _native(document: Any, family: str, style: str, path: Path, *, font_number: int = 0) -> None:
    document.add_font(family, style, str(path), collection_font_number=font_number)


def render_natively(view: InvoiceView, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """The document as fpdf2 makes it with ``add_font`` per document (the old way)."""
    with monkeypatch.context() as patch:
        patch.setattr(fonts, "add_font", _native)
        return render_invoice_pdf(view, created_at=CREATED)


def embedded_fonts(data: bytes) -> dict[str, TTFont]:
    found: dict[str, TTFont] = {}
    for page in PdfReader(io.BytesIO(data)).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            cid = font["/DescendantFonts"][0].get_object()
            stream = cid["/FontDescriptor"].get_object()["/FontFile2"].get_object()
            found[str(font["/BaseFont"])] = TTFont(io.BytesIO(stream.get_data()))
    return found


def outline(font: TTFont, name: str) -> tuple[Any, ...]:
    glyf = font["glyf"]
    coordinates, ends, flags = glyf[name].getCoordinates(glyf)
    return tuple(coordinates), tuple(ends), bytes(flags), font["hmtx"][name]


@pytest.mark.parametrize("view", [LATIN, SHAPED, CJK], ids=["latin", "shaped", "cjk"])
def test_the_same_glyphs_are_embedded_as_with_fpdf2s_own_path(
    view: InvoiceView, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = embedded_fonts(render_invoice_pdf(view, created_at=CREATED))
    theirs = embedded_fonts(render_natively(view, monkeypatch))
    assert set(ours) == set(theirs) and ours
    for name, font in ours.items():
        other = theirs[name]
        assert font.getGlyphOrder() == other.getGlyphOrder(), name
        assert len(font.getGlyphOrder()) < 200  # a subset, not the whole font
        for glyph in font.getGlyphOrder():
            assert outline(font, glyph) == outline(other, glyph), (name, glyph)
        assert font["cmap"].getBestCmap() == other["cmap"].getBestCmap()


def pdftoppm(data: bytes, tmp_path: Path, stem: str) -> list[bytes]:
    if not shutil.which("pdftoppm"):
        message = "pdftoppm is needed (apt-get install poppler-utils)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    source = tmp_path / f"{stem}.pdf"
    source.write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(source), str(tmp_path / stem)], check=True)
    return [page.read_bytes() for page in sorted(tmp_path.glob(f"{stem}-*.png"))]


def test_the_pages_look_exactly_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    many = tuple(InvoiceLineView(f"Ṣọ́ọ̀bù item {i:03d} · ₦ €", 1, 100, 100) for i in range(40))
    for index, view in enumerate((SHAPED, CJK, make_invoice(lines=many))):
        ours = pdftoppm(render_invoice_pdf(view, created_at=CREATED), tmp_path, f"ours{index}")
        theirs = pdftoppm(render_natively(view, monkeypatch), tmp_path, f"theirs{index}")
        assert ours == theirs and ours, index


def test_documents_never_change_the_shared_font() -> None:
    for view in (LATIN, SHAPED, CJK):
        render_invoice_pdf(view, created_at=CREATED)
    for path in (*FONT_FILES.values(), FALLBACK_FILE):
        shared = fonts.master(path)
        assert shared.template.ttfont is not None
        assert len(shared.template.ttfont.getGlyphOrder()) == len(shared.order) > 3000
        assert "GSUB" in shared.template.ttfont  # the subsetter would have dropped it
    again = render_invoice_pdf(LATIN, created_at=CREATED)
    assert again == render_invoice_pdf(LATIN, created_at=CREATED)


def test_documents_rendered_in_threads_are_the_ones_rendered_one_by_one() -> None:
    views = [
        replace(view, number=f"INV-{index:05d}", customer_name=f"{view.customer_name} {index}")
        for index, view in enumerate([LATIN, SHAPED, CJK] * 4)
    ]
    alone = [render_invoice_pdf(view, created_at=CREATED) for view in views]
    with ThreadPoolExecutor(max_workers=6) as pool:
        together = list(pool.map(lambda v: render_invoice_pdf(v, created_at=CREATED), views))
    assert together == alone


def test_linearized_output_is_refused_rather_than_subsetting_the_shared_font() -> None:
    document = fonts.pdf_class()()
    fonts.add_font(document, "sans", "", FONT_FILES[""])
    document.add_page()
    document.set_font("sans", "", 10)
    document.cell(0, 5, "hello")
    with pytest.raises(ValueError, match="linearized"):
        document.output(linearize=True)
