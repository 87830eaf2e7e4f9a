"""Ideas for better passage / speech ranking, measured as re-scorings of today's hybrid candidates.

Run by hand (never in CI) against an index of all of ../shared/data/hansard/xml:

    HANSARD_CACHE_DIR=/tmp/fullcache .venv/bin/python bench/passage_ideas.py --index /tmp/fullidx5

What it does:

* Baseline: today's hybrid (service/search/ranking.py): dense top 100 and
  BM25 top 100, the union scored by both, 0.4 * minmax(cosine) + 0.6 *
  minmax(BM25); a speech ranks by its best passage; the pool deepens x4
  until enough speeches are found (as Searcher._deep_enough does). The
  candidates (union, cosines, BM25 scores) are computed once per query and
  cached in --work (default /tmp/ideas); every idea re-scores that union,
  no index rebuild.
* Ideas (one or two parameters each, tuned on half A of each set, reported
  on half B and the whole; halves by md5(query id) parity):
  1 title: cos(q, passage) + a * cos(q, debate title embedding)
  2 neighbours: cos(q, passage) + b * max/mean cos(q, previous/next passage of the speech)
  3 procedural: fused score * c for passages a small regex rule set flags (PROCEDURAL below)
  4 party: fused score + d where a party the query names (PARTY_WORDS) is the speaker's party
  5 PRF: q' = q + e * mean(top-5 passage vectors of the baseline), dense scores recomputed
  6 speech-level: w1 * minmax(best passage fused) + w2 * minmax(speech vector cos) + w3 * minmax(speech BM25)
    over the candidate speeches
  7 contextual embeddings (debate title + speaker + text): cost measured on 500 passages;
    quality indicative only, on a subset of queries whose top candidates are re-embedded
* Sets: QA (../shared/data/hansard/eval/qa, speech level, exclude_ids removed;
  service/evaluate.py metrics) and natural-dev (30 queries; passage level,
  mapped to its paragraph ids, and speech level; its tools/evaluate.py metrics).

Results: bench/results/passage_ideas.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import pickle
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embeddings.encoder import load_encoder  # noqa: E402
from indexer.store import Location, open_store  # noqa: E402
from service.evaluate import load_queries, mrr_at, ndcg_at, recall_at  # noqa: E402
from service.search.query import parse_query  # noqa: E402
from service.search.ranking import BM25_WEIGHTS, HYBRID_DENSE_WEIGHT, MIN_POOL, keyword_query, minmax  # noqa: E402
from service.search.searcher import Searcher  # noqa: E402

EVAL = ROOT.parent / "shared" / "data" / "hansard" / "eval"
QA = EVAL / "qa"
ND = EVAL / "natural-dev"
sys.path.insert(0, str(ND / "tools"))
import evaluate as nd_eval  # noqa: E402  natural-dev's own scorer

DEPTH = 100

# ---------------------------------------------------------------- idea 3: the procedural rule set
PROCEDURAL = [
    r"^\s*I beg to move\b",
    r"\bQuestion put(,| and)? (and )?(agreed|negatived)\b",
    r"^\s*Question (put|agreed to|negatived)\b",
    r"\b(Amendment|Motion|Clause|Schedule)s?\b[^.]{0,40}\b(agreed to|negatived|withdrawn|not moved|by leave)\b",
    r"^\s*(Page|Clause|Schedule)\s+\d+,?\s+(line|page|leave|at end)",
    r"\b[Pp]age \d+, line \d+, (leave out|at end insert|after)",
    r"\bleave out\b.{0,60}\b(and insert|line \d+)",
    r"^\s*(Ordered|Resolved),?\s*$|^\s*(Ordered|Resolved), That\b",
    r"^\s*The House divided:",
    r"^\s*(Ayes|Noes) \d+",
    r"^\s*Bill (read|to be read) (a|the) (first|second|third) time",
    r"^\s*Motion (agreed|withdrawn|made)",
    r"^\s*(Sitting|House) (suspended|adjourned)",
    r"^\s*(\d+|\([a-z]+\))\s*\.?\s*Clause \d+",
]
PROCEDURAL_RE = re.compile("|".join(f"(?:{p})" for p in PROCEDURAL), re.IGNORECASE | re.MULTILINE)


def procedural(text: str) -> bool:
    """Whether a passage is procedural or statutory text by the stated rules (a short passage is enough)."""
    if PROCEDURAL_RE.search(text):
        return True
    # a list of clauses / sections: most sentences start with "Clause N" / "Section N" / "(a)"
    items = re.findall(r"(?:^|\s)(?:Clause|Section|Schedule|Regulation|Article) \d+", text)
    return len(items) >= 4 and len(text.split()) < 25 * len(items)


# ---------------------------------------------------------------- idea 4: party words
PARTY_WORDS = [
    (r"\b(conservatives?|tory|tories)\b", {"Conservative"}),
    (r"\blabour\b", {"Labour", "Labour/Co-operative", "Independent Labour"}),
    (r"\b(lib ?dems?|liberal democrats?)\b", {"Liberal Democrat"}),
    (r"\b(snp|scottish national)\b", {"Scottish National Party"}),
    (r"\b(dup|democratic unionists?)\b", {"Democratic Unionist Party"}),
    (r"\bgreens?( party| peer| mp)\b", {"Green"}),
    (r"\bplaid\b", {"Plaid Cymru"}),
    (r"\bcross-?benchers?|\bcrossbench\b", {"Crossbench"}),
    (r"\bbishops?\b", {"Bishops"}),
]
ROLE_WORDS = r"\b(minister|ministers|government spokes\w*|shadow|opposition front|frontbench)\b"
# Governing party at a date (the corpus: 2009-10 and 2022-23): what "minister" names; "shadow" the main opposition.
GOVERNMENT = [("2010-05-11", "Labour", "Conservative"), ("2024-07-05", "Conservative", "Labour")]


def government(date) -> tuple[str, str]:
    d = str(date)
    for until, gov, opp in GOVERNMENT:
        if d < until:
            return gov, opp
    return "Labour", "Conservative"


def query_parties(text: str) -> set[str]:
    out: set[str] = set()
    for pattern, names in PARTY_WORDS:
        if re.search(pattern, text, re.IGNORECASE):
            out |= names
    return out


def query_role(text: str) -> str | None:
    m = re.search(ROLE_WORDS, text, re.IGNORECASE)
    if not m:
        return None
    return "shadow" if m.group(1).lower().startswith(("shadow", "opposition")) else "minister"


# ---------------------------------------------------------------- helpers


def half(qid: str) -> str:
    return "A" if int(hashlib.md5(qid.encode()).hexdigest(), 16) % 2 == 0 else "B"


def norm(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


class Corpus:
    """Every passage's metadata and vector, by vec."""

    def __init__(self, store):
        self.store = store
        n = len(store)
        self.pid = [None] * n
        self.sid = [None] * n
        self.pos = np.zeros(n, dtype=np.int64)
        self.debate = [None] * n
        self.party = [None] * n
        self.speaker = [None] * n
        self.text = [None] * n
        self.date = [None] * n
        for vec, p in store.iter_passages():
            self.pid[vec], self.sid[vec], self.pos[vec] = p.id, p.speech_id, p.position
            self.debate[vec], self.party[vec], self.speaker[vec] = p.debate, p.speaker.party, p.speaker.name
            self.text[vec], self.date[vec] = p.text, p.date
        self.vectors = store.vectors_at(np.arange(n)).astype(np.float32)
        by_key = {(self.sid[v], int(self.pos[v])): v for v in range(n)}
        self.prev = np.array([by_key.get((self.sid[v], int(self.pos[v]) - 1), -1) for v in range(n)])
        self.next = np.array([by_key.get((self.sid[v], int(self.pos[v]) + 1), -1) for v in range(n)])
        self.proc = np.array([procedural(t) for t in self.text], dtype=bool)
        self.speech_key = np.asarray(store.speech_keys(np.arange(n)), dtype=np.int64)


