"""How the API says what went wrong: every error is JSON `{"message": "...", "detail": ...}`, the message naming the parameter at fault."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from indexer.sources.errors import validation_message
from indexer.store import StoreUnavailable
from service.observability import Metrics
from service.runtime import Unavailable


def jsonable_errors(errors) -> list[dict]:
    # Pydantic puts exception objects in `ctx`; keep only what JSON can carry.
    return [{key: value for key, value in e.items() if key in ("loc", "msg", "type")} for e in errors]


def install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    @app.exception_handler(RequestValidationError)
    async def explain_validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        # FastAPI's default body lists errors; a message naming the parameter
        # is what a person reading a portal's logs needs first.
        errors = err.errors()
        message = validation_message(errors, skip=("query", "path")) if errors else "invalid request"
        return JSONResponse(status_code=422, content={"message": message, "detail": jsonable_errors(errors)})

    @app.exception_handler(StarletteHTTPException)  # FastAPI's and the router's own (an unknown path's 404)
    async def explain_http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(status_code=err.status_code, content={"message": err.detail}, headers=err.headers)

    @app.exception_handler(Unavailable)
    async def explain_unavailable(request: Request, err: Unavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"message": str(err)}, headers={"Retry-After": str(err.retry_after)})

    @app.exception_handler(StoreUnavailable)
    async def explain_store_unavailable(request: Request, err: StoreUnavailable) -> JSONResponse:
        metrics.refused.labels("store").inc()
        return JSONResponse(status_code=503, content={"message": f"the store cannot be reached: {err}"},
                            headers={"Retry-After": "5"})
