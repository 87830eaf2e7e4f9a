"""The embedded store's keyword engine (tantivy): filters, phrases, exclusions, totals and date order mean what they meant
in SQL, checked against the slow way (every match, filtered and counted in Python); hybrid scores every candidate
exactly; whole speeches are documents too."""

from __future__ import annotations

import re

import numpy as np
import pytest

from indexer.store.base import FIELD_WEIGHTS, Filters, fts_phrase
from indexer.store.embedded import EmbeddedStore
from indexer.store.words import stems
from service.search.ranking import hybrid

EVERYTHING = 100_000


@pytest.fixture(scope="module")
def index(small_index) -> EmbeddedStore:
    return EmbeddedStore(small_index)


def _all(index: EmbeddedStore, fts: str, where=None) -> dict[int, float]:
    scores, vecs = index.keyword(fts, EVERYTHING, where or index.where(Filters()))
    return dict(zip(vecs.tolist(), scores.tolist()))


FILTERS = [
    Filters(speaker="lucas"), Filters(speaker="LORD"), Filters(party="lab"), Filters(house="lords"),
    Filters(section="westminhall"), Filters(date_from="2009-10-27"), Filters(date_to="2009-10-26", house="commons"),
    Filters(debate="lone parents"), Filters(debate="bill"), Filters(person_id="11798"), Filters(speaker="nobody at all"),
]


@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: str(f.model_dump(exclude_none=True)))
def test_a_filter_inside_the_ranking_keeps_exactly_the_matches_sql_allows(index, filters):
    fts = " OR ".join(fts_phrase(w) for w in ("government", "statement", "money", "cameras"))
    where = index.where(filters)
    allowed = set(index.matching(where).tolist())  # the filter in SQL, on the passages table
    unfiltered = _all(index, fts)
    expected = {vec: score for vec, score in unfiltered.items() if vec in allowed}
    filtered = _all(index, fts, where)
    assert filtered.keys() == expected.keys()
    assert all(filtered[v] == pytest.approx(expected[v], rel=1e-5) for v in filtered)  # filters score nothing
    top = index.keyword(fts, 5, where)[1].tolist()
    assert top == sorted(expected, key=lambda v: (-expected[v], v))[:5] or \
        [round(expected[v], 4) for v in top] == sorted((round(s, 4) for s in expected.values()), reverse=True)[:5]
    assert index.keyword_count(fts, where) == len(expected)
    speeches = {p.speech_id for p in index.passages_at(list(expected))}
    assert index.keyword_count(fts, where, "speech") == len(speeches)
    debates = {(p.date, p.debate) for p in index.passages_at(list(expected))}
    assert index.keyword_count(fts, where, "debate") == len(debates)


def test_a_phrase_is_exact_and_an_excluded_word_is_nowhere(index):
    phrased = index.where(Filters(), phrases=["carbon footprint"])
    by_text = {vec for vec, p in index.iter_passages() if "carbon footprint" in p.text.lower()}
    assert set(index.matching(phrased).tolist()) == by_text and len(by_text) == 2
    assert index.count(phrased) == 2 and index.count(phrased, "speech") == len({p.speech_id for p in index.passages_at(list(by_text))})

    stem = stems("surveillance")[0]
    excluded = index.where(Filters(), excluded=["surveillance"])
    holding = {vec for vec, p in index.iter_passages()
               if stem in stems(" ".join(filter(None, (p.text, p.debate, p.speaker.name))))}
    assert holding and set(index.matching(excluded).tolist()) == set(range(len(index))) - holding
    assert not set(_all(index, '"cameras" OR "surveillance"', excluded)) & holding