# ---------------------------------------------------------------- candidates (today's hybrid, cached)


def candidates(store, searcher, corpus, vector, text, need_speeches: int, need_passages: int) -> dict:
    """The hybrid union for one query at pool 100, deepened (x4) until `need_speeches` speeches are in it."""
    parsed = parse_query(text)
    fts = keyword_query(parsed, searcher._too_common)
    out = {}
    pool = MIN_POOL
    while True:
        dense_scores, dense_vecs = store.dense(vector, pool)
        if fts:
            kw_scores, kw_vecs = store.keyword(fts, pool, weights=BM25_WEIGHTS)
        else:
            kw_scores, kw_vecs = np.zeros(0, np.float32), np.zeros(0, np.int64)
        exhausted = len(dense_vecs) < pool and len(kw_vecs) < pool
        union = np.unique(np.concatenate([dense_vecs, kw_vecs])).astype(np.int64)
        bm25 = dict(zip(kw_vecs.tolist(), kw_scores.tolist()))
        unscored = np.array([v for v in union.tolist() if v not in bm25], dtype=np.int64)
        if fts and len(unscored) and len(kw_vecs) >= pool:
            bm25.update(zip(unscored.tolist(), store.keyword_scores(fts, unscored, BM25_WEIGHTS).tolist()))
        cand = {"vecs": union, "bm25": np.array([bm25.get(v, 0.0) for v in union.tolist()], np.float32),
                "pool": pool, "fts": fts}
        if pool == MIN_POOL:
            out["p100"] = cand
        speeches = len({corpus.sid[v] for v in union.tolist()})
        if speeches >= need_speeches or exhausted or pool >= len(store):
            out["speech"] = cand
            break
        pool *= 4
    c = out["speech"]
    keys = np.unique(corpus.speech_key[c["vecs"]])
    c["skeys"] = keys
    c["s_dense"] = np.asarray(store.speech_dense_scores(vector, keys), np.float32)
    c["s_bm25"] = np.asarray(store.speech_keyword_scores(fts, keys), np.float32) if fts else np.zeros(len(keys), np.float32)
    return out


