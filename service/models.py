"""The API's request and response models (its OpenAPI schema), and the one builder of a result's JSON.

The API, the CLI's --json and the CSV/JSONL export all build results with
`result_of`, so the three say the same things of a passage.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, Optional, Union

from pydantic import BaseModel, Field

from indexer.sources.records import Cited, Passage, Speech
from indexer.sources.references import CitationQuery, Column
from indexer.store import Filters
from service.search import Hit, SearchPage
from service.search.highlight import PassageHighlight

class Highlight(BaseModel):
    start: int = Field(description="Offset of the sentence's first character in the passage text")
    end: int = Field(description="Offset just past its last character: text[start:end] is the sentence")
    text: str
    score: Optional[float] = Field(description="BM25 (by words) or cosine similarity (by meaning); null for a one-sentence passage")


class Result(Passage):
    score: float = Field(description="Relevance under the chosen mode; higher is better (cosine similarity for dense)")
    matches: Optional[int] = Field(
        default=None, description="With group_by speech or debate: passages of this group among the ranked candidates"
    )
    highlights: list[Highlight] = Field(
        default_factory=list, description="The sentence(s) of the passage that best match the query, in text order")
    marks: list[tuple[int, int]] = Field(
        default_factory=list, description="[start, end) offsets of the query's words (stemmed) in the passage text")
    highlighted_by: Optional[Literal["words", "meaning"]] = Field(
        default=None, description="How the sentences were chosen: shared words, or (none shared) nearest in meaning")


def result_of(hit: Hit, found: Optional[PassageHighlight] = None) -> Result:
    """One ranked passage as the API returns it: the passage, its score and group count, and its highlights if made."""
    return Result(
        **hit.passage.model_dump(), score=round(hit.score, 6), matches=hit.matches,
        highlights=[Highlight(**vars(sentence)) for sentence in found.sentences] if found else [],
        marks=found.marks if found else [], highlighted_by=found.by if found else None,
    )


def results_of(page: SearchPage, highlights: Optional[list[PassageHighlight]] = None) -> list[Result]:
    return [result_of(hit, highlights[n] if highlights else None) for n, hit in enumerate(page.hits)]


class SearchResponse(BaseModel):
    query: str
    total: int = Field(description="Passages (or, when grouped, speeches or debates) that match the query and filters")
    k: int
    offset: int
    mode: str
    sort: str
    group_by: str
    filters: Filters = Field(description="The filters applied: parameters and inline filters together")
    facets: Optional[dict[str, list[dict]]] = Field(
        default=None, description='With facets=...: {"party": [{"value": "Labour", "count": 12}, ...], ...}, most frequent first')
    facets_over: Optional[str] = Field(default=None, description='What the facets count: "all matches" or "top N candidates"')
    confidence: Optional[float] = Field(default=None, description=(
        "0 to 1: how likely the top results answer the query, from its best cosine and the share of its words "
        "found (calibrated: bench/weak.py); null when only filters were given"))
    weak: bool = Field(default=False, description=(
        "true when nothing matches the query well (confidence below 0.25): the results are only the nearest"))
    results: list[Result]


class SimilarResponse(BaseModel):
    seed: dict[str, Union[str, list[str], None]] = Field(
        description="The passage_id, speech_id (a list when several were given) or text asked about")
    total: int = Field(description="Passages (or speeches, when grouped) that match the filters, the seeds' speeches left out")
    k: int
    offset: int
    mode: str = Field(default="hybrid", description="hybrid, dense or keyword")
    group_by: str
    filters: Filters
    results: list[Result]


class CiteResponse(BaseModel):
    ref: str = Field(description="The citation as given")
    parsed: CitationQuery = Field(description="What it names: house, date, volume, columns and series, as read")
    total: int = Field(description="Candidate speeches found (up to k)")
    ambiguous: bool = Field(default=False, description=(
        "true when the candidates come from more than one sitting or volume: the citation lacks the date or volume to tell them apart"))
    results: list[Result] = Field(description="One passage (the first) of each speech printed in those columns, best match first")


class SpeechKey(BaseModel):
    id: str


class SpeechResponse(Cited, SpeechKey):
    passages: list[Passage] = Field(description="All of the speech's passages, in order")

    @classmethod
    def of(cls, passages: list[Passage]) -> "SpeechResponse":
        """A speech from its passages (in order, at least one)."""
        first = passages[0]
        fields = first.model_dump(exclude={"id", "speech_id", "position", "text", "time", "oscola", "links"})
        return cls(id=first.speech_id, time=first.time, passages=passages, **fields)


class DebateResponse(BaseModel):
    id: str = Field(description="The debate id: for ParlParse, the gid of the heading that opens the debate")
    title: Optional[str] = Field(description="The debate's title, as its first speech carries it")
    date: Optional[dt.date] = None
    house: Optional[str] = None
    section: Optional[str] = None
    column: Column = Field(description="The columns it is printed in: start, the first; end, the last")
    total_passages: int = Field(description="Passages given (all of the debate's unless truncated)")
    truncated: bool = Field(default=False, description="true when the debate has more passages than one answer gives")
    speeches: list[SpeechResponse] = Field(description="Its speeches in order, each with its passages")

    @classmethod
    def of(cls, debate_id: str, passages: list[Passage], truncated: bool = False) -> "DebateResponse":
        """From the debate's passages, in order (at least one)."""
        speeches: list[list[Passage]] = []
        for p in passages:
            if speeches and speeches[-1][0].speech_id == p.speech_id:
                speeches[-1].append(p)
            else:
                speeches.append([p])
        first = passages[0]
        in_series = [p.column for p in passages if p.column.start is not None and p.column.suffix == first.column.suffix]
        column = Column(
            volume=first.column.volume, suffix=first.column.suffix,
            start=min((c.start for c in in_series), default=None),
            end=max((c.end or c.start for c in in_series), default=None),
        )
        return cls(id=debate_id, title=first.debate, date=first.date, house=first.house, section=first.section,
                   column=column, total_passages=len(passages), truncated=truncated,
                   speeches=[SpeechResponse.of(s) for s in speeches])