def test_date_order_sorts_every_match_then_pages(index):
    fts = '"government" OR "policy"'
    matches = _all(index, fts)
    dates = {vec: p.date for vec, p in zip(matches, index.passages_at(list(matches)))}
    expected = sorted(matches, key=lambda v: (dates[v].toordinal() if dates[v] else -1, -matches[v], v))
    _, oldest = index.keyword(fts, 30, order="date")
    assert oldest.tolist() == expected[:30]
    _, page_two = index.keyword(fts, 10, order="date", offset=10)
    assert page_two.tolist() == expected[10:20]
    newest = sorted(matches, key=lambda v: (-(dates[v].toordinal() if dates[v] else -1), -matches[v], v))
    assert index.keyword(fts, 15, order="-date")[1].tolist() == newest[:15]


def test_facets_over_all_matches_count_what_sql_counts(index):
    fts = '"biofuels" OR "cameras"'
    where = index.where(Filters(house="commons"))
    vecs = np.array(sorted(_all(index, fts, where)))
    for facet in ("speaker", "party", "month", "debate"):
        assert index.facet_counts(facet, where=where, fts=fts, limit=500) == index.facet_counts(facet, vecs=vecs, limit=500)


def test_hybrid_gives_every_candidate_its_real_bm25(index, encoder):
    fts = '"deforestation" OR "palm" OR "oil"'
    query = encoder.encode_query("palm oil and deforestation")
    everything = _all(index, fts)
    _, dense_vecs = index.dense(query, 20)
    scores = index.keyword_scores(fts, dense_vecs, FIELD_WEIGHTS)
    assert [round(float(s), 4) for s in scores] == [round(everything.get(int(v), 0.0), 4) for v in dense_vecs]
    # A dense candidate outside the keyword list's top 20 still gets its own score, not the list's floor.
    top_keyword = set(index.keyword(fts, 20)[1].tolist())
    outside = [v for v in dense_vecs.tolist() if v not in top_keyword and everything.get(v, 0) > 0]
    assert outside, "the test needs a dense candidate that holds a query word but is not among the keyword top 20"
    fused, vecs, _ = hybrid(index, query, fts, 20, index.where(Filters()))
    assert set(outside) <= set(vecs.tolist())
    with pytest.raises(ValueError, match="weights"):
        index.keyword(fts, 5, weights=(1.0, 1.0, 1.0))  # written into the index: others are refused, not ignored


def test_whole_speeches_are_documents_too(index):
    assert index.speech_keywords.searcher.num_docs == index.manifest.speeches
    # A speech whose words are in different paragraphs: as a document it holds them all.
    speeches: dict[str, list] = {}
    for _, p in index.iter_passages():
        speeches.setdefault(p.speech_id, []).append(p)
    words = re.compile(r"[a-z]{6,}")
    for speech_id, parts in speeches.items():
        if len(parts) < 2:
            continue
        first, second = (set(words.findall(p.text.lower())) for p in parts[:2])
        only_first = sorted(w for w in first - second if index.keyword_count(fts_phrase(w)) <= 3)
        only_second = sorted(w for w in second - first if index.keyword_count(fts_phrase(w)) <= 3)
        if only_first and only_second:
            break
    else:
        pytest.fail("no speech with rare words in two different paragraphs")
    fts = f"{fts_phrase(only_first[0])} OR {fts_phrase(only_second[0])}"
    scores, vecs = index.speech_keyword(fts, 5)
    best = index.passages_at(vecs[:1])[0]
    assert best.speech_id == speech_id and best.position == 0  # named by its first passage
    for word in (only_first[0], only_second[0]):  # both words count for the speech (no one paragraph holds both)
        alone, alone_vecs = index.speech_keyword(fts_phrase(word), 5)
        assert alone_vecs[0] == vecs[0] and alone[0] < scores[0]
    # A long text as "more like this": its own speech comes first, fast, whatever its length.
    text = " ".join(p.text for p in parts)
    _, similar = index.more_like_this(text, 5)
    assert index.passages_at(similar[:1])[0].speech_id == speech_id
    _, lords = index.more_like_this(text, 50, index.where(Filters(house="lords")))
    assert all(p.house == "lords" for p in index.passages_at(lords))
