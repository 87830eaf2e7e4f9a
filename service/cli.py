"""The `hansard-search` command: download, index, serve, search.

Exit status of `index`: 0 every file indexed (notes, such as a guessed
encoding, do not change it); 3 indexed, but some files or records were
skipped (listed with their reasons); 1 failed, nothing changed; 2 bad usage;
130 interrupted, nothing changed. Of `download`, likewise: 0 every file fetched or already there;
3 some files (or folder listings) failed; 1 no folder could be listed at all.
Of `eval`: 0 measured (a warning when some queries' judged documents are not in
the index); 1 none of them is in the index, so the figures measure nothing.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.text import Text
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from embeddings.encoder import DEFAULT_MODEL, MODELS

EXIT_OK, EXIT_FAILED, EXIT_SKIPPED, EXIT_USAGE = 0, 1, 3, 2


def _plain_help_labels() -> None:
    """Help as a user reads it: typer 0.29 labels every flag `<bool>` (`--help <bool>`), an argument by its
    Python type (`<list[Path]>`), and writes a required argument `{sources}...` in the usage line.
    Here a flag takes no value, so it has no label; an argument is named in capitals: `SOURCES...`, `[QUERY]`."""
    from typer.core import TyperArgument, TyperOption

    option_label = TyperOption.display_type_rich

    def label(self, ctx):  # a repeatable option takes one value at a time: <str>, not <list[str]>
        return None if self.is_flag else re.sub(r"list\[(.*)\]", r"\1", option_label(self, ctx) or "") or None

    TyperOption.display_type_rich = label
    TyperArgument.display_type_rich = lambda self, ctx: None

    def usage_name(self) -> str:
        name = (self.metavar or self.name or "").upper() + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    TyperArgument._usage_display_name = usage_name
    TyperArgument.display_name_raw = property(lambda self: self.metavar or (self.name or "").upper())


_plain_help_labels()

app = typer.Typer(
    name="hansard-search",
    help="Semantic search over UK Parliament debates (Hansard), with cited passages.",
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # messages name paths: never wrap them

IndexDir = Annotated[
    Path,
    typer.Option("--index", envvar="HANSARD_INDEX", help="Index directory (default: $HANSARD_INDEX or ./index)."),
]
ModelName = Annotated[
    str,
    typer.Option("--model", envvar="HANSARD_MODEL", help=f"Embedding model: {', '.join(MODELS)}."),
]
DatabaseUrl = Annotated[
    Optional[str],
    typer.Option("--database-url", envvar="HANSARD_DATABASE_URL", show_envvar=False,
                 help="Use PostgreSQL (with pgvector) instead of the index directory: postgresql://user@host:5432/db "
                      "(default: $HANSARD_DATABASE_URL)."),
]


def _progress(quiet: bool) -> Progress:
    """A progress display on stderr (gone when done): what is under way, a bar, n of N, time taken."""
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err, disable=quiet, transient=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(EXIT_FAILED)


def _check_database_url(url: Optional[str], option: str = "--database-url") -> Optional[str]:
    from indexer.store import database_url

    try:
        return database_url(url)
    except ValueError as e:
        err.print(f"[bold red]error:[/] {option}: {escape(str(e))}")
        raise typer.Exit(EXIT_USAGE)


def _location(index_dir: Path, database_url: Optional[str], read_url: Optional[str] = None):
    """The store the options name (the database URLs checked first: a bad one is a usage error)."""
    from indexer.store import Location

    return Location(index_dir=index_dir, database_url=_check_database_url(database_url),
                    read_url=_check_database_url(read_url, "--database-read-url"))


def _open_searcher(index_dir: Path, database_url: Optional[str], model: str, use_cache: bool = False):
    """The store (directory or database) and the model, opened for searching; fails with a message."""
    from embeddings.encoder import load_encoder
    from indexer.store import StoreError
    from service.search import Searcher

    location = _location(index_dir, database_url)
    try:
        return Searcher.open(location, load_encoder(model, use_cache=use_cache))
    except (StoreError, ValueError, RuntimeError) as e:
        _fail(str(e))


@app.command()  # (long for its options: the body is three steps, set up, build, report)
def index(
    sources: Annotated[list[Path], typer.Argument(help="Files or folders of ParlParse XML, contribution pages, JSONL or CSV, mixed.")],
    index_dir: IndexDir = Path("index"),
    members: Annotated[
        Optional[Path],
        typer.Option(envvar="HANSARD_MEMBERS", help="ParlParse members data, for parties (default: a `members` folder beside the sources)."),
    ] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Start a new index instead of adding to the existing one.")] = False,
    model: ModelName = DEFAULT_MODEL,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
    max_file_mb: Annotated[float, typer.Option(
        "--max-file-mb", min=0, help="Skip, unread, any file larger than this many MB (0: no limit).")] = 100,
    ann_threshold: Annotated[int, typer.Option(
        min=0, help="Above this many passages, use an approximate (HNSW) vector index instead of exact search.")] = 200_000,
    database_url: DatabaseUrl = None,
    batch_size: Annotated[int, typer.Option(
        min=1, help="With --database-url: passages embedded and written per transaction (whole sittings).")] = 2_000,
) -> None:
    """Read speeches from SOURCES, embed their paragraphs and write (or update) the index, or the PostgreSQL store."""
    from indexer.build import BuildError, build_index, find_members_folder
    from indexer.sources.members import MemberDirectory
    from embeddings.encoder import load_encoder

    location = _location(index_dir, database_url)
    members = members or find_members_folder(sources)
    if members is not None and not members.is_dir():
        _fail(f"members folder {members} does not exist")
    directory = MemberDirectory.load(members)
    try:
        encoder = load_encoder(model)
    except (ValueError, RuntimeError, OSError) as e:
        _fail(str(e))

    progress = _progress(quiet)

    def wrap_files(files):
        files = list(files)
        with progress:
            yield from progress.track(files, description="reading files")

    loading = _progress(quiet)
    task = loading.add_task("embedding and writing paragraphs", total=None)

    def report(done: int, total: int) -> None:
        loading.start()
        loading.update(task, completed=done, total=total)

    try:
        summary = build_index(sources, location, encoder, directory, rebuild=rebuild, progress=not quiet,
                              wrap_files=wrap_files, max_file_mb=max_file_mb,
                              ann_threshold=ann_threshold, batch_passages=batch_size, report=report)
    except BuildError as e:
        _fail(str(e))
    except OSError as e:  # the index could not be written: disk full, no permission, a file in the way
        _fail(f"cannot write the index {index_dir}: {e}; the index is unchanged")
    except KeyboardInterrupt:
        if location.is_database:
            err.print("interrupted: the batches written so far stay (each whole); run the same command again to finish")
        else:
            err.print("interrupted: the index is unchanged; run the same command again to index these sources")
        raise typer.Exit(130)
    finally:
        loading.stop()

    _print_index_summary(summary, location, encoder.info.key, members)


def _print_index_summary(summary, location, model_key: str, members: Optional[Path]) -> None:
    """What an indexing run read, kept, embedded and skipped; exit 3 when something was skipped."""
    seconds = summary.seconds
    fresh = summary.passages_embedded - summary.passages_reused - summary.passages_cached
    err.print(
        f"[bold green]indexed[/] {summary.files_read} files: {summary.speeches_read} speeches read, "
        f"{summary.passages_embedded} passages ({summary.passages_reused} unchanged, vectors kept; "
        f"{summary.passages_cached} embeddings from the cache; {fresh} embedded in {seconds.get('embed', 0):.1f} s"
        + (f", {fresh / seconds['embed']:.0f}/s)" if fresh and seconds.get("embed", 0) > 0 else ")")
    )
    if summary.speeches_kept or summary.speeches_replaced or summary.speeches_removed:
        err.print(f"kept {summary.speeches_kept} speeches from the previous index; replaced {summary.speeches_replaced}; "
                  f"removed {summary.speeches_removed} that newer versions of their sittings no longer hold")
    err.print(
        f"{location}: {summary.passages} passages, {summary.speeches} speeches, "
        f"model {model_key} (members data: {members or 'none'})"
    )
    if summary.superseded:
        err.print(f"left out {len(summary.superseded)} older versions of sitting days (a later version was read)")
    if summary.warnings:
        err.print(f"[bold]indexed, with {len(summary.warnings)} notes:[/]")
        for note in summary.warnings:
            err.print(f"  {escape(str(note))}")
    if summary.problems:
        err.print(f"[bold yellow]skipped {len(summary.files_skipped)} files and {len(summary.records_skipped)} records:[/]")
        for problem in summary.problems:
            err.print(f"  {escape(str(problem))}")
        raise typer.Exit(EXIT_SKIPPED)


@app.command()
def download(
    house: Annotated[str, typer.Option(help="commons or lords.")] = ...,
    section: Annotated[
        Optional[list[str]],
        typer.Option(help="commons: debates, westminhall, wms, wrans, standing; lords: debates, wms, wrans. "
                          "Repeatable or comma-separated (default: all of the house's)."),
    ] = None,
    date_from: Annotated[str, typer.Option("--from", help="First sitting day, YYYY-MM-DD.")] = ...,
    date_to: Annotated[Optional[str], typer.Option("--to", help="Last sitting day, YYYY-MM-DD (default: today).")] = None,
    dest: Annotated[Path, typer.Option(help="Folder to download into, as DEST/<site folder>/<file>.")] = ...,
    base_url: Annotated[
        str, typer.Option("--base-url", envvar="HANSARD_DOWNLOAD_URL", help="Where the ParlParse folders are (a mirror).")
    ] = "https://www.theyworkforyou.com/pwdata/scrapedxml/",  # indexer.sources.download.DEFAULT_BASE_URL, kept out of import time
    delay: Annotated[float, typer.Option(min=0, help="Seconds at least between requests.")] = 1.0,
    retries: Annotated[int, typer.Option(min=0, help="Further tries of a request that timed out, lost its connection or got 429/5xx.")] = 4,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Fetch ParlParse XML from TheyWorkForYou: the latest version of each sitting day, resumably."""
    from indexer.sources.download import Fetcher, UsageError, download_files, plan_downloads, resolve_sections

    try:
        folders = resolve_sections(house, section or [])
        first, last = _iso_date("--from", date_from), (_iso_date("--to", date_to) if date_to else date.today())
        if first > last:
            raise UsageError(f"--from {first} is after --to {last}")
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"--base-url must be an http:// or https:// URL, not {base_url!r}")
    except UsageError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}")
        raise typer.Exit(EXIT_USAGE)

    progress = _progress(quiet)

    def wrap_files(files):
        task = progress.add_task("downloading", total=len(files))
        for f in files:
            progress.update(task, description=f"downloading {f.path}")
            yield f
            progress.advance(task)

    try:
        with Fetcher(delay=delay, retries=retries) as fetcher, progress:
            listing = progress.add_task(f"reading {len(folders)} folder listings", total=None)
            plan = plan_downloads(fetcher, base_url, folders, first, last)
            progress.remove_task(listing)
            summary = download_files(fetcher, base_url, plan.files, dest, wrap=wrap_files)
    except KeyboardInterrupt:
        err.print("interrupted: run the same command again to carry on where it stopped")
        raise typer.Exit(130)

    _print_download_summary(plan, summary, base_url, dest, first, last, folders)


