"""The MCP server (Model Context Protocol): the service's reads as tools and resources, for AI assistants.

One definition, `mcp_server(state)`, served two ways:

- streamable HTTP at /mcp on the service (`McpEndpoint`, wired by
  `service.app.create_app`): behind the same RequestGuard and body limit as
  every route, searches taking the same slots and deadlines as /search;
- stdio, by `hansard-search mcp --index DIR` (`run_stdio`), for desktop assistants.

Every tool calls what the HTTP routes call (the leased `Searcher`, the
filter rules of `service.routes.search.filter_parameters`, results built by
`service.models.result_of`), so citations, references and links are the
API's. Read-only whatever HANSARD_ADMIN_TOKEN says: no tool writes.
A debate tool and a citation lookup come with the /debates and citation
endpoints. (No `from __future__ import annotations` here: the SDK reads the
tools' parameter annotations at run time.)
"""

import contextlib
import datetime as dt
import logging
from typing import Annotated, Any, AsyncIterator, Callable, Literal, Optional, TypeVar
from urllib.parse import quote

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError, UnexpectedToolError
from mcp.server.mcpserver.resources.templates import ResourceSecurity
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import Field, ValidationError
from starlette.types import Receive, Scope, Send

from indexer.sources.errors import validation_message
from indexer.sources.records import Passage
from indexer.store import StoreUnavailable
from service.models import SearchResponse, SimilarResponse, SpeechResponse
from service.routes.records import get_passage, get_speech
from service.routes.search import (MAX_K, MAX_OFFSET, MAX_QUERY_CHARS, MAX_SIMILAR_CHARS, filter_parameters, search_response,
                                   seed_description, seed_problem, similar_response)
from service.runtime import ServiceState, Unavailable
from service.search import DEFAULT_MODE, FACETS, GroupBy, Mode, QueryError, SearchRequest, Searcher, SimilarMode, Sort

log = logging.getLogger("hansard")

T = TypeVar("T")

PASSAGE_URI = "hansard://passage/{id}"
SPEECH_URI = "hansard://speech/{id}"

INSTRUCTIONS = (
    "Search the official record of the UK Parliament (Hansard): debates, Westminster Hall, written statements "
    "and answers, in the Commons and the Lords. Start with `search`; read a result's whole speech with "
    "`get_speech` before quoting it; find other speeches making the same point with `find_similar`. Every "
    "passage carries its Hansard citation (e.g. \"HL Deb vol 823 cc554-7GC\") and a link to the record: cite "
    "those, not this server."
)

READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

# The filter parameters, with the bounds filter_parameters (and Filters) put on them.
Speaker = Annotated[Optional[str], Field(max_length=200, description='Speaker name, case-insensitive, partial ("Lord Alton")')]
PersonId = Annotated[Optional[str], Field(max_length=100, description='ParlParse person id, "uk.org.publicwhip/person/10586" or "10586"')]
Party = Annotated[Optional[str], Field(max_length=100, description='Party, case-insensitive ("Labour", "Conservative")')]
House = Annotated[Optional[Literal["commons", "lords"]], Field(description="commons or lords")]
Section = Annotated[Optional[str], Field(max_length=50, description=(
    "debates, westminhall (Westminster Hall), wrans (written answers), wms (written statements), lords, "
    "standing, grand-committee, ..."))]
DateFrom = Annotated[Optional[dt.date], Field(description="On or after this day (YYYY-MM-DD)")]
DateTo = Annotated[Optional[dt.date], Field(description="On or before this day (YYYY-MM-DD)")]
Debate = Annotated[Optional[str], Field(max_length=200, description="Words that must all be in the debate's title")]
K = Annotated[int, Field(ge=1, le=MAX_K, description=f"How many results (1-{MAX_K})")]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET, description="Results to skip, for the next page")]
RecordId = Annotated[str, Field(min_length=1, max_length=500)]


def passage_uri(passage_id: str) -> str:
    """The resource URI of a passage (its id URL-encoded: ids hold slashes and "#")."""
    return PASSAGE_URI.replace("{id}", quote(passage_id, safe=""))


def speech_uri(speech_id: str) -> str:
    return SPEECH_URI.replace("{id}", quote(speech_id, safe=""))


