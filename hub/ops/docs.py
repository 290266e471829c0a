"""``/docs`` (Swagger UI) served from the hub itself, never from a CDN.

A hall's network is often closed to the internet: FastAPI's default page loads
Swagger UI from a CDN and stays blank there. The same files ship in the
``swagger-ui-bundle-v2`` package (hub extra; Swagger UI 5, which reads the OpenAPI 3.1 FastAPI writes) and are served under ``/docs/static``;
ReDoc, which has no such package, is off.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path


def install_docs(app: FastAPI) -> None:
    """Needs an app made with ``docs_url=None, redoc_url=None``."""
    app.mount("/docs/static", StaticFiles(directory=str(swagger_ui_path)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
                                   swagger_js_url="/docs/static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/static/swagger-ui.css",
                                   swagger_favicon_url="/docs/static/favicon-32x32.png")