# ---------------------------------------------------------------- scoring


def fused_scores(corpus, q, c, p: dict) -> np.ndarray:
    """Today's fusion with the ideas' changes (p: parameters; all off when empty)."""
    vecs = c["vecs"]
    qv = q["vector"]
    if p.get("prf"):
        base = fused_scores(corpus, q, c, {})
        top = vecs[np.argsort(-base, kind="stable")[:5]]
        qv = norm(qv + p["prf"] * corpus.vectors[top].mean(axis=0))
    dense = corpus.vectors[vecs] @ qv
    if p.get("ctx") is not None:  # idea 7: contextual cosines for the re-embedded candidates
        dense = p["ctx"](vecs, dense)
    if p.get("title"):
        dense = dense + p["title"] * q["title_cos"](vecs)
    if p.get("nb"):
        prev, nxt = corpus.prev[vecs], corpus.next[vecs]
        pc = np.where(prev >= 0, corpus.vectors[np.maximum(prev, 0)] @ qv, np.nan)
        nc = np.where(nxt >= 0, corpus.vectors[np.maximum(nxt, 0)] @ qv, np.nan)
        both = np.vstack([pc, nc])
        with np.errstate(all="ignore"):
            agg = np.nanmax(both, axis=0) if p.get("nb_agg", "max") == "max" else np.nanmean(both, axis=0)
        agg = np.where(np.isnan(agg), dense, agg)  # a lone passage: its own score
        dense = dense + p["nb"] * agg
    fused = HYBRID_DENSE_WEIGHT * minmax(dense.astype(np.float32)) + (1 - HYBRID_DENSE_WEIGHT) * minmax(c["bm25"])
    if p.get("proc") is not None:
        fused = np.where(corpus.proc[vecs], fused * p["proc"], fused)
    if p.get("party"):
        fused = fused + p["party"] * q["party_match"](vecs)
    return fused


def rank_passages(corpus, q, c, p) -> list[int]:
    fused = fused_scores(corpus, q, c, p)
    return c["vecs"][np.argsort(-fused, kind="stable")].tolist()


def rank_speeches(corpus, q, c, p) -> list[str]:
    fused = fused_scores(corpus, q, c, p)
    order = np.argsort(-fused, kind="stable")
    vecs = c["vecs"][order]
    fs = fused[order]
    best: dict[int, float] = {}
    for v, s in zip(vecs.tolist(), fs.tolist()):
        k = int(corpus.speech_key[v])
        if k not in best:
            best[k] = s
    w = p.get("speech")
    if not w:
        return [corpus.sid[k] for k in best]
    keys = c["skeys"]
    b = np.array([best[int(k)] for k in keys.tolist()], np.float32)
    total = w[0] * minmax(b) + w[1] * minmax(c["s_dense"]) + w[2] * minmax(c["s_bm25"])
    order = np.argsort(-total, kind="stable")
    return [corpus.sid[int(keys[i])] for i in order]


