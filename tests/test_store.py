"""Building, updating and opening index directories."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from indexer.build import BuildError, build_index
from indexer.store import StoreError
from indexer.store.embedded import CURRENT, MANIFEST, EmbeddedStore
from indexer.store.embedded.layout import FORMAT_VERSION
from indexer.store import ModelMismatch
from service.search import SearchRequest, Searcher

from fixtures import CONTRIBUTION_PAGE, XML

LORDS_WMS = XML / "2009-10_lordswms" / "lordswms2009-10-26a.xml"
LORDS_WMS_2 = XML / "2009-10_lordswms" / "lordswms2009-10-27a.xml"


def test_manifest_records_model_and_counts(small_index, encoder):
    index = EmbeddedStore(small_index)
    manifest = index.manifest
    assert manifest.model == {"name": "all-MiniLM-L6-v2", "version": encoder.info.version}
    assert manifest.dimension == 384
    assert manifest.passages == index.vectors.ntotal == len(list(index.iter_passages()))
    assert manifest.speeches == len({p.speech_id for _, p in index.iter_passages()})
    assert manifest.built_at and manifest.format_version == FORMAT_VERSION


def test_vectors_are_unit_length(small_index):
    index = EmbeddedStore(small_index)
    norms = np.linalg.norm(index.vectors_at(list(range(0, len(index), 50))), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-4)


def test_speech_passages_come_back_in_order(small_index):
    index = EmbeddedStore(small_index)
    passages = index.speech("uk.org.publicwhip/westminhall/2009-10-27a.1.2")
    assert len(passages) > 3
    assert [p.position for p in passages] == list(range(len(passages)))
    assert [p.id for p in passages] == [f"uk.org.publicwhip/westminhall/2009-10-27a.1.2#{n}" for n in range(len(passages))]


def test_adding_files_keeps_what_is_indexed(tmp_path, encoder, members):
    index_dir = tmp_path / "index"
    first = build_index([LORDS_WMS], index_dir, encoder, members)
    second = build_index([LORDS_WMS_2], index_dir, encoder, members)
    assert second.speeches_kept == first.speeches
    assert second.passages == first.passages + second.passages_embedded
    assert len(EmbeddedStore(index_dir)) == second.passages
    ids = {p.speech_id for _, p in EmbeddedStore(index_dir).iter_passages()}
    assert "uk.org.publicwhip/wms/2009-10-26a.87.1" in ids
    assert any(i.startswith("uk.org.publicwhip/wms/2009-10-27a") for i in ids)


def test_reindexing_a_file_replaces_its_speeches_without_duplicates(tmp_path, encoder, members):
    index_dir = tmp_path / "index"
    first = build_index([LORDS_WMS], index_dir, encoder, members)
    again = build_index([LORDS_WMS], index_dir, encoder, members)
    assert again.speeches_replaced == first.speeches
    assert again.passages == first.passages
    index = EmbeddedStore(index_dir)
    ids = [p.id for _, p in index.iter_passages()]
    assert len(ids) == len(set(ids)) == first.passages


def test_kept_passages_keep_their_vectors(tmp_path, encoder, members):
    index_dir = tmp_path / "index"
    build_index([LORDS_WMS], index_dir, encoder, members)
    before = EmbeddedStore(index_dir)
    vecs = {p.id: vec for vec, p in before.iter_passages()}
    pid = "uk.org.publicwhip/wms/2009-10-26a.87.1#0"
    old_vector = before.vectors_at([vecs[pid]])[0]
    build_index([LORDS_WMS_2], index_dir, encoder, members)
    after = EmbeddedStore(index_dir)
    new_vec = {p.id: vec for vec, p in after.iter_passages()}[pid]
    assert np.allclose(after.vectors_at([new_vec])[0], old_vector)


def test_unchanged_input_embeds_nothing_new(tmp_path, encoder, members, monkeypatch):
    build_index([LORDS_WMS], tmp_path / "a", encoder, members)

    def no_model(*args, **kwargs):
        raise AssertionError("the model was asked to embed text that is in the cache")

    monkeypatch.setattr(encoder, "embed_batch", no_model)
    summary = build_index([LORDS_WMS], tmp_path / "b", encoder, members, rebuild=True)
    assert summary.passages > 0


def test_rebuild_starts_afresh(tmp_path, encoder, members):
    index_dir = tmp_path / "index"
    build_index([LORDS_WMS], index_dir, encoder, members)
    build_index([CONTRIBUTION_PAGE], index_dir, encoder, members, rebuild=True)
    assert {p.speech_id.split("/")[0] for _, p in EmbeddedStore(index_dir).iter_passages()} == {"contribution"}


def test_a_failed_build_leaves_the_previous_index_serving(tmp_path, encoder, members, monkeypatch):
    index_dir = tmp_path / "index"
    build_index([LORDS_WMS], index_dir, encoder, members)
    before = (index_dir / CURRENT).read_text()

    import indexer.store.embedded.writing as writing

    def broken_write(*args):
        raise OSError("disk full")

    monkeypatch.setattr(writing.faiss, "write_index", broken_write)
    with pytest.raises(OSError):
        build_index([LORDS_WMS_2], index_dir, encoder, members)
    monkeypatch.undo()
    assert (index_dir / CURRENT).read_text() == before
    searcher = Searcher.open(index_dir, encoder)
    page = searcher.search(SearchRequest("public protection arrangements", k=1))
    assert page.hits[0].passage.date.isoformat() == "2009-10-26"
    # and the next run completes and cleans up the half-written version
    build_index([LORDS_WMS_2], index_dir, encoder, members)
    assert not [p for p in index_dir.iterdir() if p.name.startswith(".building")]
    versions = [p.name for p in index_dir.iterdir() if p.name.startswith("v-")]
    assert len(versions) <= 2 and (index_dir / "CURRENT").read_text().strip() in versions  # live + the one it replaced


def test_nothing_to_index_is_an_error_and_changes_nothing(tmp_path, encoder, members):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(BuildError, match="nothing to index"):
        build_index([empty], tmp_path / "index", encoder, members)
    assert not (tmp_path / "index" / CURRENT).exists()


def _copy(index_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(index_dir, copy)
    return copy, copy / (copy / CURRENT).read_text().strip()


def test_an_index_from_another_model_is_refused(small_index, tmp_path, encoder, members):
    copy, version = _copy(small_index, tmp_path)
    manifest = json.loads((version / MANIFEST).read_text())
    manifest["model"]["name"] = "all-mpnet-base-v2"
    (version / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelMismatch, match="all-mpnet-base-v2"):
        Searcher.open(copy, encoder)
    with pytest.raises(BuildError, match="--rebuild"):
        build_index([LORDS_WMS], copy, encoder, members)


def _hostile_docmap(path: Path) -> None:
    """A docmap of the right size whose last document number would make a table of 10^12 entries."""
    rows = np.load(path)
    rows[-1, 1] = 10**12
    with open(path, "wb") as f:
        np.save(f, rows)
    manifest = json.loads((path.parents[2] / MANIFEST).read_text())
    manifest["files"]["keywords/passages/docmap.npy"] = path.stat().st_size  # the size checks out: only the content lies
    (path.parents[2] / MANIFEST).write_text(json.dumps(manifest))


def _hostile_array(version: Path, name: str, change) -> None:
    """One of the version's .npy files rewritten by `change`, at a size the manifest is told: only the content lies."""
    rows = np.load(version / name)
    change(rows)
    with open(version / name, "wb") as f:
        np.save(f, rows)
    manifest = json.loads((version / MANIFEST).read_text())
    manifest["files"][name] = (version / name).stat().st_size
    (version / MANIFEST).write_text(json.dumps(manifest))


