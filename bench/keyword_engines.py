"""Keyword engines side by side: SQLite FTS5 (today's) and tantivy, on the same passages and queries, in one run.

Run by hand (never in CI); groundwork for the keyword-engine issue (measure
before choosing). Reads passages from ParlParse folders with the project's
own readers and passage splitter (no model needed: passages are cut by the
approximate token count), indexes their text, debate title and speaker in
both engines with English stemming, then runs real queries people typed
(hansard/real-queries) the way keyword mode does: the query's words less
stop words, OR'd, BM25 with the debate title weighted twice, top 200.

    (tantivy is a dependency of the project: the embedded store's keyword engine)
    .venv/bin/python bench/keyword_engines.py ../shared/data/hansard/xml [--repeat 1] [--queries 200]

`--repeat N` copies the passages N times (other ids) to see how each engine
grows. Reports build seconds, disk, query latency (median, p90) and how far
the two engines' top 10 agree. Results: bench/results/keyword_engines.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from indexer.sources.members import MemberDirectory  # noqa: E402
from indexer.sources.passages import approximate_tokens, speech_passages  # noqa: E402
from indexer.sources.readers import discover, read_source  # noqa: E402
from load import real_queries  # noqa: E402
from service.search.query import parse_query  # noqa: E402
from service.search.ranking import BM25_WEIGHTS, STOPWORDS  # noqa: E402

TOP = 200


def passages_of(sources: list[Path]) -> list[tuple[str, str, str]]:
    """(text, debate, speaker) of every passage of the sources."""
    rows = []
    for path in discover(sources, lambda problem: None):
        try:
            for speech in read_source(path, MemberDirectory.load(None), lambda problem: None):
                for p in speech_passages(speech, 256, approximate_tokens):
                    rows.append((p.text, p.debate or "", p.speaker.name or ""))
        except Exception:  # noqa: BLE001 - a bad file is skipped here as in indexing
            continue
    return rows


def words(query: str) -> list[str]:
    terms = [t.lower() for t in parse_query(query).terms]
    return [w for w in dict.fromkeys(terms) if w not in STOPWORDS]


def build_fts5(rows, folder: Path) -> tuple[float, sqlite3.Connection]:
    started = time.perf_counter()
    db = sqlite3.connect(str(folder / "fts.sqlite"))
    db.execute("CREATE TABLE passages (vec INTEGER PRIMARY KEY, text TEXT, debate TEXT, speaker_name TEXT)")
    db.executemany("INSERT INTO passages VALUES (?, ?, ?, ?)", ((i, *r) for i, r in enumerate(rows)))
    db.execute("CREATE VIRTUAL TABLE passages_fts USING fts5(text, debate, speaker_name, content='passages', "
               "content_rowid='vec', tokenize='porter unicode61 remove_diacritics 2')")
    db.execute("INSERT INTO passages_fts (passages_fts) VALUES ('rebuild')")
    db.commit()
    return time.perf_counter() - started, db


def query_fts5(db, terms: list[str]) -> list[int]:
    match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
    rank = f"bm25(passages_fts, {', '.join(str(w) for w in BM25_WEIGHTS)})"
    rows = db.execute(f"SELECT rowid FROM passages_fts WHERE passages_fts MATCH ? ORDER BY {rank} LIMIT ?", (match, TOP))
    return [r[0] for r in rows]


def build_tantivy(rows, folder: Path):
    import tantivy

    schema = tantivy.SchemaBuilder()
    schema.add_integer_field("vec", stored=True, fast=True)
    for name in ("text", "debate", "speaker"):
        schema.add_text_field(name, stored=False, tokenizer_name="en_stem")
    schema = schema.build()
    started = time.perf_counter()
    index = tantivy.Index(schema, path=str(folder))
    writer = index.writer(heap_size=256_000_000, num_threads=1)
    for i, (text, debate, speaker) in enumerate(rows):
        writer.add_document(tantivy.Document(vec=i, text=text, debate=debate, speaker=speaker))
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    return time.perf_counter() - started, index


def query_tantivy(index, terms: list[str]) -> list[int]:
    text, debate, speaker = BM25_WEIGHTS
    query = index.parse_query(" OR ".join(f'"{t}"' for t in terms), ["text", "debate", "speaker"],
                              field_boosts={"text": text, "debate": debate, "speaker": speaker})
    searcher = index.searcher()
    hits = searcher.search(query, TOP).hits
    return [searcher.doc(address)["vec"][0] for _, address in hits]


def timed(run, queries) -> tuple[list[list[int]], list[float]]:
    results, times = [], []
    for terms in queries:
        t = time.perf_counter()
        results.append(run(terms))
        times.append((time.perf_counter() - t) * 1000)
    return results, times


def disk(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", type=Path, nargs="+")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "keyword_engines.json")
    args = parser.parse_args()

    rows = passages_of(args.sources) * args.repeat
    queries = [w for w in (words(q) for q in real_queries()[: args.queries]) if w]
    work = Path(tempfile.mkdtemp(prefix="hansard-keyword-"))
    try:
        (work / "fts5").mkdir()
        (work / "tantivy").mkdir()
        fts_build, db = build_fts5(rows, work / "fts5")
        tan_build, index = build_tantivy(rows, work / "tantivy")
        for terms in queries[:10]:  # warm both
            query_fts5(db, terms), query_tantivy(index, terms)
        fts_results, fts_ms = timed(lambda terms: query_fts5(db, terms), queries)
        tan_results, tan_ms = timed(lambda terms: query_tantivy(index, terms), queries)
        overlap = [len(set(a[:10]) & set(b[:10])) / max(1, min(10, len(a), len(b)))
                   for a, b in zip(fts_results, tan_results) if a and b]

        def summary(build, folder, ms):
            return {"build_seconds": round(build, 1), "disk_mb": disk(folder),
                    "query_ms": {"p50": round(statistics.median(ms), 2),
                                 "p90": round(statistics.quantiles(ms, n=10)[-1], 2)}}

        result = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
                  "passages": len(rows), "queries": len(queries), "top": TOP,
                  "fts5": summary(fts_build, work / "fts5", fts_ms),
                  "tantivy": summary(tan_build, work / "tantivy", tan_ms),
                  "top10_overlap_mean": round(statistics.fmean(overlap), 3) if overlap else None,
                  "ratio_tantivy_to_fts5_p50": round(statistics.median(tan_ms) / statistics.median(fts_ms), 2)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
