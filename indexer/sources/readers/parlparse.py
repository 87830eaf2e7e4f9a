"""ParlParse / TheyWorkForYou "scrapedxml" files -> speeches.

One reader for every collection (Commons debates, Lords, Westminster Hall,
written statements, written questions and answers, Public Bill Committees)
and both forms of the XML: the old one (`speakerid=".../member/N"`, ISO-8859-1
with an entity DTD) and the new one (`person_id`, `type`, `oral-qnum`).

The elements of a file are walked in document order. Headings set the debate
title of the speeches after them; every element's `colnum` closes the column
range of the speech before it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional

from lxml import etree
from pydantic import ValidationError

from indexer.sources.errors import SourceError, SourceWarning, SupersededFile, validation_message
from indexer.sources.members import MemberDirectory
from indexer.sources.readers.encoding import decode_strict, xml_text_codec
from indexer.sources.normalise import clean_text, normalise_time
from indexer.sources.records import Paragraph, Speaker, Speech
from indexer.sources.references import Column
from indexer.sources.references import parse_colnum

SPEECH_TAGS = {"speech", "ques", "reply"}
HEADING_TAGS = {"oral-heading", "major-heading", "minor-heading"}
# The id's namespace names the collection: uk.org.publicwhip/<namespace>/<date>...
SECTIONS = {
    "debate": "debates",
    "lords": "lords",
    "westminhall": "westminhall",
    "wrans": "wrans",
    "wms": "wms",
    "standing": "standing",
}
_ID_NAMESPACE = re.compile(r"uk\.org\.publicwhip/([a-z]+)/")
_ID_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")
_SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "in", "of", "on", "or", "the", "to", "with"}
_LATEST = re.compile(r"<publicwhip\b[^>]*?\blatest=\"(yes|no)\"")


def looks_like_parlparse(head: str) -> bool:
    return "<publicwhip" in head


def latest_flag(head: str) -> Optional[bool]:
    """The `latest` attribute of the root, read from the file's first characters."""
    m = _LATEST.search(head)
    return None if m is None else m.group(1) == "yes"


@dataclass
class _Element:
    """An element of the day in document order, reduced to what we need."""

    tag: str
    node: etree._Element
    column: Optional[int]
    column_suffix: Optional[str]


def read_parlparse(
    path: Path, members: MemberDirectory, data: Optional[bytes] = None, report: Optional[Callable[[SourceError], None]] = None
) -> Iterator[Speech]:
    """Speeches of one day's file (its bytes, when already read); `report` hears of a guessed encoding."""
    report = report or (lambda problem: None)
    root = _parse(path, path.read_bytes() if data is None else data, report)
    if root.get("latest") == "no":
        raise SupersededFile(path, "a later version of this sitting day exists (latest=\"no\")")

    elements = [
        _Element(el.tag, el, *parse_colnum(el.get("colnum")))
        for el in root
        if isinstance(el.tag, str) and (el.tag in SPEECH_TAGS or el.tag in HEADING_TAGS or el.tag == "division")
    ]
    bill = root.find("bill")
    bill_title = clean_text(bill.get("title") or "".join(bill.itertext())) if bill is not None else None
    house = _house_of(root, path)

    # The order of business is modelled in the chambers; elsewhere (written
    # answers and statements, Westminster Hall) a minor heading is a question or a debate.
    chamber = any(_namespace(e.node.get("id") or "") in ("debate", "lords") for e in elements[:50])
    headings = _Headings(committee_bill=bill_title, chamber=chamber)
    for i, element in enumerate(elements):
        el = element.node
        if element.tag in HEADING_TAGS:
            text = _heading_text(el)
            if text is not None:  # None: only a chair notice, the debate goes on under its title (and id)
                continued = bool(_CONTINUED.search(" ".join(el.itertext())))
                headings.heading(element.tag, text, gid=el.get("id") or None, continued=continued)
            continue
        if element.tag not in SPEECH_TAGS:
            continue
        try:
            speech = _speech(path, el, element, elements[i + 1 :], house, headings, members)
        except ValidationError as err:  # one bad record (an over-long id, say), not a bad file
            problem = validation_message(err.errors(), count_more=True, default_field="record")
            report(SourceError(path, f"{element.tag} {(el.get('id') or '')[:100]!r} skipped: {problem}", line=el.sourceline))
            continue
        if speech is not None:
            yield speech


