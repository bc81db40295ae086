"""Invoice PDF rendering cost: CPU milliseconds per document, per kind of invoice.

    uv run python bench/pdf.py [--count 40] [--baseline] [--out DIR]

Kinds: a one-page Latin invoice (the common case), one with Yoruba diacritics (shaped by
HarfBuzz), one with Chinese/Korean names (the CJK fallback font), and a 90-line invoice
(4 pages). Each is rendered once to warm up (fonts are parsed once per process), then
``--count`` times; the figure is CPU time (``time.process_time``), so other load on the
machine does not inflate it much. ``--baseline`` renders with fpdf2's own ``add_font`` per
document (how it was before invoices/fonts.py) for comparison. ``--out`` writes one PDF of
each kind there (look at them with pdftoppm). Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from novabilling.invoices import fonts, pdf
from novabilling.notifications.views import InvoiceLineView, InvoiceView, TenantView

CREATED = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _invoice(lines: tuple[InvoiceLineView, ...], **changes: Any) -> InvoiceView:
    subtotal = sum(line.amount_minor for line in lines)
    view = InvoiceView(
        tenant=TenantView(
            name="Acme Payments Ltd", address="12 Marina Road\nLagos", country="NG", tax_id="TIN-1"
        ),
        customer_name="Zoë Okafor",
        customer_email="zoe@example.com",
        number="INV-00042",
        status="PENDING",
        currency="NGN",
        issued_on=date(2026, 3, 1),
        due_on=date(2026, 3, 31),
        lines=lines,
        subtotal_minor=subtotal,
        tax_minor=0,
        total_minor=subtotal,
        amount_paid_minor=0,
        amount_due_minor=subtotal,
        notes="Bank transfer to GTBank 0123456789.",
    )
    return replace(view, **changes)


def kinds() -> dict[str, InvoiceView]:
    plain = (
        InvoiceLineView("Pro plan, 1 Mar 2026 - 31 Mar 2026", 1, 4_999_00, 4_999_00),
        InvoiceLineView("Extra seats", 3, 1_050_00, 3_150_00),
    )
    many = tuple(
        InvoiceLineView(f"Usage item {i:03d} " + "detail " * (12 if i % 7 == 0 else 0), 1, 100, 100)
        for i in range(90)
    )
    return {
        "one_page_latin": _invoice(plain),
        "yoruba_shaped": _invoice(plain, customer_name="Ọlá Adébáyọ̀", tenant=TenantView("Ẹ̀kọ́ Ltd")),
        "cjk_fallback": _invoice(plain, customer_name="王伟 · 김민준"),
        "four_pages": _invoice(many),
    }


def _native_add_font(
    document: Any, family: str, style: str, path: Path, *, font_number: int = 0
) -> None:
    document.add_font(family, style, str(path), collection_font_number=font_number)


def measure(view: InvoiceView, count: int) -> dict[str, float]:
    pdf.render_invoice_pdf(view, created_at=CREATED)  # warm: fonts parsed, code loaded
    samples = []
    for _ in range(count):
        start = time.process_time()
        pdf.render_invoice_pdf(view, created_at=CREATED)
        samples.append((time.process_time() - start) * 1000)
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": round(sorted(samples)[int(len(samples) * 0.9) - 1], 2),
        "min_ms": round(min(samples), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--baseline", action="store_true", help="fpdf2's add_font per document")
    parser.add_argument("--out", type=Path, help="write one PDF of each kind here")
    args = parser.parse_args()
    if args.baseline:
        fonts.add_font = _native_add_font  # type: ignore[assignment]
    first = time.process_time()
    pdf.render_invoice_pdf(kinds()["one_page_latin"], created_at=CREATED)
    result: dict[str, Any] = {
        "mode": "baseline (add_font per document)" if args.baseline else "shared fonts",
        "first_document_ms": round((time.process_time() - first) * 1000, 1),
    }
    for name, view in kinds().items():
        result[name] = measure(view, args.count)
        if args.out:
            args.out.mkdir(parents=True, exist_ok=True)
            data = pdf.render_invoice_pdf(view, created_at=CREATED)
            (args.out / f"{name}.pdf").write_bytes(data)
    json.dump(result, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
