"""Incremental updates: a newer version of a sitting replaces the older one, and equals a rebuild."""

from __future__ import annotations


import numpy as np
import pytest

from indexer.build import build_index
from indexer.store.base import Filters
from indexer.store.embedded import EmbeddedStore

from fixtures import COMMONS_WMS, LORDS_WMS, revised_sitting, speeches_in, write_day

def _contents(index: EmbeddedStore) -> dict[str, tuple]:
    return {p.id: (p.text, p.speaker.name, p.citation, p.house) for _, p in index.iter_passages()}


def _vectors(index: EmbeddedStore) -> dict[str, np.ndarray]:
    return {p.id: index.vectors_at([vec])[0] for vec, p in index.iter_passages()}


# Keyword queries the views below compare: words of these sittings, a phrase, a filter.
KEYWORD_QUERIES = ['"statement"', '"government" OR "minister" OR "department"', '"written ministerial statement"']


def _keyword_view(index: EmbeddedStore, fts: str, **filters) -> dict[str, float]:
    """Every keyword match, by passage id (vec numbers differ between an update and a rebuild), with its BM25."""
    scores, vecs = index.keyword(fts, 100_000, index.where(Filters(**filters)))
    return {p.id: round(float(s), 3) for p, s in zip(index.passages_at(vecs), scores)}


def _speech_view(index: EmbeddedStore, fts: str) -> dict[str, float]:
    scores, vecs = index.speech_keyword(fts, 100_000)
    return {p.speech_id: round(float(s), 3) for p, s in zip(index.passages_at(vecs), scores)}


def _assert_same_index(a: EmbeddedStore, b: EmbeddedStore) -> None:
    assert _contents(a) == _contents(b)
    va, vb = _vectors(a), _vectors(b)
    for pid in va:
        assert np.allclose(va[pid], vb[pid], atol=1e-5), pid
    # The keyword engine too: the same matches with the same scores, by passage and by speech, counts and facets.
    for fts in KEYWORD_QUERIES:
        assert _keyword_view(a, fts) == _keyword_view(b, fts) != {}
        assert _keyword_view(a, fts, house="commons") == _keyword_view(b, fts, house="commons")
        assert _speech_view(a, fts) == _speech_view(b, fts)
        assert a.keyword_count(fts, group="speech") == b.keyword_count(fts, group="speech")
        assert a.facet_counts("speaker", fts=fts, limit=500) == b.facet_counts("speaker", fts=fts, limit=500)


@pytest.fixture(scope="module")
def original() -> str:
    return COMMONS_WMS.read_bytes().decode("iso-8859-1")


def test_a_re_released_sitting_updates_in_place_and_equals_a_rebuild(tmp_path, original, encoder, members, monkeypatch):
    revised, ids = revised_sitting(original)
    index_dir = tmp_path / "updated"
    build_index([COMMONS_WMS, LORDS_WMS], index_dir, encoder, members)
    before = EmbeddedStore(index_dir)
    untouched = {p.id: vec for vec, p in before.iter_passages()
                 if p.speech_id not in (ids["reworded"], ids["dropped"]) and p.house == "commons"}

    embedded: list[str] = []
    real_embed = encoder.embed_batch
    monkeypatch.setattr(encoder, "embed_batch", lambda texts: embedded.extend(texts) or real_embed(texts))
    monkeypatch.setattr(encoder, "cache", None)  # the index itself must spare unchanged passages, cache or not
    summary = build_index([write_day(tmp_path / "v2", COMMONS_WMS.name, revised)], index_dir, encoder, members)

    after = EmbeddedStore(index_dir)
    assert summary.speeches_removed == 1 and summary.speeches_replaced == len(speeches_in(original)) - 1
    assert not after.speech(ids["dropped"])
    assert after.speech(ids["reworded"])[0].text.startswith("Revised: the figures have been corrected.")
    assert after.speech(ids["added"])
    assert after.speech(speeches_in(LORDS_WMS.read_bytes().decode("iso-8859-1"))[0].group(1))  # the Lords' day stays

    # Unchanged passages: same ids, vectors taken over, nothing embedded again.
    assert summary.passages_reused >= len(untouched)
    assert any(text.startswith("Revised") for text in embedded)  # the reworded speech was embedded
    assert len(embedded) == summary.passages_embedded - summary.passages_reused
    assert all(pid in {p.id for _, p in after.iter_passages()} for pid in untouched)
    assert not set(embedded) & {p.text for _, p in before.iter_passages() if p.id in untouched}

    monkeypatch.undo()
    rebuilt = tmp_path / "rebuilt"
    build_index([tmp_path / "v2" / COMMONS_WMS.name, LORDS_WMS], rebuilt, encoder, members)
    _assert_same_index(after, EmbeddedStore(rebuilt))


def test_a_newer_version_of_a_sitting_removes_what_it_no_longer_holds(tmp_path, original, encoder, members):
    revised, ids = revised_sitting(original)
    newer = revised.replace("uk.org.publicwhip/wms/2009-10-26c.", "uk.org.publicwhip/wms/2009-10-26d.")
    index_dir = tmp_path / "updated"
    build_index([COMMONS_WMS, LORDS_WMS], index_dir, encoder, members)
    old_commons = {p.speech_id for _, p in EmbeddedStore(index_dir).iter_passages() if p.house == "commons"}

    summary = build_index([write_day(tmp_path / "v-d", "ministerial2009-10-26d.xml", newer)], index_dir, encoder, members)
    after = EmbeddedStore(index_dir)
    held = {p.speech_id for _, p in after.iter_passages()}
    assert not held & old_commons  # every speech of version c went: renamed (d) or dropped
    assert summary.speeches_removed == len(old_commons)
    assert after.speech(ids["added"].replace("26c.", "26d."))
    assert {p.house for _, p in after.iter_passages()} == {"commons", "lords"}

    rebuilt = tmp_path / "rebuilt"
    build_index([tmp_path / "v-d" / "ministerial2009-10-26d.xml", LORDS_WMS], rebuilt, encoder, members)
    _assert_same_index(after, EmbeddedStore(rebuilt))


def test_re_indexing_unchanged_input_embeds_nothing_and_keeps_every_id(tmp_path, encoder, members, monkeypatch):
    index_dir = tmp_path / "index"
    build_index([COMMONS_WMS, LORDS_WMS], index_dir, encoder, members)
    before = _contents(EmbeddedStore(index_dir))
    monkeypatch.setattr(encoder, "cache", None)
    monkeypatch.setattr(encoder, "embed_batch", lambda texts: pytest.fail(f"embedded {len(texts)} unchanged texts"))
    summary = build_index([COMMONS_WMS, LORDS_WMS], index_dir, encoder, members)
    assert summary.passages_reused == summary.passages_embedded == len(before)
    assert _contents(EmbeddedStore(index_dir)) == before