class ModelDescription(BaseModel):
    name: str
    version: str
    dimension: int


class StatsResponse(BaseModel):
    passages: int
    speeches: int
    model: ModelDescription
    index_type: str
    format_version: int
    built_at: str
    houses: dict[str, int]
    sections: dict[str, int]
    date_from: Optional[dt.date] = None
    date_to: Optional[dt.date] = None


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "unavailable"] = Field(
        description='"ok": index loaded and searchable; "loading": up, model and index still loading; '
                    '"unavailable": up, but the index could not be loaded, or its database cannot be reached now (see message)')
    up: bool = Field(default=True, description="The process answers HTTP (always true in an answer)")
    searchable: bool
    passages: Optional[int] = None
    index_version: Optional[str] = Field(default=None, description="The index version directory being served")
    message: Optional[str] = None


class ErrorResponse(BaseModel):
    message: str
    detail: object = None


# With format=csv or jsonl, the 200 answer is a download instead of JSON.
EXPORT_RESPONSES = {200: {"content": {
    "text/csv": {"schema": {"type": "string"}, "example": "date,speaker,party,house,debate,reference,citation,url,text,...\n"},
    "application/x-ndjson": {"schema": {"type": "string"}, "example": '{"date": "2009-10-27", "speaker": "David Drew", ...}\n'},
}}}
# /search also answers format=atom with an Atom feed (service/feeds.py).
SEARCH_RESPONSES = {200: {"content": {
    **EXPORT_RESPONSES[200]["content"],
    "application/atom+xml": {"schema": {"type": "string"}, "example": '<feed xmlns="http://www.w3.org/2005/Atom">...</feed>'},
}}}


MAX_SPEECHES_PER_WRITE = 1_000


class SpeechBatch(BaseModel):
    speeches: list[Speech] = Field(min_length=1, max_length=MAX_SPEECHES_PER_WRITE,
                                   description="Speeches in the JSONL schema; an existing id is replaced")


class WriteResult(BaseModel):
    speeches_added: int = 0
    speeches_replaced: int = 0
    speeches_deleted: int = 0
    passages: int = Field(description="Passages in the index after the write")
    index_version: Optional[str] = Field(description="The version now served")


class ReloadResult(BaseModel):
    reloaded: bool = Field(description="Whether a newer version was found and loaded")
    index_version: Optional[str]
