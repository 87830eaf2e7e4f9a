"""/passages/{id}, /speeches/{id} and /debates/{id}: records by their ids (URL-encoded; slashes and "#" allowed); /cite: by their citation."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path as PathParam, Query

from indexer.sources.records import MAX_ID_CHARS, Passage
from indexer.store.base import MAX_DEBATE_PASSAGES
from indexer.sources.references import MAX_CITATION_CHARS, CitationQuery, parse_citation
from service.models import CiteResponse, DebateResponse, ErrorResponse, SpeechResponse, result_of
from service.search import Hit
from service.routes import Leased

router = APIRouter(tags=["records"])


@router.get("/passages/{passage_id:path}", response_model=Passage, responses={404: {"model": ErrorResponse}})
def get_passage(s: Leased, passage_id: Annotated[str, PathParam(description='e.g. "uk.org.publicwhip/debate/2009-10-27a.1.0#0", URL-encoded')]) -> Passage:
    """One passage by id."""
    passage = s.passage(passage_id)
    if passage is None:
        raise HTTPException(404, f"no passage with id {passage_id!r}")
    return passage

@router.get("/speeches/{speech_id:path}", response_model=SpeechResponse, responses={404: {"model": ErrorResponse}})
def get_speech(s: Leased, speech_id: Annotated[str, PathParam(description='e.g. "uk.org.publicwhip/debate/2009-10-27a.1.0", URL-encoded')]) -> SpeechResponse:
    """A whole speech: its fields and all of its passages in order."""
    passages = s.speech(speech_id)
    if not passages:
        raise HTTPException(404, f"no speech with id {speech_id!r}")
    first = passages[0]
    fields = first.model_dump(exclude={"id", "speech_id", "position", "text", "time"})
    return SpeechResponse(id=speech_id, time=first.time, passages=passages, **fields)


@router.get("/debates/{debate_id:path}", response_model=DebateResponse, responses={404: {"model": ErrorResponse}})
def get_debate(s: Leased, debate_id: Annotated[str, PathParam(description='e.g. "uk.org.publicwhip/westminhall/2009-10-27a.1.0", URL-encoded')]) -> DebateResponse:
    """A whole debate: its title, date, house, section and columns, and its speeches in order, each with its passages."""
    passages = debate_passages(s, debate_id)
    if not passages:
        raise HTTPException(404, f"no debate with id {debate_id!r}")
    return DebateResponse.of(debate_id, passages[:MAX_DEBATE_PASSAGES], truncated=len(passages) > MAX_DEBATE_PASSAGES)


def debate_passages(s, debate_id: str) -> list[Passage]:
    """A debate's passages in order, one more than MAX_DEBATE_PASSAGES when it is longer (cut it there); none when unknown."""
    if not debate_id or len(debate_id) > MAX_ID_CHARS:  # no stored id is longer
        return []
    return s.debate(debate_id, MAX_DEBATE_PASSAGES + 1)


# ---------------------------------------------------------------- citations

MAX_CITE_K = 100


def cite_score(start: int, end: int, passage: Passage) -> float:
    """The share of the cited columns the speech covers (1.0: all of them); what a cited result's score says."""
    first = passage.column.start or 0
    last = passage.column.end or first
    return round(max(0, min(end, last) - max(start, first) + 1) / (end - start + 1), 6)


def cite_hits(store, query: CitationQuery, k: int) -> tuple[list[Hit], bool]:
    """(one hit a speech printed in the cited columns, best first; whether they span several sittings or volumes)."""
    vecs = store.by_column(query.house, query.suffix, query.volume, query.date, query.start, query.end, k, query.session)
    passages = store.passages_at(vecs)
    # Several speeches share a column on one day: that is the column's content,
    # not ambiguity. Speeches of different days or volumes are.
    sittings = {(p.house, p.date, p.column.volume) for p in passages}
    return [Hit(passage=p, score=cite_score(query.start, query.end, p)) for p in passages], len(sittings) > 1


@router.get("/cite", response_model=CiteResponse, responses={422: {"model": ErrorResponse}})
def cite(s: Leased, ref: Annotated[str, Query(min_length=1, max_length=MAX_CITATION_CHARS, description=(
            'A Hansard citation: "823 cc554-7GC", "HL Deb vol 823 cc554-7GC", OSCOLA ("HC Deb 26 October 2009, col 6WS") '
            'or TheyWorkForYou’s ("HC Deb, 5 July 2023, c554"), with or without the date or volume'))],
         k: Annotated[int, Query(ge=1, le=MAX_CITE_K, description="At most this many candidate speeches")] = 20) -> CiteResponse:
    """The speeches printed in a cited column range, best match first (the one starting at the cited column first)."""
    try:
        parsed = parse_citation(ref)
    except ValueError as e:
        raise HTTPException(422, f"ref: {e}") from None
    hits, ambiguous = cite_hits(s.index, parsed, k)
    return CiteResponse(ref=ref, parsed=parsed, total=len(hits), ambiguous=ambiguous, results=[result_of(h) for h in hits])