class _RefuseExternal(etree.Resolver):
    """Answers every request for an external resource (DTD, entity, XInclude) with nothing, and remembers it.

    Internal entities (the old ParlParse DTD's `&mdash;`) are expanded by the
    parser; an entity declared `SYSTEM "file:///etc/passwd"` or pointing at a
    URL expands to nothing, so no file outside the input and no network
    address is ever read.
    """

    def __init__(self):
        super().__init__()
        self.refused: list[str] = []

    def resolve(self, url, public_id, context):
        shown = url or public_id or "?"
        if shown not in self.refused:
            self.refused.append(shown)
        return self.resolve_string("", context)


def _parse(path: Path, data: bytes, report: Callable[[SourceError], None]) -> etree._Element:
    # The old form declares its entities (&mdash; ...) in an internal DTD.
    codec = xml_text_codec(path, data, report)
    if codec is not None:
        # The bytes contradict the declaration (or carry a byte-order mark):
        # decode them as they are and tell the parser the text is now UTF-8.
        data = decode_strict(path, data, codec).encode("utf-8")
    parser = etree.XMLParser(
        resolve_entities=True, load_dtd=False, no_network=True, huge_tree=True, remove_comments=True,
        encoding="utf-8" if codec else None,
    )
    refuse = _RefuseExternal()
    parser.resolvers.add(refuse)
    try:
        root = etree.fromstring(data, parser, base_url=str(path))
    except etree.XMLSyntaxError as err:
        line, column = err.position if err.position else (None, None)
        message = re.sub(r", line \d+, column \d+$", "", err.msg or "cannot parse")  # the place is said once
        where = f" (column {column})" if column else ""
        raise SourceError(path, f"malformed XML{where}: {message}{_refused_note(refuse.refused, ', after')}", line=line) from err
    except etree.LxmlError as err:
        raise SourceError(path, f"cannot parse XML: {err}") from err
    if refuse.refused:
        report(SourceWarning(path, f"indexed without what its external entities name{_refused_note(refuse.refused, ':')}"))
    return root


def _refused_note(refused: list[str], lead: str) -> str:
    if not refused:
        return ""
    shown = ", ".join(repr(url[:100]) for url in refused[:3]) + (f" and {len(refused) - 3} more" if len(refused) > 3 else "")
    return f"{lead} refusing to read {shown} (external entities, DTDs and network addresses are never read)"


def _house_of(root: etree._Element, path: Path) -> Optional[str]:
    """Lords or Commons for a whole file, from what its content says."""
    for el in root.iter("speech", "ques", "reply", "major-heading", "minor-heading"):
        ident = el.get("id") or ""
        namespace = _namespace(ident)
        if namespace == "lords":
            return "lords"
        if namespace in ("debate", "westminhall", "standing"):
            return "commons"
        if "/lord/" in (el.get("speakerid") or ""):
            return "lords"
        if "/member/" in (el.get("speakerid") or ""):
            return "commons"
        url = el.get("url") or ""
        if "/ldhansrd/" in url or "/pa/ld" in url:
            return "lords"
        if "/cmhansrd/" in url or "/pa/cm" in url:
            return "commons"
    # New-form written answers and statements say nothing of the house in
    # their content; TheyWorkForYou's own file names do.
    return "lords" if path.name.startswith("lords") else "commons"


def _namespace(ident: str) -> Optional[str]:
    m = _ID_NAMESPACE.search(ident)
    return m.group(1) if m else None