def _print_download_summary(plan, summary, base_url: str, dest: Path, first: date, last: date, folders: list[str]) -> None:
    """What a download fetched, found already there and failed; exit 1 when no folder could be listed, 3 when some failed."""
    if plan.folders_listed == 0:
        for problem in plan.failed_listings:
            err.print(f"  {escape(problem)}")
        _fail(f"could not read any folder listing from {base_url}")
    err.print(
        f"[bold green]downloaded[/] {len(summary.downloaded)} files ({summary.bytes_received / 1e6:.1f} MB "
        f"in {summary.seconds:.1f} s); skipped {len(summary.present)} already in {escape(str(dest))}; "
        f"failed {len(summary.failed)} (of {len(plan.files)} sittings from {first} to {last} in {', '.join(folders)})",
        highlight=False,
    )
    if summary.removed:
        err.print(f"removed {len(summary.removed)} earlier versions of sitting days now downloaded in a later one")
    problems = plan.failed_listings + summary.failed
    if problems:
        err.print(f"[bold yellow]{len(problems)} failed:[/]")
        for problem in problems:
            err.print(f"  {escape(problem)}")
        raise typer.Exit(EXIT_SKIPPED)


def _iso_date(option: str, value: str) -> date:
    from indexer.sources.download import UsageError

    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise UsageError(f"{option} must be a date as YYYY-MM-DD, not {value!r}") from None


