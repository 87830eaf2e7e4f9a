"""/search and /similar: ranked passages, as JSON or as a download (CSV, JSON Lines); /search also as an Atom feed."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import ValidationError

from indexer.sources.errors import validation_message
from indexer.store import Filters
from service.export import ExportFormat, SearchFormat, export_response
from service.feeds import feed_response
from service.models import (EXPORT_RESPONSES, SEARCH_RESPONSES, ErrorResponse, SearchResponse, SimilarResponse,
                            results_of)
from service.routes import Leased, State
from service.search import (DEFAULT_MODE, FACETS, MAX_SEEDS, GroupBy, Mode, QueryError, SearchPage, SearchRequest, Searcher,
                            SimilarMode, Sort)

MAX_K = 100
MAX_OFFSET = 10_000
MAX_QUERY_CHARS = 1_000
MAX_SIMILAR_CHARS = 20_000  # a pasted speech
MAX_ID_CHARS = 500  # a passage or speech id

router = APIRouter(tags=["search"])


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
    """The filter query parameters shared by /search and /similar."""
    values = dict(speaker=speaker, person_id=person_id, party=party, house=house, section=section,
                  date_from=date_from, date_to=date_to, debate=debate)
    try:
        return Filters(**values)
    except ValidationError as err:  # (no location: the one check across fields, of the dates)
        raise HTTPException(422, validation_message(err.errors(), default_field="date_from")) from err


@router.get("/search", response_model=SearchResponse, responses=SEARCH_RESPONSES)
def search(
    request: Request,
    s: Leased,
    state: State,
    q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS, description=(
        'What to look for. "Quoted phrases" must appear exactly; -word excludes; inline filters such as '
        'speaker:"Lord Alton" house:lords party:Labour from:2023-01-01 to:2023-03-31 are accepted'))],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many results")] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip, for paging")] = 0,
    mode: Annotated[Mode, Query(description="hybrid (default), dense, keyword, or rrf (plain reciprocal rank fusion)")] = DEFAULT_MODE,
    sort: Annotated[Sort, Query(description="relevance, date (oldest first) or -date (newest first)")] = "relevance",
    group_by: Annotated[GroupBy, Query(description="passage, or one best passage per speech or per debate")] = "passage",
    format: Annotated[SearchFormat, Query(description=(
        "json (default), or csv / jsonl to download the results, or atom: the search as an Atom feed, "
        "newest first whatever sort says (sort=-date; undated passages left out)"))] = "json",
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
    if format == "atom":  # a feed is newest first
        sort = "-date"
    with state.heavy_slot(), state.deadline(s):
        try:
            asked = SearchRequest(q, k=k, offset=offset, mode=mode, filters=filters, sort=sort, group_by=group_by)
            page = s.search(asked)
        except QueryError as err:
            raise HTTPException(422, str(err)) from err
        if format == "atom":
            return feed_response(results_of(page), str(request.base_url), s.description.built_at, q=q, filters=filters,
                                 mode=mode, group_by=group_by, k=k, offset=offset)
        if format != "json":
            return export_response(results_of(page), format, "hansard-search")
        return search_response(s, asked, page, facet_fields, highlight)


@router.get("/similar", response_model=SimilarResponse, responses={**EXPORT_RESPONSES, 404: {"model": ErrorResponse}})
def similar(
    s: Leased,
    state: State,
    passage_id: Annotated[Optional[str], Query(max_length=MAX_ID_CHARS, description="Find passages like this one (with its neighbours)")] = None,
    speech_id: Annotated[Optional[list[str]], Query(description=(
        f"Find speeches like this whole speech; repeat (up to {MAX_SEEDS}) for speeches like all of them: a reading list"))] = None,
    text: Annotated[Optional[str], Query(min_length=1, max_length=MAX_SIMILAR_CHARS, description="Find passages like this text")] = None,
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many results")] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Results to skip, for paging")] = 0,
    mode: Annotated[SimilarMode, Query(description=(
        "hybrid (default): the seed's vector and its most distinctive words, fused; dense: vectors only; "
        "keyword: \"more like this\" by words only"))] = DEFAULT_MODE,
    group_by: Annotated[Literal["passage", "speech"], Query(description="speech (default): one result per speech")] = "speech",
    format: Annotated[ExportFormat, Query(description="json (default), or csv / jsonl to download the results")] = "json",
    highlight: Annotated[bool, Query(description=(
        "Name each result's sentence(s) nearest the seed in meaning (embeds every sentence of the page: ~20 ms each)"))] = False,
    filters: Annotated[Filters, Depends(filter_parameters)] = None,
) -> SimilarResponse:
    """Speeches (or passages) most like a passage, one or more whole speeches, or a text; never the seeds' own speeches."""
    speech_ids = speech_id or []
    problem = seed_problem(passage_id, speech_ids, text)
    if problem:
        raise HTTPException(422, problem)
    with state.heavy_slot(), state.deadline(s):
        try:
            seed = s.seed(passage_id=passage_id, speech_ids=speech_ids, text=text)
        except LookupError as err:
            raise HTTPException(404, str(err)) from err
        try:
            page = s.similar(seed, k=k, offset=offset, filters=filters, group_by=group_by, mode=mode)
        except QueryError as err:
            raise HTTPException(422, str(err)) from err
        if format != "json":
            return export_response(results_of(page), format, "hansard-similar")
        return similar_response(s, page, seed_description(passage_id, speech_ids, text), k, offset, group_by, highlight)


