"""Write and admin endpoints: add or replace speeches, delete a speech, reload the index.

They exist only when HANSARD_ADMIN_TOKEN is set (the service is read-only by
default), and every call must carry `Authorization: Bearer <token>`: no
token is 401, a wrong one 403, before the body is read (service.guard). The
token is compared in constant time.

A write goes through the store's writer exactly as `hansard-search index`
does, and the service then switches to the new version: readers see the old
index or the new one, never a mix. Writes are serialised. The only files
touched are in the configured index directory.
"""

from __future__ import annotations

from typing import Annotated, Optional

from fastapi import APIRouter, Depends, HTTPException, Path as PathParam, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from indexer.build import BuildError, index_speeches, remove_speeches
from service.guard import token_refusal
from service.models import ReloadResult, SpeechBatch, WriteResult
from service.routes import State, service_state

bearer = HTTPBearer(auto_error=False, description="HANSARD_ADMIN_TOKEN")


def require_token(request: Request, _: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)]) -> None:
    """The app's RequestGuard has checked the token before the body was read; checked again here, so that these
    routes are never open without it (`bearer` documents the scheme in OpenAPI)."""
    token = service_state(request).settings.admin_token  # set: the router is included only then
    refusal = token_refusal(request.headers.get("authorization"), token.get_secret_value().encode("utf-8"))
    if refusal is not None:
        raise refusal


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_token)],
                   responses={401: {"description": "No bearer token"}, 403: {"description": "Wrong bearer token"}})


@router.post("/speeches", response_model=WriteResult)
def add_speeches(batch: SpeechBatch, state: State) -> WriteResult:
    """Add speeches, or replace those whose id is already indexed; the new version is served when this returns."""
    searcher = state.current()  # 503 while loading: writes need the model
    ids = [s.id for s in batch.speeches]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise HTTPException(422, f"speeches: speech id {duplicate!r} is given twice")
    with state.write_lock:
        try:
            summary = index_speeches(batch.speeches, state.settings.store, searcher.locked_encoder())
        except BuildError as err:
            raise HTTPException(409, f"speeches: {err}") from err
        state.reload(reason="admin write")
    return WriteResult(speeches_added=len(ids) - summary.speeches_replaced, speeches_replaced=summary.speeches_replaced,
                       passages=summary.passages, index_version=state.version)


@router.delete("/speeches/{speech_id:path}", response_model=WriteResult, responses={404: {"description": "No such speech"}})
def delete_speech(speech_id: Annotated[str, PathParam(max_length=500, description="URL-encoded speech id")],
                  state: State) -> WriteResult:
    """Remove a speech and all its passages."""
    searcher = state.current()
    with state.write_lock:
        try:
            summary = remove_speeches(state.settings.store, [speech_id], searcher.encoder.info)
        except BuildError as err:
            raise HTTPException(409, f"speech_id: {err}") from err
        if not summary.speeches_removed:
            raise HTTPException(404, f"speech_id: no speech with id {speech_id!r}")
        state.reload(reason="admin delete")
    return WriteResult(speeches_deleted=1, passages=summary.passages, index_version=state.version)


@router.post("/reload", response_model=ReloadResult)
def reload(state: State) -> ReloadResult:
    """Load the index's live version now if it is newer than the one served (e.g. after `hansard-search index`)."""
    state.current()
    return ReloadResult(reloaded=state.reload(reason="admin"), index_version=state.version)