@app.command()
def serve(
    index_dir: IndexDir = Path("index"),
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    model: ModelName = DEFAULT_MODEL,
    allow_origin: Annotated[Optional[list[str]], typer.Option(
        help="An origin (https://portal.example) whose pages may frame /embed and read the API; repeatable. "
             "Default: HANSARD_ALLOWED_ORIGINS, else none.")] = None,
    database_url: DatabaseUrl = None,
    database_read_url: Annotated[Optional[str], typer.Option(
        "--database-read-url", envvar="HANSARD_DATABASE_READ_URL", show_envvar=False,
        help="With --database-url: a read-only replica that takes every query (default: $HANSARD_DATABASE_READ_URL).")] = None,
) -> None:
    """Serve the index (or the PostgreSQL store) over HTTP: the search page at /, API docs at /docs, MCP at /mcp."""
    import uvicorn
    from pydantic import ValidationError

    from indexer.sources.errors import validation_message

    from indexer.store import StoreError, open_store
    from indexer.store.base import check_model
    from service.app import create_app
    from service.server import server_options
    from service.settings import Settings

    from service.observability import configure_logging

    location = _location(index_dir, database_url, database_read_url)
    try:
        # Refuse a missing or broken store, or one of another model, before
        # loading the model. Only a check: the service opens its own (at 1M
        # passages, keeping this one doubled the memory).
        store = open_store(location)
        try:
            check_model(store.model, store.location, model)
        finally:
            store.close()
            del store
    except StoreError as e:
        _fail(str(e))
    try:
        settings = Settings(index=index_dir, model=model, database_url=location.database_url,
                            database_read_url=location.read_url,
                            **({"allowed_origins": allow_origin} if allow_origin else {}))
    except ValidationError as e:  # named as the user set it: the option, or the environment variable
        option = "--allow-origin" if e.errors()[0]["loc"] == ("allowed_origins",) else f"HANSARD_{e.errors()[0]['loc'][0]}".upper()
        err.print(f"[bold red]error:[/] {option}: {escape(validation_message(e.errors(), skip=e.errors()[0]['loc']))}")
        raise typer.Exit(EXIT_USAGE)
    # JSON log lines (one per request, with its id); the port opens at once and
    # /health says "loading" until the model and index are in memory.
    configure_logging()
    uvicorn.run(create_app(settings, load_in_background=True), host=host, port=port, log_config=None, access_log=False,
                **server_options(settings))