_CHAIR_NOTICE = re.compile(r"\[[^\]]*\bin the Chair\]", re.IGNORECASE)
# "Report (2nd Day) (Continued)": the same business resumed after another.
_CONTINUED = re.compile(r"\s*\(\s*continued\s*\)", re.IGNORECASE)


def _heading_text(el: etree._Element) -> Optional[str]:
    text = clean_text(" ".join(el.itertext()))
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    # "[Mr Speaker in the Chair]" says who presides, not what is debated.
    text = _CHAIR_NOTICE.sub("", text)
    text = _CONTINUED.sub("", text).strip(" —-")
    # "Bill [ Lords ]", "( By Order)": spaces the XML leaves inside brackets.
    text = re.sub(r"([(\[])\s+", r"\1", text)
    text = re.sub(r"\s+([)\]])", r"\1", text)
    if not text:
        return None
    return _title_case(text)


def _title_case(text: str) -> str:
    if text.isupper() and len(text) > 3:
        # Old Commons files print department headings in capitals.
        words = text.lower().split(" ")
        text = " ".join(w if (i and w in _SMALL_WORDS) else _capitalise(w) for i, w in enumerate(words))
    return text


def _capitalise(word: str) -> str:
    """'(west' -> '(West', 'sheffield/government' -> 'Sheffield/Government'."""
    return re.sub(r"(^|[(\[/“‘\"'])([a-z])", lambda m: m.group(1) + m.group(2).upper(), word)


def _key(text: Optional[str]) -> str:
    return re.sub(r"[^a-z0-9]+", " ", (text or "").lower()).strip()


# A sitting-day note around the name of the business: "Marine and Coastal
# Access Bill [Lords] — [2nd Allocated Day]", "[Un-allotted Half Day] — Parading in Northern Ireland".
_SITTING_DAY = re.compile(r"^\[[^\]]*\bday\]\s*[—–-]\s*|\s*[—–-]\s*\[[^\]]*\bday\]$", re.IGNORECASE)
# A minor heading naming a Bill (not one of its clauses or amendments) is an item of business.
_NAMES_BILL = re.compile(r"\bBill\b")
_PART_OF_BILL = re.compile(r"^(new\s+)?(clause|schedule|amendment|lords\s+amendment|part)s?\b", re.IGNORECASE)
# Headings that group the items of business under them, even when printed as a minor heading.
_UMBRELLAS = {
    _name.lower(): _name
    for _name in (
        "Business Before Questions", "Business without Debate", "Orders of the Day", "Opposition Day",
        "Delegated Legislation", "European Union Documents", "Backbench Business", "Private Business",
    )
}
# Bills under these stay their minor heading: "Business Before Questions: Leeds City Council Bill (By Order)".
_KEEPS_BILLS = {"business before questions", "business without debate", "private business"}
# Business of its own wherever it is printed: it never belongs to the debate before it.
_STANDALONE = re.compile(
    r"^(points? of order|sittings? of the house|business of the house|regional select committee|"
    r"deferred divisions?|adjournment\b|petitions?\b\s*[—–-])",
    re.IGNORECASE,
)
_PETITION = re.compile(r"^petitions?\s*[—–-]\s*\S", re.IGNORECASE)  # "PETITION - WELLINGTON RAILWAY STATION"
_LAST_QUESTIONS = {"topical questions"}