def qa_metrics(runs: dict[str, list[str]], queries: list, ids: set) -> dict:
    m = {"ndcg@10": [], "recall@100": [], "mrr@10": []}
    for q in queries:
        if q.id not in ids:
            continue
        ranked = [d for d in runs[q.id] if d not in q.exclude]
        m["ndcg@10"].append(ndcg_at(ranked, q.relevant))
        m["recall@100"].append(recall_at(ranked, q.relevant))
        m["mrr@10"].append(mrr_at(ranked, q.relevant))
    return {k: round(statistics.fmean(v), 4) for k, v in m.items()} | {"n": len(m["ndcg@10"])}


def nd_metrics(runs: dict[str, list[str]], qrels: dict, ids: set, targets=None) -> dict:
    sub = {k: v for k, v in qrels.items() if k in ids}
    mean, _ = nd_eval.evaluate(runs, sub, {k: targets[k] for k in sub} if targets else None)
    return {k: round(v, 4) for k, v in mean.items()} | {"n": len(sub)}


# ---------------------------------------------------------------- natural-dev paragraph ids


def _squash(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


def paragraph_map(corpus, speech_ids: set[str]) -> dict[int, list[str]]:
    """vec -> the natural-dev paragraph ids (<speech id>#<i>) its text covers, for the given speeches."""
    paras = {}
    with lzma.open(ND / "speeches.jsonl.xz", "rt") as f:
        for line in f:
            o = json.loads(line)
            if o["id"] in speech_ids:
                paras[o["id"]] = [p["text"] for p in o["paragraphs"]]
    by_speech: dict[str, list[int]] = {}
    for v, s in enumerate(corpus.sid):
        if s in paras:
            by_speech.setdefault(s, []).append(v)
    out = {}
    for s, vecs in by_speech.items():
        vecs.sort(key=lambda v: corpus.pos[v])
        spans, joined = [], ""
        for i, t in enumerate(paras[s]):
            sq = _squash(t)
            spans.append((len(joined), len(joined) + len(sq), i))
            joined += sq
        cursor = 0
        for v in vecs:
            sq = _squash(corpus.text[v])
            at = joined.find(sq[:40], cursor) if sq else -1
            if at < 0:
                at = cursor
            end = at + len(sq)
            cover = [f"{s}#{i}" for a, b, i in spans if a < end and b > at] or [f"{s}#{min(int(corpus.pos[v]), len(spans) - 1)}"]
            out[v] = cover
            cursor = max(cursor, end)
    return out


def passage_run(corpus, ranked_vecs: list[int], pmap) -> list[str]:
    out, seen = [], set()
    for v in ranked_vecs:
        for pid in pmap.get(v, [corpus.pid[v]]):
            if pid not in seen:
                seen.add(pid)
                out.append(pid)
    return out[:DEPTH]


# ---------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/ideas"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "passage_ideas.json")
    parser.add_argument("--ctx-qa", type=int, default=150, help="QA queries (half B) for the contextual-embedding probe")
    parser.add_argument("--ctx-top", type=int, default=30, help="top passages of each query re-embedded with context")
    parser.add_argument("--skip-ctx", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    log = lambda *a: print(f"[{time.time() - t0:7.1f}s]", *a, flush=True)  # noqa: E731

    store = open_store(Location.of(args.index))
    encoder = load_encoder(store.model.name)
    searcher = Searcher(store, encoder)
    corpus = Corpus(store)
    log("corpus loaded;", int(corpus.proc.sum()), "passages flagged procedural")

    # ---- queries
    qa = load_queries(QA / "queries.jsonl", QA / "qrels.tsv")
    nd_q = [json.loads(l) for l in (ND / "queries.jsonl").read_text().splitlines() if l.strip()]
    nd_qrels = nd_eval.load_qrels(ND / "qrels.tsv")
    nd_sqrels = nd_eval.load_qrels(ND / "qrels_speech.tsv")
    nd_targets = {q["_id"]: q["target"] for q in nd_q}
    items = [("qa", q.id, q.text, 100 + len(q.exclude)) for q in qa] + [("nd", q["_id"], q["text"], 100) for q in nd_q]

    qcache = args.work / "query_vectors.npy"
    if qcache.exists():
        qvecs = np.load(qcache)
    else:
        qvecs = np.vstack([encoder.encode_query(t).reshape(-1) for _, _, t, _ in items]).astype(np.float32)
        np.save(qcache, qvecs)
    log("queries encoded", len(items))

    ccache = args.work / f"candidates-{store.version}.pkl"
    if ccache.exists():
        cands = pickle.loads(ccache.read_bytes())
    else:
        cands = {}
        for i, (kind, qid, text, need) in enumerate(items):
            cands[(kind, qid)] = candidates(store, searcher, corpus, qvecs[i], text, need, DEPTH)
            if i % 500 == 0:
                log("candidates", i)
        ccache.write_bytes(pickle.dumps(cands))
    log("candidates ready")

    # ---- debate title embeddings (idea 1)
    tcache = args.work / "titles.pkl"
    titles = sorted({t for t in corpus.debate if t})
    if tcache.exists():
        tvec = pickle.loads(tcache.read_bytes())
    else:
        t1 = time.time()
        tvec = {t: encoder.encode_query(t).reshape(-1) for t in titles}
        log(f"{len(titles)} titles embedded in {time.time() - t1:.1f}s")
        tcache.write_bytes(pickle.dumps(tvec))
    tindex = {t: i for i, t in enumerate(titles)}
    title_row = np.array([tindex.get(t, -1) for t in corpus.debate])
    tmat = np.vstack([tvec[t] for t in titles] + [np.zeros(tvec[titles[0]].shape, np.float32)]).astype(np.float32)

    # ---- per-query state
    Q = {}
    party_touched = {"qa": 0, "nd": 0}
    role_touched = {"qa": 0, "nd": 0}
    for i, (kind, qid, text, _) in enumerate(items):
        qv = qvecs[i]
        tcos = tmat @ qv

        def title_cos(vecs, tcos=tcos):
            return tcos[title_row[vecs]]

        parties = query_parties(text)
        role = query_role(text)
        if parties:
            party_touched[kind] += 1
        if role:
            role_touched[kind] += 1

        def party_match(vecs, parties=parties, role=role, use_role=False):
            out = np.zeros(len(vecs), np.float32)
            for j, v in enumerate(vecs.tolist()):
                party = corpus.party[v]
                if parties and party in parties:
                    out[j] = 1.0
            return out

        Q[(kind, qid)] = {"vector": qv, "title_cos": title_cos, "party_match": party_match, "text": text,
                          "parties": sorted(parties), "role": role}
    log("party-naming queries", party_touched, "role-naming", role_touched)

    # ---- splits
    qa_ids = {h: {q.id for q in qa if half(q.id) == h} for h in "AB"}
    qa_ids["all"] = {q.id for q in qa}
    nd_ids = {h: {q["_id"] for q in nd_q if half(q["_id"]) == h} for h in "AB"}
    nd_ids["all"] = {q["_id"] for q in nd_q}

    judged_speeches = {d.split("#")[0] for rel in nd_qrels.values() for d in rel}
    pmap = paragraph_map(corpus, judged_speeches)
    log("natural-dev paragraph map", len(pmap))

    def evaluate(p: dict, sets=("qa", "nd_p", "nd_s"), halves=("A", "B", "all")) -> dict:
        res = {}
        if "qa" in sets:
            runs = {q.id: rank_speeches(corpus, Q[("qa", q.id)], cands[("qa", q.id)]["speech"], p)
                    for q in qa if any(q.id in qa_ids[h] for h in halves)}
            res["qa_speech"] = {h: qa_metrics(runs, qa, qa_ids[h]) for h in halves}
        if "nd_p" in sets:
            runs = {q["_id"]: passage_run(corpus, rank_passages(corpus, Q[("nd", q["_id"])], cands[("nd", q["_id"])]["p100"], p), pmap)
                    for q in nd_q}
            res["nd_passage"] = {h: nd_metrics(runs, nd_qrels, nd_ids[h], nd_targets) for h in halves}
        if "nd_s" in sets:
            runs = {q["_id"]: rank_speeches(corpus, Q[("nd", q["_id"])], cands[("nd", q["_id"])]["speech"], p)[:DEPTH]
                    for q in nd_q}
            res["nd_speech"] = {h: nd_metrics(runs, nd_sqrels, nd_ids[h]) for h in halves}
        return res

    def tune_key(r):
        # tuned on half A: QA speech nDCG@10 (3,242 questions) with natural-dev's half A as a tie-break
        return r["qa_speech"]["A"]["ndcg@10"] + 0.1 * r.get("nd_passage", {}).get("A", {}).get("nDCG@10", 0) \
            + 0.1 * r.get("nd_speech", {}).get("A", {}).get("nDCG@10", 0)

    report: dict = {"index": str(args.index), "store_version": store.version, "halves": "md5(query id) parity: even A, odd B",
                    "qa_queries": {h: len(v) for h, v in qa_ids.items()}, "nd_queries": {h: len(v) for h, v in nd_ids.items()},
                    "tuning": "each parameter grid scored on half A by QA speech nDCG@10 + 0.1 x natural-dev half-A nDCG@10 "
                              "(passages and speeches); reported on B and all",
                    "ideas": {}}
    base = evaluate({})
    report["baseline"] = base
    log("baseline", json.dumps(base))

    def idea(name, grid, describe, sets=("qa", "nd_p", "nd_s")):
        t1 = time.time()
        tried = []
        for p in grid:
            r = evaluate(p, sets=sets, halves=("A",))
            tried.append((tune_key(r), p, r))
        tried.sort(key=lambda x: -x[0])
        best = tried[0][1]
        full = evaluate(best, sets=sets)
        entry = {"describe": describe, "grid_on_A": [{"param": describe_p(p), "score_A": round(s, 4)} for s, p, _ in tried],
                 "chosen": describe_p(best), "result": full, "delta_vs_baseline": deltas(full, base)}
        report["ideas"][name] = entry
        log(name, "chosen", describe_p(best), json.dumps(entry["delta_vs_baseline"]), f"({time.time() - t1:.0f}s)")
        save()
        return best

    def describe_p(p):
        return {k: v for k, v in p.items() if not callable(v)}

    def deltas(full, base):
        out = {}
        for s, hs in full.items():
            for h, m in hs.items():
                for k in ("ndcg@10", "nDCG@10", "recall@100", "Recall@100", "mrr@10", "MRR@10"):
                    if k in m:
                        out[f"{s}.{h}.{k}"] = round(m[k] - base[s][h][k], 4)
        return out

    def save():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1, default=str))

    save()
    # 1 title
    idea("1_title", [{"title": a} for a in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.8)],
         "dense = cos(q, passage) + a * cos(q, debate title)")
    # 2 neighbours
    idea("2_neighbours", [{"nb": b, "nb_agg": agg} for agg in ("max", "mean") for b in (0.0, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)],
         "dense = cos(q, passage) + b * max|mean(cos(q, prev), cos(q, next)) of the same speech")
    # 3 procedural
    report["procedural_rules"] = PROCEDURAL + ["list of >=4 'Clause/Section/Schedule/Regulation/Article N' under 25 words each"]
    report["procedural_flagged"] = int(corpus.proc.sum())
    report["procedural_examples"] = [corpus.text[v][:160] for v in np.flatnonzero(corpus.proc)[:: max(1, int(corpus.proc.sum()) // 15)][:15]]
    idea("3_procedural", [{"proc": c} for c in (1.0, 0.9, 0.8, 0.6, 0.4)], "fused *= c where PROCEDURAL rules flag the passage")
    # 4 party
    report["party_queries_touched"] = party_touched
    report["role_queries_touched"] = role_touched
    report["party_queries"] = {f"{k}:{qid}": Q[(k, qid)]["text"] for (k, qid) in Q if Q[(k, qid)]["parties"]}
    idea("4_party", [{"party": d} for d in (0.0, 0.05, 0.1, 0.2, 0.3)], "fused += d where the speaker's party is one the query names")
    # 5 PRF
    idea("5_prf", [{"prf": e} for e in (0.0, 0.25, 0.5, 1.0, 2.0)], "q' = normalise(q + e * mean of baseline top-5 passage vectors)")
    # 6 speech-level
    grid = []
    for w2 in (0.0, 0.1, 0.2, 0.3, 0.4):
        for w3 in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5):
            if w2 + w3 <= 0.8:
                grid.append({"speech": (round(1 - w2 - w3, 2), w2, w3)})
    idea("6_speech_combo", grid, "speech = w1*minmax(best passage fused) + w2*minmax(speech vector cos) + w3*minmax(speech BM25), "
         "over the candidate speeches", sets=("qa", "nd_s"))

    # combined: the passage-level winners together (title + neighbours), then idea 6 on top
    grid = [{"title": a, "nb": b, "nb_agg": "mean"} for a in (0.2, 0.3, 0.4, 0.5, 0.6) for b in (0.15, 0.25, 0.5)]
    best = idea("8_title+neighbours", grid, "ideas 1 and 2 together, a and b tuned jointly on A")
    grid = []
    for w2 in (0.0, 0.1, 0.2, 0.3):
        for w3 in (0.0, 0.1, 0.2, 0.3, 0.4):
            grid.append({**best, "speech": (round(1 - w2 - w3, 2), w2, w3)})
    idea("9_title+neighbours+speech_combo", grid, "ideas 1+2 (as chosen in 8), then idea 6's speech combination "
         "re-tuned on top", sets=("qa", "nd_s"))

    # 7 contextual embeddings
    if not args.skip_ctx:
        ctx_probe(report, corpus, store, qa, nd_q, Q, cands, qa_ids, nd_ids, nd_qrels, nd_sqrels, nd_targets, pmap,
                  evaluate_parts=(rank_speeches, rank_passages), args=args, log=log, base_eval=evaluate)
    # verdict rule (stated): keep when QA half-B nDCG@10 gains >= 0.005 and no natural-dev nDCG@10 (all 30) falls by 0.03 or more
    for name, e in report["ideas"].items():
        if "delta_vs_baseline" not in e:
            continue
        dl = e["delta_vs_baseline"]
        nd_worst = min([v for k, v in dl.items() if k.startswith("nd_") and k.endswith(".all.nDCG@10")] or [0])
        e["verdict"] = "keep" if dl["qa_speech.B.ndcg@10"] >= 0.005 and nd_worst > -0.03 else "drop"
    report["verdict_rule"] = "keep when QA half-B nDCG@10 gains >= 0.005 and no natural-dev nDCG@10 (all) falls by >= 0.03"
    report["seconds"] = round(time.time() - t0, 1)
    save()
    log("written", args.out)


def context_text(corpus, v: int) -> str:
    parts = [corpus.debate[v] or "", corpus.speaker[v] or ""]
    head = " — ".join(p for p in parts if p)
    return f"{head}: {corpus.text[v]}" if head else corpus.text[v]


def ctx_probe(report, corpus, store, qa, nd_q, Q, cands, qa_ids, nd_ids, nd_qrels, nd_sqrels, nd_targets, pmap,
              evaluate_parts, args, log, base_eval):
    """Cost of re-embedding with context, from 500 passages; quality on a subset, top candidates only re-embedded."""
    ctx_enc = load_encoder(store.model.name, cache_dir=args.work / "ctxcache")
    rng = np.random.default_rng(7)
    sample = rng.choice(len(corpus.text), 500, replace=False)
    t1 = time.time()
    for v in sample[:250]:
        ctx_enc.embed_batch([corpus.text[v]])
    plain_rate = 250 / (time.time() - t1)
    t1 = time.time()
    for v in sample[250:]:
        ctx_enc.embed_batch([context_text(corpus, v)])
    ctx_rate = 250 / (time.time() - t1)
    cost = {"sample": 500, "plain_passages_per_s": round(plain_rate, 1), "contextual_passages_per_s": round(ctx_rate, 1),
            "estimated_full_reembed_s": round(len(corpus.text) / ctx_rate), "threads": "this 2-core shared machine, onnx-int8, one text at a time"}
    log("ctx cost", cost)
    rank_speeches, rank_passages = evaluate_parts

    # a seeded random sample of half B (file order would be all written answers of one day)
    pool_b = [q for q in qa if q.id in qa_ids["B"]]
    pick = sorted(np.random.default_rng(11).choice(len(pool_b), min(args.ctx_qa, len(pool_b)), replace=False).tolist())
    qa_sub = [pool_b[i] for i in pick]
    top = args.ctx_top
    todo: dict[int, str] = {}
    tops = {}
    for kind, qid in [("qa", q.id) for q in qa_sub] + [("nd", q["_id"]) for q in nd_q]:
        for level in ("speech", "p100"):
            c = cands[(kind, qid)][level]
            f = fused_scores(corpus, Q[(kind, qid)], c, {})
            t = c["vecs"][np.argsort(-f, kind="stable")[:top]]
            tops[(kind, qid, level)] = set(t.tolist())
            for v in t.tolist():
                todo[v] = context_text(corpus, v)
    vl = sorted(todo)
    log("ctx re-embedding", len(vl), "passages")
    t1 = time.time()
    cv = ctx_enc.encode([todo[v] for v in vl])
    ctx_vec = {v: cv[i] for i, v in enumerate(vl)}
    log(f"ctx embedded in {time.time() - t1:.0f}s")

    def make(kind, qid, level, mix):
        qv = Q[(kind, qid)]["vector"]
        chosen = tops[(kind, qid, level)]

        def ctx(vecs, dense):
            # the top candidates get (1-mix)*plain + mix*contextual cosine, lifted so they stay above the rest
            out = dense.copy()
            for j, v in enumerate(vecs.tolist()):
                if v in chosen:
                    out[j] = (1 - mix) * dense[j] + mix * float(ctx_vec[v] @ qv)
            return out
        return ctx

    def run(mix, extra=None):
        extra = extra or {}
        res = {}
        rq = {}
        for q in qa_sub:
            c = cands[("qa", q.id)]["speech"]
            p = ({"ctx": make("qa", q.id, "speech", mix)} if mix else {}) | extra
            rq[q.id] = rank_speeches_top(corpus, Q[("qa", q.id)], c, p, tops[("qa", q.id, "speech")])
        res["qa_speech_subset"] = qa_metrics(rq, qa, {q.id for q in qa_sub})
        rp, rs = {}, {}
        for q in nd_q:
            qid = q["_id"]
            p = ({"ctx": make("nd", qid, "p100", mix)} if mix else {}) | extra
            rp[qid] = passage_run(corpus, rank_passages_top(corpus, Q[("nd", qid)], cands[("nd", qid)]["p100"], p, tops[("nd", qid, "p100")]), pmap)
            p = ({"ctx": make("nd", qid, "speech", mix)} if mix else {}) | extra
            rs[qid] = rank_speeches_top(corpus, Q[("nd", qid)], cands[("nd", qid)]["speech"], p, tops[("nd", qid, "speech")])[:DEPTH]
        res["nd_passage"] = {h: nd_metrics(rp, nd_qrels, nd_ids[h], nd_targets) for h in ("A", "B", "all")}
        res["nd_speech"] = {h: nd_metrics(rs, nd_sqrels, nd_ids[h]) for h in ("A", "B", "all")}
        return res

    results = {f"mix={mix}": run(mix) for mix in (0.0, 0.5, 1.0)}
    # the same top-30 re-ranking with idea 1's title term instead (a = 0.3), and with both
    results["title a=0.3 (idea 1), same top-30 re-ranking"] = run(0.0, {"title": 0.3})
    results["mix=1.0 + title a=0.3"] = run(1.0, {"title": 0.3})
    log("ctx", json.dumps({k: [v["qa_speech_subset"]["ndcg@10"], v["nd_passage"]["all"]["nDCG@10"], v["nd_speech"]["all"]["nDCG@10"]] for k, v in results.items()}))
    report["ideas"]["7_contextual"] = {
        "describe": f"contextual text = '<debate title> — <speaker>: <text>'; only each query's top {top} baseline candidates "
                    f"re-embedded and re-ranked among themselves (the rest unchanged below them); dense = (1-mix)*plain + mix*contextual",
        "cost": cost, "qa_subset": f"first {len(qa_sub)} QA questions of half B", "re_embedded": len(vl),
        "results_by_mix": results, "indicative": True}


def _rerank_top(corpus, q, c, p, chosen):
    """Fused scores with p, but only the `chosen` (top) candidates re-ordered among themselves, kept on top."""
    base = fused_scores(corpus, q, c, {})
    new = fused_scores(corpus, q, c, p)
    mask = np.array([v in chosen for v in c["vecs"].tolist()])
    return np.where(mask, 10.0 + new, base)


def rank_passages_top(corpus, q, c, p, chosen):
    s = _rerank_top(corpus, q, c, p, chosen)
    return c["vecs"][np.argsort(-s, kind="stable")].tolist()


def rank_speeches_top(corpus, q, c, p, chosen):
    s = _rerank_top(corpus, q, c, p, chosen)
    order = np.argsort(-s, kind="stable")
    seen, out = set(), []
    for v in c["vecs"][order].tolist():
        sid = corpus.sid[v]
        if sid not in seen:
            seen.add(sid)
            out.append(sid)
    return out


if __name__ == "__main__":
    main()