@app.command()
def search(
    query: Annotated[str, typer.Argument(help='What to look for. "Phrases" match exactly, -word excludes, inline filters such as speaker:"Lord Alton" from:2023-01-01 work.')],
    index_dir: IndexDir = Path("index"),
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=100, help="How many results.")] = 10,
    offset: Annotated[int, typer.Option(min=0, help="Results to skip.")] = 0,
    mode: Annotated[str, typer.Option(help="hybrid, dense, keyword or rrf.")] = "hybrid",
    sort: Annotated[str, typer.Option(help="relevance, date or -date.")] = "relevance",
    group_by: Annotated[str, typer.Option("--group-by", help="passage, speech or debate.")] = "passage",
    speaker: Annotated[Optional[str], typer.Option(help="Speaker name (partial, any case).")] = None,
    person_id: Annotated[Optional[str], typer.Option("--person-id", help="ParlParse person id.")] = None,
    party: Annotated[Optional[str], typer.Option(help="Party.")] = None,
    house: Annotated[Optional[str], typer.Option(help="commons or lords.")] = None,
    section: Annotated[Optional[str], typer.Option(help="debates, westminhall, wrans, wms, lords, standing, ...")] = None,
    date_from: Annotated[Optional[str], typer.Option("--from", "--date-from", help="On or after YYYY-MM-DD.")] = None,
    date_to: Annotated[Optional[str], typer.Option("--to", "--date-to", help="On or before YYYY-MM-DD.")] = None,
    debate: Annotated[Optional[str], typer.Option(help="Words of the debate title.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of text.")] = False,
    model: ModelName = DEFAULT_MODEL,
    database_url: DatabaseUrl = None,
) -> None:
    """Print the passages that best match QUERY, with speaker and Hansard reference."""
    from pydantic import ValidationError

    from indexer.store import Filters
    from service.search import MODES, QueryError, SearchRequest

    if not query.strip():
        _fail("the query is empty")
    for name, value, allowed in (("--mode", mode, MODES), ("--sort", sort, ("relevance", "date", "-date")),
                                 ("--group-by", group_by, ("passage", "speech", "debate"))):
        if value not in allowed:
            err.print(f"[bold red]error:[/] {name} must be one of {', '.join(allowed)}, not {escape(value)!r}")
            raise typer.Exit(2)
    try:
        filters = Filters(speaker=speaker, person_id=person_id, party=party, house=house, section=section,
                          date_from=date_from, date_to=date_to, debate=debate)
    except ValidationError as e:
        first = e.errors()[0]
        err.print(f"[bold red]error:[/] {'.'.join(map(str, first['loc'])) or 'date_from'}: {escape(first['msg'])}")
        raise typer.Exit(2)
    searcher = _open_searcher(index_dir, database_url, model)
    request = SearchRequest(query, k=k, offset=offset, mode=mode, filters=filters, sort=sort, group_by=group_by)
    try:
        page = searcher.search(request)
    except QueryError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}")
        raise typer.Exit(2)
    _print_page(page, offset, as_json, header={"query": query, "total": page.total, "k": k, "offset": offset,
                                                "mode": mode, "sort": sort, "group_by": group_by},
                highlights=searcher.highlight(page))


