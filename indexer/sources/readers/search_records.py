"""Parliament's own search records: the Solr JSON behind its contribution pages -> speeches.

A file is one Solr answer, `{"responseHeader": {...}, "response": {"numFound",
"start", "docs": [record, ...]}, "highlighting": {...}}`: a single record
(`object_<House>-<date>-<n>.json`, `numFound` 1) or one page of a result list.
A record's fields are Solr's: most are lists of strings (`memberPrinted_t:
["The Minister for Universities and Science (Mr David Willetts)"]`), a few
plain strings (`uri`, `date_dt`, `title_t`); `_t` and `_s` copies say the
same but the `_s` copies are cut at 100 characters (so only `_t` is read),
`_ses` fields are ids in Parliament's thesaurus (SES). Used here:

- `uri` (`http://hansard.intranet.data.parliament.uk/Lords/2012-12-10/1212106000156`):
  the record's identity, so the speech id (`parliament/Lords/2012-12-10/1212106000156`),
  and its house;
- `identifier_t` (`741 cc189-190WA`, beside the question's `HL3811`) or else
  `bibliographicCitation_t` (`HL Deb 10 December 2012 vol 741 cc189-190WA`): the column;
- `date_dt`, `dateOfAnswer_dt`, `session_t`, `title_t`, `departmentPrinted_t`,
  `externalLocation_uri` (the printed page on publications.parliament.uk);
- a written statement: `memberPrinted_t`, `member_ses`, `statementText_t` (else `content_t`);
- a written question: `askingMemberPrinted_t`/`askingMember_ses` and
  `questionText_t`, `answeringMemberPrinted_t`/`answeringMember_ses` and `answerText_t`.

A written question with its answer is two speeches, `<id>/question` by the
member who asked and `<id>/answer` by the minister who answered, under the
same heading and column: each passage is said by the one who said it, and
the question is the answer's neighbour in its debate (as ParlParse's
`ques`/`reply` are). Text is HTML: read with lxml's HTML parser (nothing
fetched, scripts and styles dropped), one paragraph per block, paragraphs
broken where the printed column turned joined back.

The file is untrusted: it is refused whole over `MAX_FILE_BYTES` (before it
is parsed) or when it is not such an answer; a record that is malformed is
reported, naming the file and the record, and skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Callable, Iterator, Optional
from urllib.parse import urlsplit

from lxml import etree
import lxml.html
from pydantic import ValidationError

from indexer.sources.errors import SourceError, SourceWarning, validation_message
from indexer.sources.readers.contribution import rejoin_broken, section_of
from indexer.sources.records import Paragraph, Speaker, Speech
from indexer.sources.references import Column, parse_reference
from indexer.sources.vocabulary import HOUSES

ID_PREFIX = "parliament/"
# One Solr answer of a few thousand records is a few tens of MB; parsing JSON
# costs several times its size in memory, so larger files are refused unread
# whatever --max-file-mb says.
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_TEXT_CHARS = 2_000_000  # one HTML text field (the longest real statements are tens of KB)
MAX_FIELD_CHARS = 2_000  # a name, title, identifier, date or address
MAX_URI_CHARS = 300

_HEAD = re.compile(r'^\ufeff?\s*\{\s*"(?:responseHeader|response)"\s*:')
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:T[0-9:.]+Z?)?$")
_URI_PATH = re.compile(r"^[A-Za-z0-9._~-]+(?:/[A-Za-z0-9._~-]+)*$")
_CITATION_COLUMNS = re.compile(r"\bvol\.?\s*(?P<volume>\d{1,6})\s+(?P<cols>cc?\s*\d.*)$")
_PRINTED_NAME = re.compile(r"^(?P<office>.*?)\s*\((?P<name>[^()]+)\)\s*$")
_COURTESY = re.compile(r"^(?:Mr|Mrs|Ms|Miss)\.?\s+")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BLOCKS = {
    "p", "div", "li", "ul", "ol", "dl", "dd", "dt", "table", "thead", "tbody", "tfoot", "tr", "caption",
    "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "section", "article", "hr",
}
_CELLS = {"td", "th"}
_SKIP = {"script", "style", "head", "title", "noscript", "template", "object", "iframe"}


class _Bad(ValueError):
    """One record is malformed: said once, with the field."""


def looks_like_search_records(head: str) -> bool:
    return _HEAD.match(head) is not None


def read_search_records(path: Path, text: str, report: Callable[[SourceError], None]) -> Iterator[Speech]:
    """Every record's speeches; raises SourceError when the file as a whole is not a Solr answer."""
    if len(text) > MAX_FILE_BYTES:  # characters: at least as many bytes
        raise SourceError(path, f"search records file too large: over {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        answer = json.loads(text)
    except (ValueError, RecursionError) as err:  # bad JSON, a 5,000-digit number, nesting past the stack
        where = f" (line {err.lineno}, column {err.colno})" if isinstance(err, json.JSONDecodeError) else ""
        raise SourceError(path, f"search records are not valid JSON{where}: {getattr(err, 'msg', err)}") from None
    response = answer.get("response") if isinstance(answer, dict) else None
    docs = response.get("docs") if isinstance(response, dict) else None
    if not isinstance(docs, list):
        raise SourceError(path, "not a Parliament search answer: no response.docs list of records")
    if not docs:
        report(SourceWarning(path, "search answer holds no records"))
    seen: set[str] = set()
    for number, doc in enumerate(docs, start=1):
        uri = doc.get("uri") if isinstance(doc, dict) else None
        shown = _shown(uri) if isinstance(uri, str) else "no uri"
        try:
            speeches = _record_speeches(doc, path, number, report)
        except _Bad as bad:
            report(SourceError(path, f"search record {number} ({shown}): {bad}; skipped"))
            continue
        except ValidationError as err:
            problem = validation_message(err.errors(), count_more=True, default_field="record")
            report(SourceError(path, f"search record {number} ({shown}): {problem}; skipped"))
            continue
        if speeches[0].id in seen:
            report(SourceError(path, f"search record {number} ({shown}): the same record again; skipped"))
            continue
        seen.add(speeches[0].id)
        yield from speeches


def _record_speeches(doc, path: Path, number: int, report: Callable[[SourceError], None]) -> list[Speech]:
    if not isinstance(doc, dict):
        raise _Bad(f"a record is a JSON object, not {type(doc).__name__}")
    base_id, house_of_uri = _identity(doc.get("uri"))
    citation = _first(doc, "bibliographicCitation_t")
    house = house_of_uri or _house_of_citation(citation)
    column = _column(doc, citation)
    if column is None:
        report(SourceWarning(path, f"search record {number} ({base_id}): no column reference in identifier_t "
                                   "or bibliographicCitation_t; indexed without a column reference or citation"))
        column = Column()
    date = _date(_first(doc, "date_dt", "searchDate_dt"), "date_dt")
    title = _first(doc, "title_t")
    department = _first(doc, "departmentPrinted_t")
    heading = _first(doc, "hansardHeading_t")
    major = department or (heading if heading and any(c.isalpha() for c in heading) else None)
    common = dict(
        house=house,
        major_heading=major or title,
        minor_heading=title if major else None,
        column=column,
        session=_first(doc, "session_t"),
        url=_first(doc, "externalLocation_uri"),
    )
    question, answer = _text(doc, "questionText_t"), _text(doc, "answerText_t")
    is_question = bool(question or answer or _first(doc, "uin_t") or _first(doc, "pqStatus_t"))
    if is_question:
        # A written question and its answer: two speeches, each by its own member (module docstring).
        section = "wrans"
        speeches = []
        if question:
            speeches.append(Speech(
                id=f"{base_id}/question", paragraphs=question, section=section, date=date, type="Written Question",
                speaker=_speaker(doc, "askingMember", "tablingMember"), **_own(common),
            ))
        if answer:
            answered = _date(_first(doc, "dateOfAnswer_dt"), "dateOfAnswer_dt") or date
            speeches.append(Speech(
                id=f"{base_id}/answer", paragraphs=answer, section=section, date=answered, type="Written Answer",
                speaker=_speaker(doc, "answeringMember"), **_own(common),
            ))
        if not speeches:
            raise _Bad("a written question with neither questionText_t nor answerText_t")
        return speeches
    paragraphs = _text(doc, "statementText_t") or _text(doc, "content_t")
    if not paragraphs:
        raise _Bad("no text: content_t is missing or empty")
    statement = column.suffix == "WS" or doc.get("statementText_t") is not None
    section = "wms" if statement else section_of(house, column.suffix)
    return [Speech(
        id=base_id, paragraphs=paragraphs, section=section, date=date,
        type="Written Statement" if statement else None, speaker=_speaker(doc, "member"), **common,
    )]


def _own(fields: dict) -> dict:
    """The shared fields with a column of this speech's own (question and answer must not share one object)."""
    return {**fields, "column": fields["column"].model_copy()}


def _shown(value: str) -> str:
    value = _CONTROL.sub("?", value)
    return value if len(value) <= 100 else value[:97] + "..."


def _identity(uri) -> tuple[str, Optional[str]]:
    """`http://hansard.intranet.data.parliament.uk/Lords/2012-12-10/1212106000156` -> its speech id and house."""
    if not isinstance(uri, str) or not uri.strip():
        raise _Bad("no uri: the record's identity")
    if len(uri) > MAX_URI_CHARS:
        raise _Bad(f"uri longer than {MAX_URI_CHARS} characters")
    try:
        parts = urlsplit(uri.strip())
    except ValueError:
        raise _Bad(f"uri {_shown(uri)!r} is not an address") from None
    path = parts.path.strip("/")
    if parts.scheme not in ("http", "https") or not _URI_PATH.match(path):
        raise _Bad(f"uri {_shown(uri)!r} is not a record address such as http://hansard.intranet.data.parliament.uk/Lords/2012-12-10/1212106000156")
    house = path.split("/", 1)[0].lower()
    return ID_PREFIX + path, house if house in HOUSES else None


def _values(doc: dict, key: str, limit: int = MAX_FIELD_CHARS) -> list[str]:
    """A Solr field as a list of strings (one string or a list of them); anything else is malformed."""
    value = doc.get(key)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise _Bad(f"{key} is not text")
    if any(len(item) > limit for item in items):
        raise _Bad(f"{key} is longer than {limit:,} characters")
    return items


def _first(doc: dict, *keys: str) -> Optional[str]:
    for key in keys:
        for item in _values(doc, key):
            item = _CONTROL.sub(" ", item).strip()
            if item:
                return item
    return None


def _ids(doc: dict, key: str) -> list[int]:
    value = doc.get(key)
    items = value if isinstance(value, list) else [] if value is None else [value]
    if not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 10**12 for i in items):
        raise _Bad(f"{key} is not a list of ids")
    return items


