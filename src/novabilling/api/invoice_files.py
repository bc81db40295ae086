"""``GET``/``HEAD /uploads/invoices/invoice-{invoiceId}.pdf`` (contract README §1): the
stored invoice PDFs (``documents.pdf_path``), static, no auth, not rate limited.

Only names of exactly that shape are looked up (an id of letters, digits, ``_`` and ``-``),
so no other file and no directory can be reached and nothing is listed; anything else, or
a PDF not stored (yet, or any more), is the contract's 404 body."""

from __future__ import annotations

import asyncio
import re

from fastapi import APIRouter, Request, Response

from novabilling.errors import NotFound
from novabilling.invoices.documents import pdf_path
from novabilling.web.deps import RuntimeDep

router = APIRouter(tags=["invoices"], include_in_schema=False)

_NAME = re.compile(r"invoice-([A-Za-z0-9_-]{1,64})\.pdf")


@router.api_route("/uploads/invoices/{name}", methods=["GET", "HEAD"])
async def invoice_pdf_file(name: str, request: Request, runtime: RuntimeDep) -> Response:
    match = _NAME.fullmatch(name)
    missing = NotFound(f"Cannot {request.method} {request.url.path}")
    if match is None:
        raise missing
    path = pdf_path(runtime.settings.data_dir, match.group(1))
    try:  # read whole (a few KB): a file removed meanwhile is a 404, not a broken stream
        data = await asyncio.to_thread(path.read_bytes)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise missing from None
    headers = {
        "Content-Disposition": f'inline; filename="{name}"',
        "Cache-Control": "no-cache",  # re-rendered in place when the invoice changes
        "Content-Length": str(len(data)),
    }
    body = b"" if request.method == "HEAD" else data
    return Response(content=body, media_type="application/pdf", headers=headers)