# The answers' JSON, built once for the routes and the MCP tools (service.mcp).


def search_response(s: Searcher, asked: SearchRequest, page: SearchPage, facet_fields: list[str],
                    highlight: bool) -> SearchResponse:
    counts, over = s.facets(page, facet_fields) if facet_fields else (None, None)
    return SearchResponse(
        query=asked.query, total=page.total, k=asked.k, offset=asked.offset, mode=asked.mode, sort=asked.sort,
        group_by=asked.group_by, filters=page.filters, facets=counts, facets_over=over,
        confidence=None if page.confidence is None else round(page.confidence, 4), weak=page.weak,
        results=results_of(page, s.highlight(page) if highlight else None),
    )


def similar_response(s: Searcher, page: SearchPage, seed: dict, k: int, offset: int, group_by: str,
                     highlight: bool) -> SimilarResponse:
    return SimilarResponse(seed=seed, total=page.total, k=k, offset=offset, mode=page.mode, group_by=group_by,
                           filters=page.filters, results=results_of(page, s.highlight(page) if highlight else None))


def seed_description(passage_id: Optional[str], speech_ids: list[str], text: Optional[str]) -> dict:
    """The response's `seed`: what was asked about (one speech id as a string, several as a list)."""
    speech_id = None if not speech_ids else speech_ids[0] if len(speech_ids) == 1 else list(speech_ids)
    return {"passage_id": passage_id, "speech_id": speech_id, "text": text}


def seed_problem(passage_id: Optional[str], speech_ids: list[str], text: Optional[str]) -> Optional[str]:
    """Why these are not exactly one seed for "similar" (a message naming the parameter), or None."""
    given = [name for name, value in (("passage_id", passage_id), ("speech_id", speech_ids or None), ("text", text))
             if value is not None]
    if len(given) != 1:
        return "passage_id: give exactly one of passage_id, speech_id or text" + (f" (got {', '.join(given)})" if given else "")
    if text is not None and not text.strip():
        return "text: must contain some words"
    if len(speech_ids) > MAX_SEEDS:
        return f"speech_id: at most {MAX_SEEDS} speeches at once, not {len(speech_ids)}"
    if any(not speech_id.strip() for speech_id in speech_ids):
        return "speech_id: must not be empty"
    if any(len(speech_id) > MAX_ID_CHARS for speech_id in speech_ids):
        return f"speech_id: at most {MAX_ID_CHARS} characters each"
    return None
