"""The HTTP service: one FastAPI app over one `ServiceState` (the loaded model and store), wired here.

The model and the store are loaded once, when the app starts; every request
then costs one query encoding and one search. The endpoints are in
`service.routes` (one module a group), their models in `service.models`,
the way errors are said in `service.errors`. OpenAPI docs are at /docs.
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from typing import Optional

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from embeddings.encoder import Encoder
from indexer.store.embedded.keywords import limit_malloc_arenas
from service.errors import install_error_handlers
from service.guard import RequestGuard
from service.mcp import McpEndpoint
from service.models import ErrorResponse
from service.observability import Metrics, observe_requests
from service.routes import admin, operations, records, search
from service.routes.pages import static_files, swagger_files, web_router
from service.runtime import ServiceState
from service.settings import Settings

log = logging.getLogger("hansard")

MB = 1024 * 1024


def create_app(settings: Optional[Settings] = None, encoder: Optional[Encoder] = None,
               load_in_background: bool = False) -> FastAPI:
    """The app for one store. Pass `encoder` to reuse an already loaded model (tests).

    With `load_in_background` the app answers at once (/health says "loading",
    searches get 503) while the model and index load; `serve` uses it so that
    a supervisor sees the process up during the slow start. Otherwise loading
    happens before the first request and a failure stops start-up.
    """
    settings = settings or Settings()
    limit_malloc_arenas()
    metrics = Metrics()
    state = ServiceState(settings, encoder, metrics)
    mcp = McpEndpoint(state, max_body_bytes=int(settings.max_body_mb * MB))  # the MCP server, read-only always
    app = FastAPI(
        title="hansard-search",
        summary="Semantic search over UK Parliament debates, with speaker, date and Hansard column references.",
        version="0.1.0",
        lifespan=_lifespan(state, load_in_background, mcp),
        docs_url=None,  # /docs is served by web_router, from local files
        redoc_url=None,
        responses={
            422: {"model": ErrorResponse, "description": "A parameter is missing or out of range"},
            503: {"model": ErrorResponse, "description": "Starting, busy, or a query ran too long: retry after Retry-After seconds"},
        },
    )
    app.state.service = state

    if settings.allowed_origins:
        # Browsers on these origins may read the JSON API; without the list,
        # no cross-origin page may (same-origin and non-browser clients are unaffected).
        app.add_middleware(CORSMiddleware, allow_origins=settings.allowed_origins, allow_methods=["GET"],
                           allow_headers=["Accept", "Content-Type"], max_age=3600)
    # Inside the request log (which records its refusals), outside everything that reads a body.
    app.add_middleware(RequestGuard, max_body_bytes=int(settings.max_body_mb * MB),
                       admin_token=settings.admin_token.get_secret_value() if settings.admin_token else None)
    observe_requests(app, metrics)
    install_error_handlers(app, metrics)

    app.include_router(web_router(settings.allowed_origins))
    if settings.admin_token is not None:  # read-only otherwise: no write routes at all
        app.include_router(admin.router)
    for routes in (search, records, operations):
        app.include_router(routes.router)
    app.router.add_route("/mcp", mcp, include_in_schema=False)  # streamable HTTP (service/mcp.py)
    app.mount("/static/swagger", swagger_files(), name="swagger")
    app.mount("/static", static_files(), name="static")
    return app


def _lifespan(state: ServiceState, load_in_background: bool, mcp: McpEndpoint):
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if load_in_background:
            def load() -> None:
                try:
                    state.load()
                except Exception:
                    log.exception("the index could not be loaded", extra={"fields": {"index": state.settings.location}})
            threading.Thread(target=load, name="index-loader", daemon=True).start()
        else:
            state.load()
        state.start_watching()
        async with mcp.running():  # the MCP transport's task group, for the app's life
            yield
        state.stop()

    return lifespan
