"""The HTTP endpoints, one module a group, each a thin layer over the one `ServiceState` the app holds.

- `search.py`: /search and /similar;
- `records.py`: /passages/{id} and /speeches/{id};
- `operations.py`: /health, /metrics, /stats;
- `admin.py`: the token-guarded writes (only when HANSARD_ADMIN_TOKEN is set);
- `pages.py`: the search page, its embed, and the API docs.

To add an endpoint, put it in the module of its group (or a new module with
its own APIRouter, included in `service.app.create_app`), with its models in
`service.models`. A route takes the state through `State`, and the Searcher
it runs on through `Leased`: held for the request, so that a reload
meanwhile closes the replaced store only when the request is done.
"""

from __future__ import annotations

from typing import Annotated, AsyncIterator

from fastapi import Depends, Request

from service.runtime import ServiceState
from service.search import Searcher


def service_state(request: Request) -> ServiceState:
    return request.app.state.service


async def _state(request: Request) -> ServiceState:
    # async: FastAPI runs a plain function dependency in its thread pool, a hop
    # per request for a lookup; this one runs on the event loop.
    return service_state(request)


async def leased_searcher(request: Request) -> AsyncIterator[Searcher]:
    """The Searcher a request runs on: held until the route returns (scope="function": before the answer is sent)."""
    with service_state(request).lease() as searcher:
        yield searcher


State = Annotated[ServiceState, Depends(_state)]
Leased = Annotated[Searcher, Depends(leased_searcher, scope="function")]
