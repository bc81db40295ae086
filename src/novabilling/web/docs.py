"""Swagger UI at /api/docs and /api/reference, served from bundled assets (no CDN).

The assets are Swagger UI 5 (reads OpenAPI 3.1, which FastAPI generates) as shipped by the
``fastapi-swagger`` wheel (MIT; Swagger UI itself is Apache-2.0). Only its static files are
used: the page is ours, so the console keeps its paths and its Authorize button.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_PREFIX = "/api/docs/static"
ASSETS = Path(str(files("fastapi_swagger").joinpath("resources")))
UI_PARAMETERS = {
    "persistAuthorization": True,
    "displayRequestDuration": True,
    "filter": True,
    "docExpansion": "list",
    "defaultModelsExpandDepth": 0,
}

router = APIRouter(include_in_schema=False)


def _page() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/api/openapi.json",
        title="NovaBilling API",
        swagger_js_url=f"{STATIC_PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{STATIC_PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{STATIC_PREFIX}/favicon-32x32.png",
        swagger_ui_parameters=UI_PARAMETERS,
    )


@router.get("/api/docs")
async def docs() -> HTMLResponse:
    return _page()


@router.get("/api/reference")
async def reference() -> HTMLResponse:
    return _page()


def install(app: FastAPI) -> None:
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(ASSETS)), name="swagger-static")
    app.include_router(router)