def _date(value: Optional[str], key: str) -> Optional[dt.date]:
    if value is None:
        return None
    m = _DATE.match(value)
    try:
        if not m:
            raise ValueError
        return dt.date.fromisoformat(m.group(1))
    except ValueError:
        raise _Bad(f"{key} {_shown(value)!r} is not a date") from None


def _house_of_citation(citation: Optional[str]) -> Optional[str]:
    prefix = (citation or "")[:6]
    return "commons" if prefix.startswith("HC") else "lords" if prefix.startswith("HL") else None


def _column(doc: dict, citation: Optional[str]) -> Optional[Column]:
    """`identifier_t` (`555 cc77-9WS`; a question's list also holds its `HL3811`), else the citation's columns."""
    for value in _values(doc, "identifier_t"):
        column = parse_reference(value)
        if column is not None and column.volume is not None:
            return column
    m = _CITATION_COLUMNS.search(citation or "")
    return parse_reference(f"{m['volume']} {m['cols']}") if m else None


def _speaker(doc: dict, *roles: str) -> Speaker:
    """`The Minister for Universities and Science (Mr David Willetts)` -> David Willetts, with the member's SES id."""
    for role in roles:
        printed = _first(doc, f"{role}Printed_t")
        if printed is None:
            continue
        m = _PRINTED_NAME.match(printed)
        name = _COURTESY.sub("", m["name"].strip() if m else printed) or printed
        ids = _ids(doc, f"{role}_ses")
        # Parliament's thesaurus id of the member; it names no party (party_ses is a thesaurus id too).
        return Speaker(name=name, person_id=f"parliament-ses/{ids[0]}" if len(ids) == 1 else None)
    return Speaker()


