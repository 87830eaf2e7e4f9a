"""The search page for people (/), its compact embeddable form (/embed, /embed.js), the API docs (/docs), the page that
reads a debate in context (/read/<debate id>), and their security headers.

The search page is static HTML, CSS and a little JavaScript (service/static/) that
calls the JSON API; nothing is built. /read/<debate id> is built here from the
store, every value escaped (`html.escape`, ids in URLs percent-encoded), with
no script at all: each passage is an element whose id is the passage id, so
`/read/<debate id>#<passage id>` (the id percent-encoded) scrolls to it and CSS
`:target` marks it. Security headers:

- Every page gets a strict Content-Security-Policy: scripts, styles and
  requests from this origin only, no inline script.
- `/` and `/read/...` may be framed by this origin only (frame-ancestors 'self', and
  X-Frame-Options for old browsers).
- `/embed` may also be framed by the configured allowed origins
  (HANSARD_ALLOWED_ORIGINS), and by no one else.

/docs is Swagger UI from the files the fastapi-offline package ships (served
at /static/swagger/), under the same policy: it works on a machine without
internet, and loads nothing from another site.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from pathlib import Path
from typing import Optional
from urllib.parse import quote

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from indexer.sources.records import Passage
from indexer.store.base import DebateHeading
from service.routes import Leased

STATIC = Path(__file__).parents[1] / "static"  # service/static
SWAGGER_UI = Path(fastapi_offline.__file__).parent / "static"  # swagger-ui-bundle.js, swagger-ui.css
_PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; object-src 'none'"
)


def frame_ancestors(allowed_origins: list[str]) -> str:
    """The CSP frame-ancestors source list for /embed: this origin plus the allowed ones."""
    if "*" in allowed_origins:
        return "*"
    return " ".join(["'self'", *allowed_origins])


def page_headers(frame_sources: str) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": f"{_PAGE_POLICY}; frame-ancestors {frame_sources}",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }
    if frame_sources == "'self'":
        headers["X-Frame-Options"] = "SAMEORIGIN"
    return headers


def _page(layout: str) -> str:
    html = (STATIC / "page.html").read_text(encoding="utf-8")
    return html.replace('data-layout="full"', f'data-layout="{layout}"', 1)


def web_router(allowed_origins: list[str]) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    full_page, embed_page = _page("full"), _page("embed")
    docs_page = (STATIC / "docs.html").read_text(encoding="utf-8")
    embed_frames = frame_ancestors(allowed_origins)

    @router.get("/", response_class=HTMLResponse)
    def search_page() -> HTMLResponse:
        return HTMLResponse(full_page, headers=page_headers("'self'"))

    @router.get("/embed", response_class=HTMLResponse)
    def embed_page_route() -> HTMLResponse:
        # The query string (?q=&house=...) is read by the page's script.
        return HTMLResponse(embed_page, headers=page_headers(embed_frames))

    @router.get("/docs", response_class=HTMLResponse)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(docs_page, headers=page_headers("'self'"))

    @router.get("/embed.js")
    def embed_script() -> FileResponse:
        return FileResponse(STATIC / "embed.js", media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})

    @router.get("/read/{debate_id:path}", response_class=HTMLResponse)
    def read_page(s: Leased, debate_id: str) -> HTMLResponse:
        from service.routes.records import MAX_DEBATE_PASSAGES, debate_passages

        passages = debate_passages(s, debate_id)
        if not passages:
            return HTMLResponse(_not_found_page(debate_id), status_code=404, headers=page_headers("'self'"))
        cut = len(passages) > MAX_DEBATE_PASSAGES
        passages = passages[:MAX_DEBATE_PASSAGES]
        first = passages[0]
        day = s.debates_on(first.date) if first.date else []
        return HTMLResponse(read_html(debate_id, passages, day, cut), headers=page_headers("'self'"))

    # The page links /favicon.svg; browsers (and bookmarks, feed readers) also ask for /favicon.ico unprompted.
    @router.get("/favicon.svg")
    @router.get("/favicon.ico")
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml",
                            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})

    return router


# ---------------------------------------------------------------- /read/<debate id>

HOUSE_NAMES = {"commons": "House of Commons", "lords": "House of Lords"}
SECTION_NAMES = {
    "debates": "Debates", "lords": "Debates", "westminhall": "Westminster Hall", "wrans": "Written answers",
    "wms": "Written statements", "standing": "Public Bill Committee", "grand-committee": "Grand Committee",
}


def _e(value) -> str:
    return escape(str(value), quote=True)


def read_url(debate_id: str, passage_id: Optional[str] = None) -> str:
    """/read/<debate id>[#<passage id>], both percent-encoded (slashes and "#" included)."""
    return f"/read/{quote(debate_id, safe='')}" + (f"#{quote(passage_id, safe='')}" if passage_id else "")


def _long_date(day: dt.date) -> str:
    return f"{day.day} {day:%B %Y}"


def _column_label(p: Passage) -> Optional[str]:
    c = p.column
    return f"Column {c.start}{c.suffix or ''}" if c.start is not None else None


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en-GB">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)} · hansard-search</title>\n"
        '<link rel="icon" href="/favicon.svg" type="image/svg+xml">\n'
        '<link rel="stylesheet" href="/static/app.css">\n<link rel="stylesheet" href="/static/read.css">\n'
        '</head>\n<body data-layout="read">\n<header class="masthead">\n  <a class="brand" href="/">hansard-search</a>\n'
        '  <span class="tagline">What was said in Parliament, by whom, and where it is printed</span>\n</header>\n'
        f"<main>\n{body}</main>\n</body>\n</html>\n"
    )