class HansardServer(MCPServer):
    """The SDK's server, saying a tool's bad argument as the API does ("k: Input should be ...")."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context=None):
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise  # (a crash: the SDK logs it and answers "Error executing tool NAME", no traceback)
        except ToolError as err:
            cause = err.__cause__
            if isinstance(cause, ValidationError):  # the arguments against the tool's schema
                raise ToolError(validation_message(cause.errors())) from cause
            if isinstance(cause, ToolError):  # one of ours, said without the SDK's "Error executing tool" prefix
                raise ToolError(str(cause)) from cause
            raise


def mcp_server(state: ServiceState) -> MCPServer:
    """The MCP server over the service's state: four read-only tools and two resource templates."""
    server = HansardServer(
        "hansard-search", title="Hansard search", version="0.1.0", instructions=INSTRUCTIONS,
        description="Semantic search over UK Parliament debates, with Hansard citations",
        # Record ids are lookup keys, not paths: "a/../b" is just an id nobody has.
        resource_security=ResourceSecurity(exempt_params={"id"}),
    )

    @server.tool(name="search", title="Search Hansard", annotations=READ_ONLY)
    def search(
        q: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS, description=(
            'What to look for, in plain words (ranked by meaning and by words). "Quoted phrases" must appear '
            'exactly; -word excludes; inline filters are accepted: speaker:"Lord Alton" house:lords '
            "party:Labour from:2023-01-01 to:2023-03-31"))],
        k: K = 10,
        offset: Offset = 0,
        mode: Annotated[Mode, Field(description=(
            "hybrid (default: meaning and words), dense (meaning only), keyword (words only), rrf"))] = DEFAULT_MODE,
        sort: Annotated[Sort, Field(description="relevance (default), date (oldest first) or -date (newest first)")] = "relevance",
        group_by: Annotated[GroupBy, Field(description=(
            "passage (default), or speech / debate for one best passage per speech or per debate"))] = "passage",
        speaker: Speaker = None, person_id: PersonId = None, party: Party = None, house: House = None,
        section: Section = None, date_from: DateFrom = None, date_to: DateTo = None, debate: Debate = None,
        facets: Annotated[Optional[list[Literal[FACETS]]], Field(max_length=len(FACETS), description=(
            "Also count the matches by these fields (e.g. [\"party\", \"year\"]): who spoke most on it, when"))] = None,
        highlight: Annotated[bool, Field(description=(
            "Name each result's best-matching sentence(s) and mark the query's words in it"))] = False,
    ) -> SearchResponse:
        """Search UK Parliament debates (Hansard) for passages about a topic: the tool to start with.

        Finds what was said in the Commons and the Lords (debates, Westminster Hall, written statements and
        answers), ranked best first by meaning and by words, optionally only by a speaker, party, house,
        section, date range or debate title. Each result is one passage (a paragraph) with its speaker,
        party, house, date, debate title, its Hansard citation (e.g. "HL Deb vol 823 cc554-7GC", to quote),
        and `url`, a link to the official record. A result's `speech_id` gives the whole speech
        (get_speech); its `id` finds others making the same point (find_similar). `total` says how many
        match: page on with `offset`.
        """
        if not q.strip():
            raise ToolError("q: must contain some words")
        filters = _filters(speaker=speaker, person_id=person_id, party=party, house=house, section=section,
                           date_from=date_from, date_to=date_to, debate=debate)

        def run(s: Searcher) -> SearchResponse:
            asked = SearchRequest(q, k=k, offset=offset, mode=mode, filters=filters, sort=sort, group_by=group_by)
            return search_response(s, asked, s.search(asked), list(facets or []), highlight)

        return _answer(state, run, heavy=True)

    @server.tool(name="find_similar", title="Find similar speeches", annotations=READ_ONLY)
    def find_similar(
        passage_id: Annotated[Optional[str], Field(max_length=500, description=(
            "A passage's `id` from a result (e.g. \"uk.org.publicwhip/debate/2009-10-27a.1.0#0\"): passages like it"))] = None,
        speech_id: Annotated[Optional[str], Field(max_length=500, description=(
            "A result's `speech_id`: speeches like that whole speech"))] = None,
        text: Annotated[Optional[str], Field(min_length=1, max_length=MAX_SIMILAR_CHARS, description=(
            "Any text (an argument, a draft, a quotation): speeches or passages most like it"))] = None,
        k: K = 10,
        offset: Offset = 0,
        group_by: Annotated[Literal["passage", "speech"], Field(description=(
            "speech (default): one result per speech; passage: every near passage"))] = "speech",
        mode: Annotated[SimilarMode, Field(description=(
            "hybrid (default): meaning and distinctive words together; dense: meaning only; keyword: words only"))] = "hybrid",
        speaker: Speaker = None, person_id: PersonId = None, party: Party = None, house: House = None,
        section: Section = None, date_from: DateFrom = None, date_to: DateTo = None, debate: Debate = None,
    ) -> SimilarResponse:
        """Find the speeches (or passages) most like a passage, a whole speech, or a text you give, in meaning and words.

        Use it to find who else made the same argument, or earlier debates on a point, when the words may
        differ. Give exactly one of passage_id, speech_id or text. The seed's own speech is never returned.
        Results are as search's: speaker, date, debate, Hansard citation and link; filters narrow them.
        """
        speech_ids = [speech_id] if speech_id is not None else []
        problem = seed_problem(passage_id, speech_ids, text)
        if problem:
            raise ToolError(problem)
        filters = _filters(speaker=speaker, person_id=person_id, party=party, house=house, section=section,
                           date_from=date_from, date_to=date_to, debate=debate)

        def run(s: Searcher) -> SimilarResponse:
            seed = s.seed(passage_id=passage_id, speech_ids=speech_ids, text=text)
            page = s.similar(seed, k=k, offset=offset, filters=filters, group_by=group_by, mode=mode)
            return similar_response(s, page, seed_description(passage_id, speech_ids, text), k, offset, group_by,
                                    highlight=False)

        return _answer(state, run, heavy=True)

    @server.tool(name="get_speech", title="Read a speech", annotations=READ_ONLY)
    def speech(speech_id: Annotated[RecordId, Field(description=(
            'A result\'s `speech_id`, e.g. "uk.org.publicwhip/westminhall/2009-10-27a.1.2"'))]) -> SpeechResponse:
        """The whole of one speech: every passage in order, with its speaker, date, debate, citation and link.

        Use it to read a search result in context before quoting or summarising it.
        """
        return _answer(state, lambda s: get_speech(s, speech_id))

    @server.tool(name="get_passage", title="Read a passage", annotations=READ_ONLY)
    def passage(passage_id: Annotated[RecordId, Field(description=(
            'A result\'s `id`, e.g. "uk.org.publicwhip/westminhall/2009-10-27a.1.2#1"'))]) -> Passage:
        """One passage (a paragraph of a speech) by its id, with its speaker, date, debate, citation and link."""
        return _answer(state, lambda s: get_passage(s, passage_id))

    @server.resource(PASSAGE_URI, name="passage", title="A Hansard passage", mime_type="application/json",
                     description='One passage by id, URL-encoded: hansard://passage/uk.org.publicwhip%2Fwestminhall%2F2009-10-27a.1.2%231')
    def passage_resource(id: str) -> str:
        return _record(state, lambda s: get_passage(s, id))

    @server.resource(SPEECH_URI, name="speech", title="A Hansard speech", mime_type="application/json",
                     description="A whole speech by id, URL-encoded: hansard://speech/uk.org.publicwhip%2Fwestminhall%2F2009-10-27a.1.2")
    def speech_resource(id: str) -> str:
        return _record(state, lambda s: get_speech(s, id))

    return server