def _set(index, value):
    def change(rows):
        rows[index] = value
    return change


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda copy, version: (version / MANIFEST).unlink(), "incomplete"),
        (lambda copy, version: (version / MANIFEST).write_text("{not json"), "manifest"),
        (lambda copy, version: (version / "vectors.faiss").write_bytes(b"garbage"), "vectors.faiss"),
        (lambda copy, version: (version / "passages.sqlite").write_bytes(b"garbage" * 100), "passages.sqlite"),
        (lambda copy, version: (copy / CURRENT).unlink(), "not a hansard-search index"),
        (lambda copy, version: shutil.rmtree(version / "keywords"), "has no keywords"),
        (lambda copy, version: (version / "keywords" / "passages" / "docmap.npy").write_bytes(b"garbage"),
         "keywords/passages/docmap.npy is 7 bytes"),
        (lambda copy, version: _truncate(next((version / "keywords" / "speeches").glob("*.idx"))), r"keywords/speeches/.*\.idx is"),
        (lambda copy, version: (version / "keywords" / "passages" / "meta.json").unlink(), "no keywords/passages/meta.json"),
        (lambda copy, version: _hostile_docmap(version / "keywords" / "passages" / "docmap.npy"), "damaged docmap.npy"),
        # The speeches' and titles' arrays: numbers that would index outside what they describe.
        (lambda copy, version: _hostile_array(version, "speeches.npy", _set(-1, 10**12)), "speech vectors"),
        (lambda copy, version: _hostile_array(version, "speeches.npy", _set(0, -5)), "speech vectors"),
        (lambda copy, version: _hostile_array(version, "speech-of.npy", _set(3, 10**9)), "speech vectors"),
        (lambda copy, version: _hostile_array(version, "speech-of.npy", _set(0, 1)), "speech vectors"),  # not its key's row
        (lambda copy, version: _hostile_array(version, "title-of.npy", _set(0, 10**9)), "do not describe its passages' titles"),
        (lambda copy, version: _hostile_array(version, "title-of.npy", _set(0, -7)), "do not describe its passages' titles"),
        (lambda copy, version: (version / "title-vectors.npy").unlink(), "has no title-vectors.npy"),
        (lambda copy, version: (version / "speech-vectors.faiss").write_bytes(b"garbage"), "speech-vectors.faiss is 7 bytes"),
    ],
)
def test_a_damaged_index_is_refused_with_a_clear_message(small_index, tmp_path, damage, message):
    copy, version = _copy(small_index, tmp_path)
    damage(copy, version)
    with pytest.raises(StoreError, match=message):
        EmbeddedStore(copy)


