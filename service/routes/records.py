"""/passages/{id} and /speeches/{id}: records by their ids (URL-encoded; slashes and "#" allowed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path as PathParam

from indexer.sources.records import Passage
from service.models import ErrorResponse, SpeechResponse
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