class _Headings:
    """The heading structure of a day, followed element by element: what the current debate is called.

    `major` names the item of business (a department at question time, a Bill,
    a statement, a motion, a petition), `minor` the part of it (a question, a
    clause or amendment, a stage). Printed headings do not always say so:
    the old Commons files print everything after question time as minor
    headings under the last department, a Bill's name as a minor heading
    under the business before it, and an adjournment debate as a minor
    heading under a petition. So:

    - an oral-questions heading opens question time: its major headings are
      departments and their minor headings questions, up to the minor heading
      after "Topical Questions" (or a major heading after it), which is new business;
    - outside question time a minor heading naming a Bill (not a clause,
      schedule or amendment of it) is a new item of business, the Bill, and
      the clause and amendment headings after it are its parts; the same Bill
      again (its allocated day) goes on as that item;
    - "Business without Debate", "Delegated Legislation", "Opposition Day",
      "Orders of the Day"... group the minor headings after them, whether
      printed as major or minor; "Points of Order", "Sittings of the House",
      regional select committees and petitions are items of their own;
    - a petition ("PETITION - X") is one item: a minor heading after it is the
      next business (the adjournment debate), not part of the petition;
    - a heading that only says who is in the Chair, and the "(Continued)"
      after a resumed debate's heading, do not change the title.
    In a Public Bill Committee the Bill is the major heading throughout; in
    written answers and statements and in Westminster Hall headings are taken as printed.

    `debate_id` is the gid of the heading that opened the current debate: a
    new item of business (above), an oral-questions heading, a committee's
    major heading, each item under an umbrella heading, and every heading of
    written answers, statements and Westminster Hall. The parts of an item (a
    question at question time, a clause or amendment of a Bill, the Bill's
    next allocated day) keep it; so do chair notices (never passed here) and a
    "(Continued)" heading, which resumes the debate of that title opened earlier the same day.
    """

    def __init__(self, committee_bill: Optional[str] = None, chamber: bool = True):
        self.committee_bill = committee_bill
        self.chamber = chamber
        self.major: Optional[str] = None
        self.minor: Optional[str] = None
        self.debate_id: Optional[str] = None
        self.questions = False  # in question time
        self.last_questions = False  # at or after its last set of questions (topical)
        self._gid: Optional[str] = None  # the heading being followed
        self._continued = False
        self._opened: dict[str, str] = {}  # a debate's title (as a key) -> the id that opened it

    def heading(self, tag: str, text: str, gid: Optional[str] = None, continued: bool = False) -> None:
        self._gid, self._continued = gid, continued
        self._follow(tag, text)
        if self.debate_id is None:  # a part before any item (a file that opens mid-business): it opens one
            self._open()

    def _follow(self, tag: str, text: str) -> None:
        if self.committee_bill:
            if tag == "minor-heading":
                self.minor = text
            else:
                self.major, self.minor = (self.committee_bill if tag == "major-heading" else text), None
                self._open()
            return
        if tag == "oral-heading":
            self.major, self.minor = text, None
            self.questions, self.last_questions = True, False
            self._open()
            return
        if tag == "major-heading":
            if self.questions and self.last_questions:
                self.questions = False
            self._item(text)
            return
        # A minor heading.
        if not self.chamber:
            self.minor = text
            self._open()
            return
        if self.questions:
            if not self.last_questions:
                self.minor = text
                self.last_questions = _key(text) in _LAST_QUESTIONS
                return
            self.questions = False  # after topical questions: the next business
            self._item(text)
            return
        text = _SITTING_DAY.sub("", text) or text
        umbrella = self._umbrella(text)
        if umbrella or _STANDALONE.match(text) or (self.major and _PETITION.match(self.major)):
            self._item(text)
        elif _NAMES_BILL.search(text) and not _PART_OF_BILL.match(text) and _key(self.major) not in _KEEPS_BILLS:
            if _key(text) != _key(self.major):
                self._item(text)
            else:
                self.minor = None
        else:
            self.minor = text
            if _key(self.major) in _UMBRELLAS:  # an item the umbrella groups
                self._open()

    def _item(self, text: str) -> None:
        """A new item of business; "Business without Debate — X" is X under that heading."""
        umbrella = self._umbrella(text)
        if umbrella:
            rest = text[len(umbrella):].lstrip(" —–-:")
            self.major, self.minor = _UMBRELLAS[umbrella], (_title_case(rest) or None)
        else:
            self.major, self.minor = text, None
        self._open()

    def _open(self) -> None:
        """A debate opens at this heading, or (continued) the one of its title resumes."""
        key = _key(": ".join(p for p in (self.major, self.minor) if p))
        if self._continued and key in self._opened:
            self.debate_id = self._opened[key]
        elif self._gid:
            self.debate_id = self._gid
            self._opened.setdefault(key, self._gid)

    @staticmethod
    def _umbrella(text: str) -> Optional[str]:
        for name in _UMBRELLAS:
            if _key(text) == name or re.match(re.escape(name) + r"\s*[—–-]", text, re.IGNORECASE):
                return name
        return None