def _not_found_page(debate_id: str) -> str:
    shown = debate_id if len(debate_id) <= 200 else debate_id[:197] + "..."
    return _document("No such debate", f'<h1 class="debate-title">No such debate</h1>\n<p>No debate has the id <code>{_e(shown)}</code>. '
                     '<a href="/">Search</a> for it instead.</p>\n')


def _day_nav(debate_id: str, first: Passage, day: list[DebateHeading]) -> str:
    """Links to the debates before and after this one on the same day, in the same house and section."""
    same = [d for d in day if d.house == first.house and d.section == first.section]
    ids = [d.id for d in same]
    if debate_id not in ids:
        return ""
    i = ids.index(debate_id)
    links = []
    if i > 0:
        links.append(f'<a class="prev" rel="prev" href="{_e(read_url(same[i - 1].id))}">← {_e(same[i - 1].title or "Previous debate")}</a>')
    if i + 1 < len(same):
        links.append(f'<a class="next" rel="next" href="{_e(read_url(same[i + 1].id))}">{_e(same[i + 1].title or "Next debate")} →</a>')
    if not links:
        return ""
    return f'<nav class="day-nav" aria-label="Debates of the same day">{"".join(links)}</nav>\n'


def read_html(debate_id: str, passages: list[Passage], day: list[DebateHeading], cut: bool = False) -> str:
    """The page of one debate: its speeches in order, each passage addressable (id = the passage id)."""
    first = passages[0]
    title = first.debate or "Untitled debate"
    meta = [HOUSE_NAMES.get(first.house or "", first.house or ""), first.chamber or SECTION_NAMES.get(first.section or "", first.section or "")]
    meta = [m for m in dict.fromkeys(meta) if m]
    if first.date:
        meta.append(f'<time datetime="{first.date.isoformat()}">{_e(_long_date(first.date))}</time>')
    head = [f'<h1 class="debate-title">{_e(title)}</h1>\n',
            f'<p class="read-meta">{" · ".join(m if m.startswith("<time") else _e(m) for m in meta)}</p>\n',
            f'<p class="read-links"><a href="/debates/{_e(quote(debate_id, safe=""))}">This debate as JSON</a></p>\n']
    nav = _day_nav(debate_id, first, day)
    body = [nav, *head]
    column = part = stamp = None
    speech: list[Passage] = []

    def flush() -> None:
        nonlocal column, part, stamp
        if not speech:
            return
        lead = speech[0]
        if lead.minor_heading and lead.debate != title and lead.minor_heading != part:
            part = lead.minor_heading
            body.append(f'<h2 class="part">{_e(part)}</h2>\n')
        label = _column_label(lead)
        if label and label != column:
            column = label
            body.append(f'<p class="column-marker">{_e(label)}</p>\n')
        classes = "speech procedural" if lead.procedural else "speech"
        body.append(f'<article class="{classes}" data-speech="{_e(lead.speech_id)}">\n')
        if lead.speaker.name or not lead.procedural:
            party = f' <span class="party">({_e(lead.speaker.party)})</span>' if lead.speaker.party else ""
            body.append(f'<p class="speaker">{_e(lead.speaker.name or "Unknown speaker")}{party}</p>\n')
        for p in speech:
            time = ""
            if p.time and p.time != stamp:
                stamp = p.time
                time = f'<time class="stamp" datetime="{_e(p.time)}">{_e(p.time)}</time>'
            body.append(f'<p class="passage" id="{_e(p.id)}"><a class="anchor" href="{_e("#" + quote(p.id, safe=""))}" '
                        f'aria-label="Link to this passage">¶</a>{time}{_e(p.text)}</p>\n')
        body.append("</article>\n")
        speech.clear()

    for p in passages:
        if speech and speech[0].speech_id != p.speech_id:
            flush()
        speech.append(p)
    flush()
    if cut:
        body.append(f'<p class="cut">This debate is longer than one page shows: the first {len(passages):,} passages are above.</p>\n')
    body.append(nav)
    date = f" ({_long_date(first.date)})" if first.date else ""
    return _document(title + date, "".join(body))


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC)


def swagger_files() -> StaticFiles:
    return StaticFiles(directory=SWAGGER_UI)