@app.command()
def similar(
    passage_id: Annotated[Optional[str], typer.Option("--passage-id", help="Find passages like this one.")] = None,
    speech_id: Annotated[Optional[list[str]], typer.Option("--speech-id", help=(
        "Find speeches like this whole speech; repeat (up to 10) for speeches like all of them."))] = None,
    text: Annotated[Optional[str], typer.Option("--text", help="Find passages like this text.")] = None,
    index_dir: IndexDir = Path("index"),
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=100, help="How many results.")] = 10,
    offset: Annotated[int, typer.Option(min=0, help="Results to skip.")] = 0,
    group_by: Annotated[str, typer.Option("--group-by", help="speech (one per speech) or passage.")] = "speech",
    mode: Annotated[str, typer.Option(help="hybrid (vectors and distinctive words), dense or keyword.")] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of text.")] = False,
    model: ModelName = DEFAULT_MODEL,
    database_url: DatabaseUrl = None,
) -> None:
    """Print the speeches (or passages) most like a passage, whole speeches or a text; never the seeds' own speeches."""
    from indexer.store import StoreError
    from service.routes.search import seed_description
    from service.search import MAX_SEEDS, SIMILAR_MODES

    given = [v for v in (passage_id, speech_id, text) if v is not None]
    if len(given) != 1:
        err.print("[bold red]error:[/] give exactly one of --passage-id, --speech-id or --text")
        raise typer.Exit(2)
    if len(speech_id or []) > MAX_SEEDS:
        err.print(f"[bold red]error:[/] --speech-id: at most {MAX_SEEDS} speeches at once, not {len(speech_id)}")
        raise typer.Exit(2)
    for name, value, allowed in (("--group-by", group_by, ("speech", "passage")), ("--mode", mode, SIMILAR_MODES)):
        if value not in allowed:
            err.print(f"[bold red]error:[/] {name} must be {' or '.join(allowed)}, not {escape(value)!r}")
            raise typer.Exit(2)
    searcher = _open_searcher(index_dir, database_url, model)
    try:
        seed = searcher.seed(passage_id=passage_id, speech_ids=speech_id or [], text=text)
    except (StoreError, ValueError, RuntimeError, LookupError) as e:
        _fail(str(e).strip("'\""))
    page = searcher.similar(seed, k=k, offset=offset, group_by=group_by, mode=mode)
    _print_page(page, offset, as_json, header={"seed": seed_description(passage_id, speech_id or [], text),
                                                "total": page.total, "k": k, "offset": offset, "mode": mode,
                                                "group_by": group_by})