def test_above_the_threshold_the_index_is_hnsw_and_finds_what_exact_search_finds(tmp_path, small_index, monkeypatch):
    from indexer.store import Where
    from indexer.store.embedded import reading, write_index

    exact = EmbeddedStore(small_index)
    vecs = np.arange(len(exact))
    passages = exact.passages_at(vecs)
    write_index(tmp_path / "ann", passages, exact.vectors_at(vecs), exact.model, exact.title_vectors(), ann_threshold=100)
    ann = EmbeddedStore(tmp_path / "ann")
    assert ann.manifest.index_type == "hnsw-ip" and exact.manifest.index_type == "flat-ip"

    queries = exact.vectors_at(vecs[::37])  # real vectors as queries
    overlap = [len(set(ann.search(q, 10)[1]) & set(exact.search(q, 10)[1])) / 10 for q in queries]
    assert np.mean(overlap) >= 0.95

    # A broad filter goes through the index with an ID selector (forced here), and keeps to the filter.
    monkeypatch.setattr(reading, "EXACT_FILTER_LIMIT", 0)
    where = Where("p.section = ?", ("westminhall",))
    allowed = set(exact.matching(where))
    for index in (exact, ann):
        scores, found = index.dense(queries[0], 10, where)
        assert len(found) == 10 and set(found) <= allowed
        assert list(scores) == sorted(scores, reverse=True)
    assert set(exact.dense(queries[0], 10, where)[1]) == set(exact.dense_scores(queries[0], np.array(sorted(allowed)), 10)[1])
