"""Swagger UI at /api/docs and /api/reference, served from the bundled assets (no CDN)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

STATIC_PREFIX = "/api/docs/static"

router = APIRouter(include_in_schema=False)


def _page() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/api/openapi.json",
        title="NovaBilling API",
        swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PREFIX}/favicon-32x32.png",
    )


@router.get("/api/docs")
async def docs() -> HTMLResponse:
    return _page()


@router.get("/api/reference")
async def reference() -> HTMLResponse:
    return _page()


def install(app: FastAPI) -> None:
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(swagger_ui_path)), name="swagger-static")
    app.include_router(router)
