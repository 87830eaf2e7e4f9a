"""The store's interfaces: what searching needs of a store (`Store`), what indexing needs (`StoreWriter`).

Two stores implement them:

- the embedded store (`indexer.store.embedded`): a directory holding a FAISS
  index and a SQLite file, the default, for one machine;
- PostgreSQL with pgvector (`indexer.store.postgres`), for deployments that
  outgrow one machine: many writers, read replicas, Citus sharding.

Everything above (the build, the search, the API and CLI) talks to these
interfaces through `indexer.store.open_store` / `open_writer` and does not
know which store it has. Passages are named by `vec`, an integer id the
store assigns; conditions (`Where`) are made by the store itself from
`Filters`, in its own SQL dialect (`Dialect`), by the one builder here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Optional, Protocol, Sequence, Union

import numpy as np

from pydantic import BaseModel, Field, field_validator, model_validator

from embeddings.encoder import ModelInfo
from indexer.sources.records import Passage
from indexer.sources.vocabulary import HOUSES, party_name

# What results can be counted by, and grouped by; each store's Dialect maps
# these names to its own SQL expressions.
FACET_NAMES = ("speaker", "party", "house", "section", "month", "year", "debate")
GROUPS = ("passage", "speech", "debate")



MAX_DEBATE_PASSAGES = 5_000  # what one debate read gives at most: /debates/<id> says when one is cut
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class DebateHeading:
    """One debate of a day, as the day's list of debates gives it (`Store.debates_on`)."""

    id: str
    title: Optional[str]
    house: Optional[str]
    section: Optional[str]


MAX_DAY_SPEECHES = 20_000  # what one day's list of debates reads at most


def natural_key(ident: str) -> list:
    """An id read naturally: digits as numbers ("...27a.24.3" before "...27a.24.10")."""
    return [int(part) if n % 2 else part for n, part in enumerate(_DIGITS.split(ident))]  # split alternates text, digits


def day_debates(rows: Iterable[tuple]) -> list[DebateHeading]:
    """(debate_id, debate title, house, section, speech_id) of a day's first passages -> its debates in order, each
    titled as its first speech is."""
    first: dict[str, tuple] = {}
    for debate_id, title, house, section, speech_id in rows:
        key = natural_key(speech_id)
        if debate_id not in first or key < first[debate_id][0]:
            first[debate_id] = (key, DebateHeading(debate_id, title, house, section))
    return [first[d][1] for d in sorted(first, key=natural_key)]


def debate_order(passages: Iterable[Passage]) -> list[Passage]:
    """A debate's passages in the order spoken: by speech id read naturally (a ParlParse gid: "...27a.24.3" before
    "...27a.24.10", column by column), then by position. Both stores read a debate's rows in storage order and sort them here."""

    return sorted(passages, key=lambda p: (natural_key(p.speech_id), p.position))