def _filters(**values):
    """The filters as /search and /similar take them (the same function, the same rules and messages)."""
    try:
        return filter_parameters(**values)
    except HTTPException as err:
        raise ToolError(err.detail) from err


def _answer(state: ServiceState, run: Callable[[Searcher], T], heavy: bool = False) -> T:
    """`run` on the leased Searcher (a search slot and deadline too, when `heavy`); what went wrong as a ToolError.

    Tools are plain functions: the SDK runs them on a worker thread, as FastAPI runs the routes.
    """
    try:
        with state.lease() as s:
            if not heavy:
                return run(s)
            with state.heavy_slot(), state.deadline(s):
                return run(s)
    except HTTPException as err:  # the routes' own 404s
        raise ToolError(str(err.detail)) from err
    except QueryError as err:
        raise ToolError(str(err)) from err
    except LookupError as err:  # an unknown seed (its message as given: str() of a KeyError would quote it)
        raise ToolError(str(err.args[0]) if err.args else "not found") from err
    except Unavailable as err:
        raise ToolError(f"{err} (retry in {err.retry_after} s)") from err
    except StoreUnavailable as err:
        raise ToolError(f"the store cannot be reached: {err}") from err


def _record(state: ServiceState, get: Callable[[Searcher], object]) -> str:
    try:
        record = _answer(state, get)
    except ToolError as err:
        raise ResourceNotFoundError(str(err)) from err
    return record.model_dump_json()


# ---------------------------------------------------------------- over HTTP

LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def transport_security(allowed_hosts: list[str], allowed_origins: list[str]) -> TransportSecuritySettings:
    """DNS-rebinding protection: the Host a request names must be this machine, or one of `allowed_hosts`.

    Browsers' Origins: this machine's, and the service's allowed origins. A "*"
    among the hosts turns the checks off (behind a proxy that checks Host itself).
    """
    if "*" in allowed_hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    hosts = [pattern for host in (*LOCAL_HOSTS, *allowed_hosts) for pattern in (host, f"{host}:*")]
    origins = [pattern for host in LOCAL_HOSTS for pattern in (f"http://{host}", f"http://{host}:*")]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins + [o for o in allowed_origins if o != "*"])


class McpEndpoint:
    """The ASGI app at /mcp: the SDK's streamable HTTP transport, stateless, answering JSON.

    Stateless: each POST is one self-contained exchange (no session held
    between requests), as every other request to the service is. The SDK's
    session manager needs a task group for the app's life: `running()`, in the
    app's lifespan, makes a fresh one each time the app starts.
    """

    def __init__(self, state: ServiceState, max_body_bytes: int):
        self.server = mcp_server(state)
        self.security = transport_security(state.settings.mcp_allowed_hosts, state.settings.allowed_origins)
        self.max_body_bytes = max_body_bytes
        self._manager = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True, json_response=True,
                                        transport_security=self.security, max_request_body_size=self.max_body_bytes)
        manager = self.server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        manager = self._manager
        if manager is None:
            await JSONResponse({"message": "the MCP endpoint is not running"}, status_code=503)(scope, receive, send)
            return
        await manager.handle_request(scope, receive, send)


# ---------------------------------------------------------------- over stdio

def run_stdio(state: ServiceState) -> None:
    """Serve the MCP server on stdin and stdout until stdin closes (the SDK keeps stray output off stdout meanwhile)."""
    import anyio

    anyio.run(mcp_server(state).run_stdio_async)