def _text(doc: dict, *keys: str) -> list[Paragraph]:
    for key in keys:
        fragments = _values(doc, key, limit=MAX_TEXT_CHARS)
        texts = [t for fragment in fragments for t in html_paragraphs(fragment, key)]
        joined = rejoin_broken(texts)
        if joined:
            return [Paragraph(text=t) for t in joined]
    return []


def html_paragraphs(html: str, key: str = "text") -> list[str]:
    """An HTML fragment's text, one string per block (`<p>`, `<li>`, a table row); never fetches anything."""
    html = _CONTROL.sub(" ", html)
    if not html.strip():
        return []
    parser = lxml.html.HTMLParser(remove_comments=True, remove_pis=True, no_network=True, huge_tree=False)
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div", parser=parser)
    except (etree.ParserError, ValueError) as err:
        raise _Bad(f"{key} is not readable HTML: {err}") from None
    if any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log):
        # libxml2 stops at 256 levels and drops the rest: words lost, so the record is refused, not cut short.
        raise _Bad(f"{key} is HTML nested too deeply to read whole")
    texts: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        text = "".join(buffer).strip()
        if text:
            texts.append(text)
        buffer.clear()

    skipping = 0
    # iterwalk, not recursion: a fragment nested thousands deep must not overflow the stack.
    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag.lower() if isinstance(el.tag, str) else None
        if event == "start":
            if skipping or tag in _SKIP:
                skipping += tag in _SKIP
                continue
            if tag in _BLOCKS:
                flush()
            elif tag == "br":
                buffer.append(" ")
            if el.text:
                buffer.append(el.text)
            continue
        if skipping:
            skipping -= tag in _SKIP
            if skipping:
                continue
        elif tag in _CELLS:
            buffer.append(" ")
        elif tag in _BLOCKS:
            flush()
        if el is not root and el.tail:
            buffer.append(el.tail)
    flush()
    return texts
