"""The search page for people (/), its compact embeddable form (/embed, /embed.js), the API docs (/docs), and their security headers.

The page is static HTML, CSS and a little JavaScript (service/static/) that
calls the JSON API; nothing is built. Security headers:

- Every page gets a strict Content-Security-Policy: scripts, styles and
  requests from this origin only, no inline script.
- `/` may be framed by this origin only (frame-ancestors 'self', and
  X-Frame-Options for old browsers).
- `/embed` may also be framed by the configured allowed origins
  (HANSARD_ALLOWED_ORIGINS), and by no one else.

/docs is Swagger UI from the files the fastapi-offline package ships (served
at /static/swagger/), under the same policy: it works on a machine without
internet, and loads nothing from another site.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parents[1] / "static"  # service/static
SWAGGER_UI = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css
_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; object-src 'none'"
)


def frame_ancestors(allowed_origins: list[str]) -> str:
    """The CSP frame-ancestors source list for /embed: this origin plus the allowed ones."""
    if "*" in allowed_origins:
        return "*"
    return " ".join(["'self'", *allowed_origins])


def page_headers(frame_sources: str) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": f"{_PAGE_POLICY}; frame-ancestors {frame_sources}",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
    if frame_sources == "'self'":
        headers["X-Frame-Options"] = "SAMEORIGIN"
    return headers


def _page(layout: str) -> str:
    html = (STATIC / "page.html").read_text(encoding="utf-8")
    return html.replace('data-layout="full"', f'data-layout="{layout}"', 1)


def web_router(allowed_origins: list[str]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    full_page, embed_page = _page("full"), _page("embed")
    docs_page = (STATIC / "docs.html").read_text(encoding="utf-8")
    embed_frames = frame_ancestors(allowed_origins)

    @router.get("/", response_class=HTMLResponse)
    def search_page() -> HTMLResponse:
        return HTMLResponse(full_page, headers=page_headers("'self'"))

    @router.get("/embed", response_class=HTMLResponse)
    def embed_page_route() -> HTMLResponse:
        # The query string (?q=&house=...) is read by the page's script.
        return HTMLResponse(embed_page, headers=page_headers(embed_frames))

    @router.get("/docs", response_class=HTMLResponse)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(docs_page, headers=page_headers("'self'"))

    @router.get("/embed.js")
    def embed_script() -> FileResponse:
        return FileResponse(STATIC / "embed.js", media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

    # The page links /favicon.svg; browsers (and bookmarks, feed readers) also ask for /favicon.ico unprompted.
    @router.get("/favicon.svg")
    @router.get("/favicon.ico")
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml",
                            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})

    return router


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


def swagger_files() -> StaticFiles:
    return StaticFiles(directory=SWAGGER_UI)
