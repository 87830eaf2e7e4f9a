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
from dataclasses import dataclass, field
from typing import Callable, Iterable, Optional, Protocol, Sequence, Union

import numpy as np

from embeddings.encoder import ModelInfo
from indexer.query import Filters, ParsedQuery
from indexer.sources.records import Passage

# What results can be counted by, and grouped by; each store's Dialect maps
# these names to its own SQL expressions.
FACET_NAMES = ("speaker", "party", "house", "section", "month", "year", "debate")
GROUPS = ("passage", "speech", "debate")


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
class Where:
    """A store's SQL condition on `passages p`, with its parameters; empty means every passage."""

    sql: str = ""
    params: tuple = ()

    def __bool__(self) -> bool:
        return bool(self.sql)

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
    phrase: Callable[[str], tuple[str, tuple]]
    excluded: Callable[[list[str]], tuple[str, tuple]]
    facets: dict[str, str] = field(default_factory=dict)  # FACET_NAMES -> expression on `passages p`
    groups: dict[str, str] = field(default_factory=dict)  # GROUPS -> expression


def where_clause(dialect: Dialect, filters: Filters, query: Optional[ParsedQuery] = None,
                 speech_id: Optional[str] = None) -> Where:
    """Exact filters, the query's phrase and exclusion constraints, and (speech_id) one speech only, as SQL."""
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
    for sql, values in [dialect.phrase(phrase) for phrase in (query.phrases if query else ())] + (
            [dialect.excluded(query.excluded)] if query and query.excluded else []):
        parts.append(sql)
        params.extend(values)
    return Where(" AND ".join(f"({part})" for part in parts), tuple(params))


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

    def where(self, filters: Filters, query: Optional[ParsedQuery] = None, speech_id: Optional[str] = None) -> Where:
        """Exact filters, the query's phrases and exclusions, and (speech_id) one speech only, as a condition."""

    def count(self, where: Where, group: str = "passage") -> int:
        """Passages (or speeches, or debates: `group`) `where` allows."""

    def by_date(self, where: Where, limit: int, newest_first: bool = True) -> np.ndarray: ...

    def dense(self, query: np.ndarray, k: int, where: Where = Where()) -> tuple[np.ndarray, np.ndarray]:
        """(cosine scores, vec ids) of the k passages nearest the query among those `where` allows, best first.

        A selective filter still fills the page: k results whenever k passages are allowed.
        """

    def keyword(self, fts_query: str, k: int, where: Where = Where(), weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
                order: str = "relevance", offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(scores, vec ids) of passages matching a keyword query (`indexer.query.fts_phrase`s joined by OR)."""

    def keyword_count(self, fts_query: str, where: Where = Where(), group: str = "passage") -> int: ...

    def hybrid(self, query: np.ndarray, fts_query: str, k: int, where: Where, dense_weight: float,
               weights: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, bool]:
        """Dense and keyword candidates (k of each), fused by a weighted sum of min-max normalised scores.

        Returns (scores, vec ids, exhausted): exhausted when neither list could give k.
        """

    def facet_counts(self, facet: str, vecs: Optional[np.ndarray] = None, where: Where = Where(),
                     fts: Optional[str] = None, limit: int = 50) -> list[tuple]:
        """(value, count) of a facet (FACET_NAMES) over given passages, or over those `where` (and `fts`) match."""

    def passages_at(self, vecs: Sequence[int]) -> list[Passage]: ...
    def passage(self, passage_id: str) -> Optional[Passage]: ...
    def speech(self, speech_id: str) -> list[Passage]: ...
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
        """These speeches, and every speech of these sittings, are replaced by the passages given."""

    def remove(self, speech_ids: Iterable[str]) -> int:
        """These speeches go; returns how many were held."""

    def commit(self) -> StoreDescription:
        """Make the writes visible (if any) and describe the store as it now is."""
