"""The HTTP API (FastAPI): search, similar, fetch passages and speeches, health, stats; and the search page.

The model and the index are loaded once, when the app starts; every request
then costs one query encoding and one vector search. OpenAPI docs are at /docs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from contextlib import asynccontextmanager
from typing import Annotated, AsyncIterator, Literal, Optional

from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field, ValidationError

from embeddings.encoder import Encoder
from indexer.sources.records import Cited, Passage
from indexer.store import Filters
from service.export import ExportFormat, export_response
from service.search.highlight import PassageHighlight
from service.search import DEFAULT_MODE, FACETS, GroupBy, Mode, QueryError, SearchPage, SearchRequest, Searcher, Sort
from service.observability import Metrics, observe_requests
from indexer.store import StoreUnavailable
from service.runtime import ServiceState, Unavailable
from service.guard import RequestGuard
from service.settings import Settings
from service.web import static_files, swagger_files, web_router

log = logging.getLogger("hansard")

MB = 1024 * 1024
MAX_K = 100
MAX_OFFSET = 10_000
MAX_QUERY_CHARS = 1_000
MAX_SIMILAR_CHARS = 20_000  # a pasted speech


class Highlight(BaseModel):
    start: int = Field(description="Offset of the sentence's first character in the passage text")
    end: int = Field(description="Offset just past its last character: text[start:end] is the sentence")
    text: str
    score: Optional[float] = Field(description="BM25 (by words) or cosine similarity (by meaning); null for a one-sentence passage")


class Result(Passage):
    score: float = Field(description="Relevance under the chosen mode; higher is better (cosine similarity for dense)")
    matches: Optional[int] = Field(
        default=None, description="With group_by speech or debate: passages of this group among the ranked candidates"
    )
    highlights: list[Highlight] = Field(
        default_factory=list, description="The sentence(s) of the passage that best match the query, in text order")
    marks: list[tuple[int, int]] = Field(
        default_factory=list, description="[start, end) offsets of the query's words (stemmed) in the passage text")
    highlighted_by: Optional[Literal["words", "meaning"]] = Field(
        default=None, description="How the sentences were chosen: shared words, or (none shared) nearest in meaning")


def results(page: SearchPage, highlights: Optional[list[PassageHighlight]]) -> list[Result]:
    out = []
    for n, hit in enumerate(page.hits):
        found = highlights[n] if highlights else None
        out.append(Result(
            **hit.passage.model_dump(), score=round(hit.score, 6), matches=hit.matches,
            highlights=[Highlight(**vars(sentence)) for sentence in found.sentences] if found else [],
            marks=found.marks if found else [], highlighted_by=found.by if found else None,
        ))
    return out


class SearchResponse(BaseModel):
    query: str
    total: int = Field(description="Passages (or, when grouped, speeches or debates) that match the query and filters")
    k: int
    offset: int
    mode: str
    sort: str
    group_by: str
    filters: Filters = Field(description="The filters applied: parameters and inline filters together")
    facets: Optional[dict[str, list[dict]]] = Field(
        default=None, description='With facets=...: {"party": [{"value": "Labour", "count": 12}, ...], ...}, most frequent first')
    facets_over: Optional[str] = Field(default=None, description='What the facets count: "all matches" or "top N candidates"')
    results: list[Result]


class SimilarResponse(BaseModel):
    seed: dict[str, Optional[str]] = Field(description="The passage_id, speech_id or text asked about")
    total: int = Field(description="Passages (or speeches, when grouped) that match the filters, the seed's speech left out")
    k: int
    offset: int
    group_by: str
    filters: Filters
    results: list[Result]


class SpeechKey(BaseModel):
    id: str


class SpeechResponse(Cited, SpeechKey):
    passages: list[Passage] = Field(description="All of the speech's passages, in order")


class ModelDescription(BaseModel):
    name: str
    version: str
    dimension: int


class StatsResponse(BaseModel):
    passages: int
    speeches: int
    model: ModelDescription
    index_type: str
    format_version: int
    built_at: str
    houses: dict[str, int]
    sections: dict[str, int]
    date_from: Optional[dt.date] = None
    date_to: Optional[dt.date] = None


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "unavailable"] = Field(
        description='"ok": index loaded and searchable; "loading": up, model and index still loading; '
                    '"unavailable": up, but the index could not be loaded, or its database cannot be reached now (see message)')
    up: bool = Field(default=True, description="The process answers HTTP (always true in an answer)")
    searchable: bool
    passages: Optional[int] = None
    index_version: Optional[str] = Field(default=None, description="The index version directory being served")
    message: Optional[str] = None


class ErrorResponse(BaseModel):
    message: str
    detail: object = None


# With format=csv or jsonl, the 200 answer is a download instead of JSON.
EXPORT_RESPONSES = {200: {"content": {
    "text/csv": {"schema": {"type": "string"}, "example": "date,speaker,party,house,debate,reference,citation,url,text,...\n"},
    "application/x-ndjson": {"schema": {"type": "string"}, "example": '{"date": "2009-10-27", "speaker": "David Drew", ...}\n'},
}}}


async def leased_searcher(request: Request) -> AsyncIterator[Searcher]:
    """The Searcher a request runs on: held until the route returns (scope="function": before the answer is sent),
    so that a reload meanwhile closes the replaced store only then."""
    with request.app.state.service.lease() as searcher:
        yield searcher


Leased = Annotated[Searcher, Depends(leased_searcher, scope="function")]


def create_app(settings: Optional[Settings] = None, encoder: Optional[Encoder] = None,
               load_in_background: bool = False) -> FastAPI:
    """The app for one index. Pass `encoder` to reuse an already loaded model (tests).

    With `load_in_background` the app answers at once (/health says "loading",
    searches get 503) while the model and index load; `serve` uses it so that
    a supervisor sees the process up during the slow start. Otherwise loading
    happens before the first request and a failure stops start-up.
    """
    settings = settings or Settings()
    metrics = Metrics()
    state = ServiceState(settings, encoder, metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if load_in_background:
            def load() -> None:
                try:
                    state.load()
                except Exception:
                    log.exception("the index could not be loaded", extra={"fields": {"index": str(settings.index)}})
            threading.Thread(target=load, name="index-loader", daemon=True).start()
        else:
            state.load()
        state.start_watching()
        yield
        state.stop()

    app = FastAPI(
        title="hansard-search",
        summary="Semantic search over UK Parliament debates, with speaker, date and Hansard column references.",
        version="0.1.0",
        lifespan=lifespan,
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
    app.include_router(web_router(settings.allowed_origins))
    if settings.admin_token is not None:
        from service.admin import admin_router

        app.include_router(admin_router(state, settings.admin_token.get_secret_value()))
    app.mount("/static/swagger", swagger_files(), name="swagger")
    app.mount("/static", static_files(), name="static")

    @app.exception_handler(RequestValidationError)
    async def explain_validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        # FastAPI's default body lists errors; a message naming the parameter
        # is what a person reading a portal's logs needs first.
        errors = err.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        message = f"{where}: {first.get('msg', 'invalid')}" if where else first.get("msg", "invalid request")
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

    @app.get("/search", response_model=SearchResponse, responses=EXPORT_RESPONSES, tags=["search"])
    def search(
        s: Leased,
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description=(
            'What to look for. "Quoted phrases" must appear exactly; -word excludes; inline filters such as '
            'speaker:"Lord Alton" house:lords party:Labour from:2023-01-01 to:2023-03-31 are accepted'))],
        k: Annotated[int, Query(ge=1, le=MAX_K, description="How many results")] = 10,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip, for paging")] = 0,
        mode: Annotated[Mode, Query(description="hybrid (default), dense, keyword, or rrf (plain reciprocal rank fusion)")] = DEFAULT_MODE,
        sort: Annotated[Sort, Query(description="relevance, date (oldest first) or -date (newest first)")] = "relevance",
        group_by: Annotated[GroupBy, Query(description="passage, or one best passage per speech or per debate")] = "passage",
        format: Annotated[ExportFormat, Query(description="json (default), or csv / jsonl to download the results")] = "json",
        facets: Annotated[Optional[str], Query(max_length=200, description=f"Comma-separated: {', '.join(FACETS)}")] = None,
        highlight: Annotated[bool, Query(description="Name the best-matching sentence(s) of each result and mark the query's words")] = True,
        filters: Annotated[Filters, Depends(filter_parameters)] = None,
    ) -> SearchResponse:
        """Passages ranked best first, each with speaker, date, debate and Hansard reference."""
        if not q.strip():
            raise HTTPException(422, "q: must contain some words")
        facet_fields = [f.strip() for f in (facets or "").split(",") if f.strip()]
        unknown = [f for f in facet_fields if f not in FACETS]
        if unknown:
            raise HTTPException(422, f"facets: unknown {', '.join(unknown)}; choose from {', '.join(FACETS)}")
        with state.heavy_slot(), state.deadline(s):
            try:
                page = s.search(SearchRequest(q, k=k, offset=offset, mode=mode, filters=filters, sort=sort, group_by=group_by))
            except QueryError as err:
                raise HTTPException(422, str(err)) from err
            if format != "json":
                return export_response(page.hits, format, "hansard-search")
            counts, over = s.facets(page, facet_fields) if facet_fields else (None, None)
            return SearchResponse(
                query=q, total=page.total, k=k, offset=offset, mode=mode, sort=sort, group_by=group_by, filters=page.filters,
                facets=counts, facets_over=over, results=results(page, s.highlight(page) if highlight else None),
            )

    @app.get("/similar", response_model=SimilarResponse, responses={**EXPORT_RESPONSES, 404: {"model": ErrorResponse}},
             tags=["search"])
    def similar(
        s: Leased,
        passage_id: Annotated[Optional[str], Query(max_length=500, description="Find passages like this one")] = None,
        speech_id: Annotated[Optional[str], Query(max_length=500, description="Find speeches like this whole speech")] = None,
        text: Annotated[Optional[str], Query(min_length=1, max_length=MAX_SIMILAR_CHARS, description="Find passages like this text")] = None,
        k: Annotated[int, Query(ge=1, le=MAX_K, description="How many results")] = 10,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip, for paging")] = 0,
        group_by: Annotated[Literal["passage", "speech"], Query(description="speech (default): one result per speech")] = "speech",
        format: Annotated[ExportFormat, Query(description="json (default), or csv / jsonl to download the results")] = "json",
        highlight: Annotated[bool, Query(description=(
            "Name each result's sentence(s) nearest the seed in meaning (embeds every sentence of the page: ~20 ms each)"))] = False,
        filters: Annotated[Filters, Depends(filter_parameters)] = None,
    ) -> SimilarResponse:
        """Speeches (or passages) nearest in meaning to a passage, a whole speech, or a text; never the seed's own speech."""
        given = [name for name, value in (("passage_id", passage_id), ("speech_id", speech_id), ("text", text)) if value is not None]
        if len(given) != 1:
            raise HTTPException(422, "passage_id: give exactly one of passage_id, speech_id or text"
                                + (f" (got {', '.join(given)})" if given else ""))
        if text is not None and not text.strip():
            raise HTTPException(422, "text: must contain some words")
        with state.heavy_slot(), state.deadline(s):
            try:
                vector, seed_speech = s.seed_vector(passage_id=passage_id, speech_id=speech_id, text=text)
            except LookupError as err:
                raise HTTPException(404, str(err)) from err
            try:
                page = s.similar(vector, seed_speech, k=k, offset=offset, filters=filters, group_by=group_by)
            except QueryError as err:
                raise HTTPException(422, str(err)) from err
            if format != "json":
                return export_response(page.hits, format, "hansard-similar")
            return SimilarResponse(
                seed={"passage_id": passage_id, "speech_id": speech_id, "text": text}, total=page.total, k=k, offset=offset,
                group_by=group_by, filters=page.filters, results=results(page, s.highlight(page) if highlight else None),
            )

    @app.get("/passages/{passage_id:path}", response_model=Passage, responses={404: {"model": ErrorResponse}}, tags=["records"])
    def get_passage(s: Leased, passage_id: Annotated[str, PathParam(description='e.g. "uk.org.publicwhip/debate/2009-10-27a.1.0#0", URL-encoded')]) -> Passage:
        """One passage by id."""
        passage = s.passage(passage_id)
        if passage is None:
            raise HTTPException(404, f"no passage with id {passage_id!r}")
        return passage

    @app.get("/speeches/{speech_id:path}", response_model=SpeechResponse, responses={404: {"model": ErrorResponse}}, tags=["records"])
    def get_speech(s: Leased, speech_id: Annotated[str, PathParam(description='e.g. "uk.org.publicwhip/debate/2009-10-27a.1.0", URL-encoded')]) -> SpeechResponse:
        """A whole speech: its fields and all of its passages in order."""
        passages = s.speech(speech_id)
        if not passages:
            raise HTTPException(404, f"no speech with id {speech_id!r}")
        first = passages[0]
        fields = first.model_dump(exclude={"id", "speech_id", "position", "text", "time"})
        return SpeechResponse(id=speech_id, time=first.time, passages=passages, **fields)

    @app.get("/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}}, tags=["service"])
    def health() -> JSONResponse:
        """Up, and whether searchable: 200 once the index is loaded, 503 while loading or when it failed to load."""
        problem = None
        with state.lease(required=False) as loaded:
            if loaded is not None:
                try:
                    loaded.index.ping()  # on PostgreSQL: is the database answering now?
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

    @app.get("/metrics", response_class=PlainTextResponse, tags=["service"])
    def prometheus_metrics() -> Response:
        """Prometheus metrics: requests by route and status, latency histograms, refusals, index size, process memory."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.get("/stats", response_model=StatsResponse, tags=["service"])
    def stats(s: Leased) -> StatsResponse:
        """What the index holds and which model made it."""
        manifest = s.index.manifest
        return StatsResponse(
            passages=manifest.passages,
            speeches=manifest.speeches,
            model=ModelDescription(**manifest.model, dimension=manifest.dimension),
            index_type=manifest.index_type,
            format_version=manifest.format_version,
            built_at=manifest.built_at,
            **s.breakdown,
        )

    return app


def filter_parameters(
    speaker: Annotated[Optional[str], Query(max_length=200, description='Speaker name, case-insensitive, partial ("Lord Alton")')] = None,
    person_id: Annotated[Optional[str], Query(max_length=100, description='e.g. "uk.org.publicwhip/person/10586" or "10586"')] = None,
    party: Annotated[Optional[str], Query(max_length=100, description="Party, case-insensitive")] = None,
    house: Annotated[Optional[Literal["commons", "lords"]], Query(description="commons or lords")] = None,
    section: Annotated[Optional[str], Query(max_length=50, description="debates, westminhall, wrans, wms, lords, standing, grand-committee, ...")] = None,
    date_from: Annotated[Optional[dt.date], Query(description="On or after (YYYY-MM-DD)")] = None,
    date_to: Annotated[Optional[dt.date], Query(description="On or before (YYYY-MM-DD)")] = None,
    debate: Annotated[Optional[str], Query(max_length=200, description="Words that must all be in the debate title")] = None,
) -> Filters:
    """The filter query parameters shared by /search and (later) /similar."""
    values = dict(speaker=speaker, person_id=person_id, party=party, house=house, section=section,
                  date_from=date_from, date_to=date_to, debate=debate)
    try:
        return Filters(**values)
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "date_from"  # the one check across fields
        raise HTTPException(422, f"{field}: {first['msg'].removeprefix('Value error, ')}") from err


def jsonable_errors(errors) -> list[dict]:
    # Pydantic puts exception objects in `ctx`; keep only what JSON can carry.
    return [{key: value for key, value in e.items() if key in ("loc", "msg", "type")} for e in errors]