class Filters(BaseModel):
    """Exact restrictions on which passages may be returned; all must hold."""

    speaker: Optional[str] = Field(default=None, max_length=200, description='Speaker name, case-insensitive, partial ("Lord Alton")')
    person_id: Optional[str] = Field(default=None, max_length=100, description='ParlParse person id, e.g. "uk.org.publicwhip/person/10586" or "10586"')
    party: Optional[str] = Field(default=None, max_length=100, description='Party, case-insensitive ("Labour", "Lab", "Conservative")')
    house: Optional[str] = Field(default=None, description="commons or lords")
    section: Optional[str] = Field(default=None, max_length=50, description="debates, westminhall, wrans, wms, lords, standing, grand-committee, ...")
    date_from: Optional[dt.date] = Field(default=None, description="On or after this date (YYYY-MM-DD)")
    date_to: Optional[dt.date] = Field(default=None, description="On or before this date (YYYY-MM-DD)")
    debate: Optional[str] = Field(default=None, max_length=200, description="Words that must all appear in the debate title")

    @field_validator("speaker", "person_id", "party", "section", "debate", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        if isinstance(value, str):
            value = " ".join(value.split())
            return value or None
        return value

    @field_validator("house", mode="before")
    @classmethod
    def _house(cls, value):
        if value is None or value == "":
            return None
        house = str(value).strip().lower()
        house = {"hc": "commons", "hl": "lords", "house of commons": "commons", "house of lords": "lords"}.get(house, house)
        if house not in HOUSES:
            raise ValueError(f"house must be one of {', '.join(HOUSES)}, not {value!r}")
        return house

    @field_validator("person_id")
    @classmethod
    def _person(cls, value):
        if value and value.isdigit():
            return f"uk.org.publicwhip/person/{value}"
        return value

    @field_validator("party")
    @classmethod
    def _party(cls, value):
        return party_name(value) if value else None

    @field_validator("section")
    @classmethod
    def _section(cls, value):
        return value.lower() if value else None

    @model_validator(mode="after")
    def _dates_in_order(self):
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")
        return self

    def merged(self, other: "Filters") -> "Filters":
        """These filters, with any field that `other` sets taken from `other`."""
        return Filters.model_validate({**self.model_dump(), **other.model_dump(exclude_none=True)})


# Keyword search's weights of passage text, debate title and speaker, for
# every store. Tuned on half of the QA set and checked on the other half
# (bench/fusion.py): weighting the title twice was the largest single gain
# (keyword nDCG@10 0.295 -> 0.390). The embedded store writes them into its
# index (whole numbers: the title is indexed twice).
FIELD_WEIGHTS = (1.0, 2.0, 1.0)


def fts_phrase(words: str) -> str:
    """A phrase of the keyword query language stores take (FTS5's): double quotes doubled inside.

    A keyword query is such phrases joined by OR; the PostgreSQL store reads
    it back into a tsquery.
    """
    return '"' + words.replace('"', '""') + '"'


class StoreError(Exception):
    """A store that cannot be used (missing, damaged, made by another model, unreachable), with the reason why."""


class ModelMismatch(StoreError):
    """The store's vectors were made by another model than the one in use."""


class StoreLocked(StoreError):
    """Another writer holds the store (the embedded store takes one writer at a time)."""


class QueryTimeout(Exception):
    """A store query ran past its deadline and was stopped."""


class StoreUnavailable(Exception):
    """The store cannot be reached now (a database down or failing over); worth retrying later."""


@dataclass
class StoreDescription:
    """What a store holds and which model made it (the embedded store's manifest.json has these fields)."""

    format_version: int
    model: dict
    dimension: int
    passages: int
    speeches: int
    index_type: str
    built_at: str
    files: Optional[dict] = None  # embedded: name -> size in bytes of each file of the version, as written

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo(name=self.model["name"], version=self.model["version"], dimension=self.dimension)


def check_model(stored: ModelInfo, location: str, model: Union[ModelInfo, str]) -> None:
    """ModelMismatch unless the store's vectors (at `location`, for messages) were made by `model`: two models' vectors do not compare.

    `model` may be just a name, to refuse a store before a slow model load.
    """
    name = model if isinstance(model, str) else model.name
    if stored.name != name or (not isinstance(model, str) and stored != model):
        raise ModelMismatch(
            f"{location} was built with {stored.key} ({stored.dimension}-d), not "
            f"{model if isinstance(model, str) else model.key}: use --model {stored.name} with it, "
            f"or --rebuild to start it afresh with {name}"
        )


@dataclass(frozen=True)
class Conditions:
    """A Where's restrictions, field by field: what a store whose keyword engine is not SQL translates (the embedded store)."""

    speech_id: Optional[str] = None
    speaker: Optional[str] = None  # partial, case-insensitive
    person_id: Optional[str] = None
    party: Optional[str] = None  # case-insensitive
    house: Optional[str] = None
    section: Optional[str] = None
    date_from: Optional[dt.date] = None
    date_to: Optional[dt.date] = None
    debate_words: tuple[str, ...] = ()  # each partial, case-insensitive, in the debate title
    phrases: tuple[str, ...] = ()  # each exactly (case aside) in the text
    excluded: tuple[str, ...] = ()  # none in the text, debate title or speaker (stemmed)

    @property
    def textual(self) -> bool:
        """Whether it restricts by what the text says (phrases, excluded words), not only by metadata."""
        return bool(self.phrases or self.excluded)


@dataclass(frozen=True)
class Where:
    """A store's SQL condition on `passages p`, with its parameters and the restrictions it was made from; empty means every passage.

    A dialect without `phrase`/`excluded` leaves those out of the SQL: its
    store applies them from `conditions` with its keyword engine.
    """

    sql: str = ""
    params: tuple = ()
    conditions: Conditions = Conditions()

    def __bool__(self) -> bool:
        return bool(self.sql) or self.conditions.textual

    def and_(self) -> str:
        return f" AND ({self.sql})" if self.sql else ""


@dataclass(frozen=True)
class Dialect:
    """How a store's SQL spells the parts of a condition that differ between stores.

    `param` is the placeholder; `contains` a case-insensitive substring test
    of a column against one parameter; `date` turns a date into the stored
    form; `phrase` gives (SQL, parameters) requiring an exact phrase in the
    text; `excluded` (SQL, parameters) refusing any of the words; `facets`
    and `groups` spell FACET_NAMES and GROUPS as expressions.
    """

    param: str
    contains: str  # with {column} and the placeholder
    date: Callable[[dt.date], object]
    phrase: Optional[Callable[[str], tuple[str, tuple]]]  # None: the store applies phrases itself
    excluded: Optional[Callable[[list[str]], tuple[str, tuple]]]  # None: likewise excluded words
    facets: dict[str, str] = field(default_factory=dict)  # FACET_NAMES -> expression on `passages p`
    groups: dict[str, str] = field(default_factory=dict)  # GROUPS -> expression

    def where(self, filters: Filters, phrases: Sequence[str] = (), excluded: Sequence[str] = (),
              speech_id: Optional[str] = None) -> Where:
        """`where_clause` in this dialect: what a store's `where` is."""
        return where_clause(self, filters, phrases, excluded, speech_id)


def where_clause(dialect: Dialect, filters: Filters, phrases: Sequence[str] = (), excluded: Sequence[str] = (),
                 speech_id: Optional[str] = None) -> Where:
    """Exact filters, phrases every passage must contain, words none may, and (speech_id) one speech only, as SQL."""
    p = dialect.param
    parts: list[str] = []
    params: list = []
    if speech_id is not None:
        parts.append(f"p.speech_id = {p}")
        params.append(speech_id)
    if filters.speaker:
        parts.append(dialect.contains.format(column="p.speaker_name"))
        params.append(f"%{like_escape(filters.speaker)}%")
    for condition, value in (
        (f"p.person_id = {p}", filters.person_id),
        (f"lower(p.party) = lower({p})", filters.party),
        (f"p.house = {p}", filters.house),
        (f"p.section = {p}", filters.section),
        (f"p.date >= {p}", filters.date_from and dialect.date(filters.date_from)),
        (f"p.date <= {p}", filters.date_to and dialect.date(filters.date_to)),
    ):
        if value:
            parts.append(condition)
            params.append(value)
    for word in (filters.debate or "").split():
        parts.append(dialect.contains.format(column="p.debate"))
        params.append(f"%{like_escape(word)}%")
    textual = [dialect.phrase(phrase) for phrase in phrases] if dialect.phrase else []
    if excluded and dialect.excluded:
        textual.append(dialect.excluded(list(excluded)))
    for sql, values in textual:
        parts.append(sql)
        params.extend(values)
    conditions = Conditions(
        speech_id=speech_id, speaker=filters.speaker, person_id=filters.person_id, party=filters.party,
        house=filters.house, section=filters.section, date_from=filters.date_from, date_to=filters.date_to,
        debate_words=tuple((filters.debate or "").split()), phrases=tuple(phrases), excluded=tuple(excluded))
    return Where(" AND ".join(f"({part})" for part in parts), tuple(params), conditions)


def column_clause(dialect: Dialect, house: Optional[str], suffix: Optional[str], volume: Optional[int],
                  date: Optional[dt.date], start: int, end: int, session: Optional[str] = None) -> tuple[str, tuple]:
    """`Store.by_column`'s condition on `passages p`: speeches' first passages printed in columns start-end.

    Of that house, series (suffix) and session, on that date or in that
    volume; a passage that lacks one of them may match on the other, not on neither.
    """
    p = dialect.param
    parts = ["p.position = 0", "p.column_start IS NOT NULL", f"p.column_start <= {p}",
             f"coalesce(p.column_end, p.column_start) >= {p}"]
    params: list = [end, start]
    parts.append("p.column_suffix IS NULL" if suffix is None else f"p.column_suffix = {p}")
    params += [] if suffix is None else [suffix]
    for column, value in (("p.house", house), ("p.session", session)):
        if value is not None:
            parts.append(f"{column} = {p}")
            params.append(value)
    day = dialect.date(date) if date is not None else None
    if day is not None and volume is not None:
        parts += [f"(p.date = {p} OR p.date IS NULL)", f"(p.volume = {p} OR p.volume IS NULL)",
                  f"(p.date = {p} OR p.volume = {p})"]
        params += [day, volume, day, volume]
    elif day is not None:
        parts.append(f"p.date = {p}")
        params.append(day)
    elif volume is not None:
        parts.append(f"p.volume = {p}")
        params.append(volume)
    return " AND ".join(parts), tuple(params)


def exact_scores(vectors_at: Callable[[np.ndarray], np.ndarray], query: np.ndarray, vecs: np.ndarray,
                 k: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of the query against the given passages' stored (unit) vectors, best first (top k if given)."""
    vecs = np.asarray(vecs, dtype=np.int64)
    if not len(vecs):
        return np.zeros(0, dtype=np.float32), vecs
    scores = vectors_at(vecs) @ query.reshape(-1).astype(np.float32)
    if k is not None and k < len(vecs):
        top = np.argpartition(-scores, k - 1)[:k]
    else:
        top = np.arange(len(vecs))
    order = top[np.argsort(-scores[top], kind="stable")]
    return scores[order], vecs[order]


def speech_vector(vectors: np.ndarray) -> np.ndarray:
    """A speech's own vector from its passages' (unit) vectors: their mean, normalised to unit length.

    Chosen by measurement over the length-weighted mean and an embedding of
    the title and opening (bench/similar.py; bench/README.md, "Find similar").
    """
    mean = np.asarray(vectors, dtype=np.float64).mean(axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


def like_escape(text: str) -> str:
    """Text to match literally inside a LIKE pattern (escape character: backslash).

    A NUL becomes U+FFFE, which no stored text holds: SQLite would end the
    pattern at the NUL (matching far too much), and PostgreSQL cannot take it.
    """
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_").replace("\x00", "\ufffe")


class Store(Protocol):
    """What searching needs of a store. Safe to share between threads."""

    manifest: StoreDescription  # model, counts, index type, when written

    @property
    def location(self) -> str: ...  # for messages: "index DIR", or "database URL" without its password

    @property
    def version(self) -> str: ...  # changes whenever the stored passages change

    @property
    def model(self) -> ModelInfo: ...

    def __len__(self) -> int: ...

    def where(self, filters: Filters, phrases: Sequence[str] = (), excluded: Sequence[str] = (),
              speech_id: Optional[str] = None) -> Where:
        """Exact filters, required phrases, excluded words, and (speech_id) one speech only, as a condition."""

    def count(self, where: Where, group: str = "passage") -> int:
        """Passages (or speeches, or debates: `group`) `where` allows."""

    def by_date(self, where: Where, limit: int, newest_first: bool = True) -> np.ndarray: ...

    def dense(self, query: np.ndarray, k: int, where: Where = Where()) -> tuple[np.ndarray, np.ndarray]:
        """(cosine scores, vec ids) of the k passages nearest the query among those `where` allows, best first.

        A selective filter still fills the page: k results whenever k passages are allowed.
        """

    def keyword(self, fts_query: str, k: int, where: Where = Where(), weights: Optional[tuple[float, float, float]] = None,
                order: str = "relevance", offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(scores, vec ids) of passages matching a keyword query (`fts_phrase`s joined by OR).

        `weights` of text, debate title and speaker: None for FIELD_WEIGHTS
        (the embedded store takes no others: they are written into its index).
        """

    def keyword_count(self, fts_query: str, where: Where = Where(), group: str = "passage") -> int: ...

    def keyword_scores(self, fts_query: str, vecs: np.ndarray,
                       weights: Optional[tuple[float, float, float]] = None) -> np.ndarray:
        """The keyword score of each given passage (0 where it holds none of the query), in the order given."""

    def dense_scores(self, query: np.ndarray, vecs: np.ndarray, k: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """(cosine scores, vec ids) of the query against the given passages, best first (top k if given).

        A store may also offer `hybrid_pushed_down`, service.search.ranking's
        hybrid done next to its data (PostgreSQL: in SQL), which is then used.
        """

    # Speeches as documents of their own. A speech is named by its key: the
    # vec of its first passage (position 0), which its keyword document and
    # its vector carry; `passages_at(keys)` reads their first passages.

    def speech_keys(self, vecs: np.ndarray) -> np.ndarray:
        """The key of each given passage's speech, in the order given."""

    def speech_vectors_at(self, keys: np.ndarray) -> np.ndarray:
        """Each given speech's own vector (`speech_vector` of its passages'), in the order given."""

    def speech_dense(self, query: np.ndarray, k: int, where: Where = Where()) -> tuple[np.ndarray, np.ndarray]:
        """(cosine scores, keys) of the k speeches whose own vectors are nearest the query, among those `where` allows.

        A speech is allowed when any of its passages is (filters other than
        phrases hold for all of a speech's passages alike).
        """

    def speech_dense_scores(self, query: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """The cosine of the query and each given speech's vector, in the order given."""

    def speech_keyword(self, fts_query: str, k: int, where: Where = Where(),
                       weights: Optional[tuple[float, float, float]] = None) -> tuple[np.ndarray, np.ndarray]:
        """(keyword scores, keys) of the k speeches whose whole text best matches a keyword query."""

    def speech_keyword_scores(self, fts_query: str, keys: np.ndarray) -> np.ndarray:
        """The keyword score of each given speech's whole text (0 where it holds none of the query), in the order given."""

    def more_like_this(self, text: str, k: int, where: Where = Where(), speeches: bool = True,
                       stopwords: frozenset = frozenset()) -> tuple[np.ndarray, np.ndarray]:
        """(keyword scores, keys) of the k speeches (or, `speeches` false, vecs of passages) most like a long text.

        The query is the text's `words.distinctive_terms` against the
        documents searched, each weighted by its tf-idf.
        """

    def context_vectors(self, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What each given passage's vector does not see, as vectors (rows in the order given).

        (title, neighbours): the embedding of its debate's title (zeros for
        none), and the mean of the vectors of the passages before and after
        it in its speech (its own vector when it has neither). The hybrid
        ranking reads the query's cosine with each (service.search.ranking).
        """

    def facet_counts(self, facet: str, vecs: Optional[np.ndarray] = None, where: Where = Where(),
                     fts: Optional[str] = None, limit: int = 50) -> list[tuple]:
        """(value, count) of a facet (FACET_NAMES) over given passages, or over those `where` (and `fts`) match."""

    def by_column(self, house: Optional[str], suffix: Optional[str], volume: Optional[int], date: Optional[dt.date],
                  start: int, end: int, limit: int, session: Optional[str] = None) -> np.ndarray:
        """Vecs of the first passages of speeches printed in columns start..end (overlapping them), best first.

        Of that series (`suffix`; None is the main chamber's) and, where
        given, that house; on that `date` or in that `volume` (a passage that
        records neither of those given is let through only when it matches
        the other). A speech's passages share its columns, so one passage
        (position 0) stands for each. Best: the speech starting at `start`
        first, then the widest overlap, then date and vec order.
        """

    def passages_at(self, vecs: Sequence[int]) -> list[Passage]: ...
    def iter_passages(self) -> Iterator[tuple[int, Passage]]: ...  # (vec, passage) of every passage, in vec order
    def passage(self, passage_id: str) -> Optional[Passage]: ...
    def speech(self, speech_id: str) -> list[Passage]: ...

    def debate(self, debate_id: str, limit: int = MAX_DEBATE_PASSAGES) -> list[Passage]:
        """The passages of one debate (`debate_id`), at most `limit`, its speeches in order (`debate_order`)."""

    def debates_on(self, date: dt.date) -> list[DebateHeading]:
        """The debates of one day, every house and section, in order (`day_debates`)."""

    def vec_of(self, passage_id: str) -> Optional[int]: ...
    def vecs_of_speech(self, speech_id: str) -> np.ndarray: ...
    def vectors_at(self, vecs: Sequence[int]) -> np.ndarray: ...
    def breakdown(self) -> dict: ...

    def deadline(self, seconds: float) -> contextlib.AbstractContextManager:
        """Within it, this thread's queries stop after `seconds` with QueryTimeout."""

    def live_version(self) -> Optional[str]:
        """The store's version now (it moves when another process writes); None when unreadable."""

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers now."""

    def close(self) -> None:
        """Let go of what it holds open (database connections); it is not used afterwards."""


@dataclass
class Replaced:
    """What one `StoreWriter.replace` did."""

    speeches_removed: list[str]  # speech ids now gone (superseded, and not written again)
    speeches_replaced: int  # speech ids written again


class StoreWriter(Protocol):
    """What indexing needs of a store: replace speeches (and whole sittings) by new passages, then commit.

    Opened by `indexer.store.open_writer` (which checks the model), used as
    a context manager; nothing is visible to readers before `commit` on the
    embedded store (one new version), while PostgreSQL commits each
    `replace` in its own transaction (a batch of whole sittings).
    """

    # How many passages to embed and hand to one `replace`: the embedded store takes all at once.
    batch_passages: Optional[int]

    def bulk(self, passages: int) -> contextlib.AbstractContextManager:
        """Within it, a load of about this many passages (PostgreSQL builds its vector index once, at the end)."""

    def held(self, speech_ids: Iterable[str], sittings: Iterable[str]) -> dict[str, tuple[str, int]]:
        """{passage id: (text, vec)} the store holds for these speeches or sittings (their vectors are reused when unchanged)."""

    def vectors_at(self, vecs: Sequence[int]) -> np.ndarray:
        """The stored vectors of `held` passages."""

    def replace(self, passages: Sequence[Passage], vectors: np.ndarray, speech_ids: Iterable[str],
                sittings: Iterable[str] = ()) -> Replaced:
        """These speeches, and every speech of these sittings, are replaced by the passages given.

        Every debate title of the passages must have its embedding: held
        already (`missing_titles` says which are not) or given by `add_titles` first.
        """

    def missing_titles(self, titles: Iterable[str]) -> set[str]:
        """Those of these debate titles whose embedding the store does not hold (nor has been given)."""

    def add_titles(self, vectors: dict[str, np.ndarray]) -> None:
        """Debate titles' embeddings (unit vectors of the store's model), for the passages written after."""

    def remove(self, speech_ids: Iterable[str]) -> int:
        """These speeches go; returns how many were held."""

    def commit(self) -> StoreDescription:
        """Make the writes visible (if any) and describe the store as it now is."""
