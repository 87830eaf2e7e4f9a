"""/health, /metrics and /stats: whether the service can answer, how it has been answering, and what it holds."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from indexer.store import StoreUnavailable
from service.models import HealthResponse, ModelDescription, StatsResponse
from service.routes import Leased, State

router = APIRouter(tags=["service"])


@router.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}})
def health(state: State) -> JSONResponse:
    """Up, and whether searchable: 200 once the index is loaded, 503 while loading or when it failed to load."""
    problem = None
    with state.lease(required=False) as loaded:
        if loaded is not None:
            try:
                loaded.ping()
            except StoreUnavailable as err:
                problem = str(err)
        passages = loaded.total if loaded is not None else None
    if loaded is not None and problem is None:
        body = HealthResponse(status="ok", up=True, searchable=True, passages=passages, index_version=state.version)
    elif problem is not None:
        body = HealthResponse(status="unavailable", up=True, searchable=False, index_version=state.version,
                              message=problem)
    else:
        body = HealthResponse(status="unavailable" if state.error else "loading", up=True, searchable=False,
                              message=state.error)
    return JSONResponse(body.model_dump(), status_code=200 if body.searchable else 503)

@router.get("/metrics", response_class=PlainTextResponse)
def prometheus_metrics(state: State) -> Response:
    """Prometheus metrics: requests by route and status, latency histograms, refusals, index size, process memory."""
    body, content_type = state.metrics.exposition()
    return Response(body, media_type=content_type)

@router.get("/stats", response_model=StatsResponse)
def stats(s: Leased) -> StatsResponse:
    """What the index holds and which model made it."""
    manifest = s.description
    return StatsResponse(
        passages=manifest.passages,
        speeches=manifest.speeches,
        model=ModelDescription(**manifest.model, dimension=manifest.dimension),
        index_type=manifest.index_type,
        format_version=manifest.format_version,
        built_at=manifest.built_at,
        **s.breakdown,
    )