def _paragraphs(el: etree._Element) -> list[Paragraph]:
    paragraphs = []
    for child in el:
        if child.tag == "p":
            text = clean_text(" ".join(child.itertext()))
        elif child.tag == "table":
            # Written answers carry figures as tables: keep each row readable.
            rows = []
            for tr in child.iter("tr"):
                cells = [clean_text(" ".join(td.itertext())) for td in tr.iter("td", "th")]
                cells = [c for c in cells if c]
                if cells:
                    rows.append(" | ".join(cells))
            text = "; ".join(rows)
        else:
            continue
        if text:
            paragraphs.append(Paragraph(text=_tidy_inline_spacing(text)))
    return paragraphs


def _tidy_inline_spacing(text: str) -> str:
    # Joining inline elements with spaces leaves "word ," and "( a)": undo it.
    text = re.sub(r"\s+([,.;:!?)\]’”])", r"\1", text)
    return re.sub(r"([(\[‘“])\s+", r"\1", text)


def _speech(
    path: Path,
    el: etree._Element,
    element: _Element,
    following: list[_Element],
    house: Optional[str],
    headings: "_Headings",
    members: MemberDirectory,
) -> Optional[Speech]:
    ident = el.get("id")
    paragraphs = _paragraphs(el)
    if not ident or not paragraphs:
        return None
    date = _date_of(ident)
    procedural = el.get("nospeaker") == "true"
    speaker = Speaker()
    if not procedural:
        ref = el.get("person_id") or el.get("speakerid")
        person_id, party = members.resolve(ref, date)
        speaker = Speaker(name=clean_text(el.get("speakername") or "") or None, person_id=person_id, party=party)
    namespace = _namespace(ident)
    section = SECTIONS.get(namespace or "", namespace)
    return Speech(
        id=ident,
        paragraphs=paragraphs,
        speaker=speaker,
        house=house,
        section=section,
        date=date,
        time=normalise_time(el.get("time")),
        major_heading=headings.major,
        minor_heading=headings.minor,
        debate_id=headings.debate_id,
        column=_column_range(element, following, house, section),
        procedural=procedural,
        type=el.get("type") or None,
        url=el.get("url") or None,
    )


def _date_of(ident: str) -> Optional[dt.date]:
    # Committee ids carry the bill's first sitting too; the last date is this one's.
    dates = _ID_DATE.findall(ident)
    try:
        return dt.date.fromisoformat(dates[-1]) if dates else None
    except ValueError:
        return None


def _column_range(element: _Element, following: list[_Element], house: Optional[str], section: Optional[str]) -> Column:
    """From this element's colnum to the colnum at which the next one starts."""
    start = element.column
    if start is None:
        return Column(suffix=_default_suffix(house, section))
    end = start
    for nxt in following:
        if nxt.column is not None:
            if nxt.column > start and nxt.column_suffix == element.column_suffix:
                end = nxt.column
            break
    return Column(start=start, end=end, suffix=element.column_suffix or _default_suffix(house, section))


def _default_suffix(house: Optional[str], section: Optional[str]) -> Optional[str]:
    """The column series a collection is printed in when colnum does not say."""
    if section == "westminhall":
        return "WH"
    if section == "wrans":
        return "WA" if house == "lords" else "W"
    if section == "wms":
        return "WS"
    return None