@app.command()
def cite(
    ref: Annotated[str, typer.Argument(help='A citation: "823 cc554-7GC", "HL Deb vol 823 cc554-7GC", "HC Deb 26 October 2009, col 6WS", ...')],
    index_dir: IndexDir = Path("index"),
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=100, help="At most this many candidate speeches.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON (as GET /cite gives it) instead of text.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Print the speeches printed in a cited column range, best match first; exit 2 for a citation it cannot read."""
    from indexer.sources.references import parse_citation
    from indexer.store import StoreError, open_store
    from service.routes.records import cite_hits

    try:
        parsed = parse_citation(ref)
    except ValueError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}")
        raise typer.Exit(EXIT_USAGE)
    location = _location(index_dir, database_url)  # no model: a citation is looked up by its columns alone
    try:
        store = open_store(location)
        try:
            hits, ambiguous = cite_hits(store, parsed, k)
        finally:
            store.close()
    except (StoreError, ValueError, RuntimeError) as e:
        _fail(str(e))
    if as_json:
        from service.models import CiteResponse, result_of

        body = CiteResponse(ref=ref, parsed=parsed, total=len(hits), ambiguous=ambiguous, results=[result_of(h) for h in hits])
        sys.stdout.write(json.dumps(body.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n")
        return
    if not hits:
        out.print("no results")
    for rank, hit in enumerate(hits, start=1):
        p = hit.passage
        who = p.speaker.name or ("(procedural)" if p.procedural else "(speaker not named)")
        out.print(f"[bold]{rank}.[/] [cyan]{escape(who)}[/]  {p.date or ''}  [dim]covers {hit.score:.0%}[/]")
        out.print(f"   {escape(p.oscola or p.citation or p.reference or '')}  ·  {escape(p.debate or '')}")
        out.print(Padding(Text(p.text), (0, 0, 1, 3)))
    if ambiguous:
        err.print("[yellow]ambiguous:[/] these come from more than one sitting or volume; give the date or volume")
    err.print(f"[dim]{len(hits)} candidate speeches[/]")


@app.command()
def mcp(
    index_dir: IndexDir = Path("index"),
    model: ModelName = DEFAULT_MODEL,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the index to an AI assistant over stdio (MCP: search, similar, speeches, passages); read-only.

    For desktop assistants, which start this command themselves: stdout carries
    only the protocol's messages, logs go to stderr. The same tools are served
    over HTTP at /mcp by `serve`.
    """
    import contextlib

    from indexer.store import StoreError
    from service.mcp import run_stdio
    from service.observability import Metrics, configure_logging
    from service.runtime import ServiceState
    from service.settings import Settings

    configure_logging("warning")  # JSON lines on stderr
    location = _location(index_dir, database_url)
    state = ServiceState(Settings(index=index_dir, model=model, database_url=location.database_url), None, Metrics())
    try:
        with contextlib.redirect_stdout(sys.stderr):  # whatever loading prints, not onto the protocol's stream
            state.load()
    except (StoreError, ValueError, RuntimeError, OSError) as e:
        _fail(str(e))
    state.start_watching()  # a newer index version is loaded while serving, as `serve` does
    try:
        run_stdio(state)
    finally:
        state.stop()


@app.command()
def migrate(
    database_url: DatabaseUrl = None,
    model: ModelName = DEFAULT_MODEL,
) -> None:
    """Create the PostgreSQL store, or bring its schema up to date (what `index --database-url` also does first).

    The model fixes the vectors' dimension when the store is created; a store
    made with another model is refused.
    """
    from embeddings.encoder import load_encoder
    from indexer.store import MIGRATIONS, SCHEMA_VERSION, StoreError, migrate as apply, redact

    database_url = _check_database_url(database_url)
    if not database_url:
        err.print("[bold red]error:[/] give --database-url (or set HANSARD_DATABASE_URL)")
        raise typer.Exit(EXIT_USAGE)
    try:
        info = load_encoder(model, use_cache=False).info  # the dimension, and the version of the weights
        applied = apply(database_url, info)
    except (StoreError, ValueError, RuntimeError) as e:
        _fail(str(e))
    names = dict((version, name) for version, name, _ in MIGRATIONS)
    for version in applied:
        err.print(f"applied migration {version}: {names[version]}")
    err.print(f"database {redact(database_url)}: schema version {SCHEMA_VERSION}"
              + ("" if applied else " (already up to date)"))


@app.command("eval")
def evaluate_command(
    index_dir: IndexDir = Path("index"),
    queries: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="BEIR queries (JSON Lines).")] = ...,
    qrels: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="BEIR qrels (TSV with a header).")] = ...,
    level: Annotated[str, typer.Option(help="passage or speech: what the qrels' corpus ids name.")] = "speech",
    mode: Annotated[Optional[list[str]], typer.Option("--mode", help="Modes to compare (repeatable; default: keyword, dense, rrf, hybrid).")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="Only the first N judged queries.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON with per-query results.")] = False,
    model: ModelName = DEFAULT_MODEL,
    database_url: DatabaseUrl = None,
) -> None:
    """Measure ranking quality (nDCG@10, Recall@100, MRR@10) on BEIR-format queries and judgements."""
    from service.evaluate import evaluate, format_table, load_queries
    from service.search import MODES

    modes = mode or ["keyword", "dense", "rrf", "hybrid"]
    for m in modes:
        if m not in MODES:
            err.print(f"[bold red]error:[/] --mode must be one of {', '.join(MODES)}, not {escape(m)!r}")
            raise typer.Exit(2)
    if level not in ("passage", "speech"):
        err.print(f"[bold red]error:[/] --level must be passage or speech, not {escape(level)!r}")
        raise typer.Exit(2)
    try:
        judged = load_queries(queries, qrels)
    except (ValueError, OSError) as e:
        _fail(str(e))
    if limit:
        judged = judged[:limit]
    searcher = _open_searcher(index_dir, database_url, model, use_cache=True)
    progress = _progress(as_json)
    with progress:
        report = evaluate(searcher, judged, modes, level=level,
                          progress=lambda items: progress.track(items, description="evaluating"))
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        out.print(format_table(report), markup=False)
    present, asked = report["judged_in_index"], report["queries"]
    if present < asked:
        # Zeros from an index that lacks the judged answers measure nothing: say so, on stderr.
        what = "none" if present == 0 else f"only {present}"
        err.print(f"[bold yellow]warning:[/] {what} of the {asked} queries have a judged {level} in this index, "
                  f"so the others score 0 whatever the ranking: index the data the judgements were made on "
                  f"(--level {level} reads the qrels' ids as {level} ids)")
        if present == 0:
            raise typer.Exit(EXIT_FAILED)


HIGHLIGHT_FIELDS = {"highlights", "marks", "highlighted_by"}  # left out of --json where nothing was highlighted


def _print_page(page, offset: int, as_json: bool, header: dict, highlights: Optional[list] = None) -> None:
    """Results as the API's JSON, or as text for a person: rank, speaker, date, citation, debate, passage.

    With highlights (from `search`), the best sentences are shown in bold and the query's words marked.
    """
    marked = highlights or [None] * len(page.hits)
    if as_json:
        from service.models import result_of

        results = [result_of(hit, found).model_dump(mode="json", exclude=set() if found else HIGHLIGHT_FIELDS)
                   for hit, found in zip(page.hits, marked)]
        payload = {**header, "filters": page.filters.model_dump(mode="json"), "results": results}
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
        return
    if not page.hits:
        out.print("no results")
    for rank, (hit, found) in enumerate(zip(page.hits, marked), start=offset + 1):
        p = hit.passage
        who = p.speaker.name or ("(procedural)" if p.procedural else "(speaker not named)")
        if p.speaker.party:
            who += f" ({p.speaker.party})"
        extra = f"  [dim]{hit.matches} matching passages[/]" if hit.matches and hit.matches > 1 else ""
        out.print(f"[bold]{rank}.[/] [cyan]{escape(who)}[/]  {p.date or ''}  [dim]score {hit.score:.3f}[/]{extra}")
        out.print(f"   {escape(p.citation or p.reference or 'no column reference')}  ·  {escape(p.debate or '')}")
        text = Text(p.text)
        for sentence in found.sentences if found else []:
            text.stylize("bold", sentence.start, sentence.end)
        for start, end in found.marks if found else []:
            text.stylize("reverse", start, end)
        out.print(Padding(text, (0, 0, 1, 3)))
    unit = {"passage": "passages", "speech": "speeches", "debate": "debates"}[header["group_by"]]
    err.print(f"[dim]{page.total} matching {unit}[/]")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
