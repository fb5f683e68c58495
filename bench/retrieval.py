"""Document-level retrieval quality of rag's dense, BM25 and hybrid retrieval on TIME and SciFact.

Each BEIR document is indexed as one article (``build_index``: chunks of whole sentences, text only).
For every query the chunk candidates of ``dense_candidates`` and ``lexical_candidates`` are ranked
alone or joined by ``fuse``; a chunk ranking becomes a document ranking by keeping each document at
its best chunk (its first place in the ranking). Scored with nDCG@10 and recall@10 (``bench/beir.py``).

A sweep over ``FusionSettings`` and the number of candidates per retriever finds the settings whose
hybrid nDCG@10 is at least that of the better single retriever (at the same number of candidates) on
both test sets, best mean nDCG@10 first. SciFact's train queries (809, same corpus) are reported beside it but not used to
choose: they show whether the choice holds on queries it was not picked on.

Candidates are fetched once per query at the largest count and cut to smaller counts, which is what
asking for fewer returns (up to ties at the cut).

Usage: .venv/bin/python bench/retrieval.py [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import beir
from corpora import beir_records, build_cached_index, markdown_table, percentile, query_vectors

from rag.answering import AnswerSettings  # noqa: E402
from rag.index import IndexData  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag import embedding  # noqa: E402
from rag.retrieval import FusionSettings, dense_candidates, fuse, lexical_candidates, retrieve  # noqa: E402

K = 10
CANDIDATES = (50, 100, 200)
FUSIONS = ([FusionSettings("convex", w) for w in (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)]
           + [FusionSettings("rrf", w, k) for w in (0.3, 0.5, 0.7) for k in (10, 30, 60)])
TEST_SETS = ("time_news_1963", "scifact")
HELDOUT = "scifact-train"
QUICK_DOCS = 30

ChunkScores = dict[int, float]


@dataclass
class QuerySet:
    """Queries over one indexed corpus, with their chunk candidates at the largest count."""

    name: str
    index: IndexData
    qrels: beir.Qrels
    dense: dict[str, ChunkScores]
    sparse: dict[str, ChunkScores]


def label(fusion: FusionSettings) -> str:
    if fusion.method == "rrf":
        return f"rrf w={fusion.dense_weight:g} k={fusion.rrf_k}"
    return f"convex w={fusion.dense_weight:g}"


def top(scores: ChunkScores, n: int) -> ChunkScores:
    """The n best of a candidate list, best first."""
    return dict(sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:n])


def document_ranking(index: IndexData, chunk_ids: list[int]) -> list[str]:
    """Documents in the order of their best chunk (the article id is the BEIR document id)."""
    ranked: dict[str, None] = {}
    for i in chunk_ids:
        ranked.setdefault(index.catalog[int(index.chunk_article[i])].id, None)
    return list(ranked)


def load_heldout() -> beir.Dataset:
    """SciFact's train queries and qrels over the same corpus."""
    base = beir.ROOT / "scifact"
    qrels = beir.load_qrels(base / "qrels" / "train.tsv")
    with open(base / "queries.jsonl", encoding="utf-8") as lines:
        texts = {str(q["_id"]): q["text"] for q in map(json.loads, lines)}
    queries = {qid: texts[qid] for qid in qrels if qid in texts}
    return beir.Dataset("scifact", beir.load("scifact").docs, queries, {q: qrels[q] for q in queries})


def prepare(name: str, dataset: beir.Dataset, index_name: str, depth: int, settings: Settings | None = None
            ) -> QuerySet:
    """Index the corpus (cached), embed the queries (cached) and fetch every query's candidates."""
    report, index = build_cached_index(index_name, beir_records(dataset.docs, dataset.name), settings)
    if report.embedded_chunks:
        print(f"{index_name}: indexed {len(dataset.docs)} docs in {report.seconds:.0f}s "
              f"({report.embedded_chunks} chunks, {report.embedded_sentences} sentences embedded)", file=sys.stderr)
    ids = list(dataset.queries)
    vectors = query_vectors(index_name, [dataset.queries[q] for q in ids])
    dense = {q: dense_candidates(index, v, depth) for q, v in zip(ids, vectors)}
    sparse = {q: lexical_candidates(index, dataset.queries[q], depth) for q in ids}
    return QuerySet(name, index, dataset.qrels, dense, sparse)


def search_latency(name: str, index: IndexData, texts: list[str], warmup: int = 3) -> dict:
    """Time of one hybrid search per query with the defaults, embedding the query included, one at a time and
    after `warmup` queries: what bench/peers/run_peers.py times for a peer."""
    settings = AnswerSettings()
    for text in texts[:warmup]:
        retrieve(index, text, embedding.embed_query(text), K, None, settings.candidates, settings.fusion)
    timings = []
    for text in texts:
        started = time.perf_counter()
        retrieve(index, text, embedding.embed_query(text), K, None, settings.candidates, settings.fusion)
        timings.append((time.perf_counter() - started) * 1000)
    return {"dataset": name, "queries": len(timings), "p50_ms": percentile(timings, 50),
            "p95_ms": percentile(timings, 95)}


def latency_of(name: str, quick: bool) -> dict:
    """`search_latency` over every query of one test set (run_peers.py calls this right after each peer)."""
    dataset = beir.load(name)
    if quick:
        dataset = dataset.subset(QUICK_DOCS)
    _, index = build_cached_index(f"{name}-quick" if quick else name, beir_records(dataset.docs, dataset.name))
    return search_latency(name, index, list(dataset.queries.values()))


def score(qs: QuerySet, rank: Callable[[ChunkScores, ChunkScores], list[int]]) -> dict[str, float]:
    run = {q: document_ranking(qs.index, rank(qs.dense[q], qs.sparse[q])) for q in qs.qrels}
    return beir.evaluate(run, qs.qrels, K)


def evaluate_all(qs: QuerySet) -> list[dict]:
    """Dense, BM25 and every hybrid setting at every candidate count."""
    rows = []
    for n in CANDIDATES:
        methods: dict[str, tuple[str, Callable[[ChunkScores, ChunkScores], list[int]]]] = {
            "dense": ("dense", lambda d, s, n=n: list(top(d, n))),
            "bm25": ("bm25", lambda d, s, n=n: list(top(s, n))),
        }
        for f in FUSIONS:
            methods[label(f)] = ("hybrid", lambda d, s, n=n, f=f: [i for i, _ in fuse(top(d, n), top(s, n), f)])
        for name, (kind, rank) in methods.items():
            rows.append({"dataset": qs.name, "method": kind, "setting": name, "candidates": n, **score(qs, rank)})
    return rows


def sweep(rows: list[dict], datasets: list[str]) -> list[dict]:
    """Per hybrid setting: nDCG@10 and its margin over the better single retriever on each dataset.

    Sorted with the settings that meet the goal on both test sets first, then by mean test nDCG@10.
    """
    ndcg = f"ndcg@{K}"
    value = {(r["dataset"], r["setting"], r["candidates"]): r[ndcg] for r in rows}
    tests = [d for d in datasets if d in TEST_SETS]
    out = []
    for n in CANDIDATES:
        for f in FUSIONS:
            entry: dict = {"setting": label(f), "candidates": n, "fusion": asdict(f)}
            for d in datasets:
                best_single = max(value[(d, "dense", n)], value[(d, "bm25", n)])
                entry[d] = value[(d, label(f), n)]
                entry[f"{d} margin"] = value[(d, label(f), n)] - best_single
            entry["meets"] = all(entry[f"{d} margin"] >= 0 for d in tests)
            entry["mean"] = sum(entry[d] for d in tests) / len(tests)
            out.append(entry)
    return sorted(out, key=lambda e: (not e["meets"], -e["mean"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"first {QUICK_DOCS} documents of each set only")
    parser.add_argument("--json", type=Path, help="save all results here")
    parser.add_argument("--latency-of", choices=TEST_SETS, help="only time the searches of this set; print JSON")
    args = parser.parse_args()
    if args.latency_of:
        print(json.dumps(latency_of(args.latency_of, args.quick)))
        return

    sets, datasets = [], {}
    for name in TEST_SETS:
        dataset = beir.load(name)
        if args.quick:
            dataset = dataset.subset(QUICK_DOCS)
        datasets[name] = dataset
        sets.append(prepare(name, dataset, f"{name}-quick" if args.quick else name, max(CANDIDATES)))
    if not args.quick:
        sets.append(prepare(HELDOUT, load_heldout(), "scifact", max(CANDIDATES)))
    names = [qs.name for qs in sets]
    rows = [row for qs in sets for row in evaluate_all(qs)]
    table = sweep(rows, names)
    recommended = table[0]

    default_fusion, default_candidates = AnswerSettings().fusion, AnswerSettings().candidates
    print(f"## Document retrieval, nDCG@{K} and recall@{K}\n")
    print(markdown_table(
        ["dataset", "docs", "queries", "chunks"],
        [[qs.name, len(qs.index.catalog), len(qs.qrels), len(qs.index.chunk_table)] for qs in sets]) + "\n")
    main_rows = []
    for qs in sets:
        picks = {("dense", default_candidates): "", ("bm25", default_candidates): "",
                 (label(default_fusion), default_candidates): " (current default)"}
        picks.setdefault((recommended["setting"], recommended["candidates"]), " (best in sweep)")
        for (setting, n), tag in picks.items():
            r = next(r for r in rows if r["dataset"] == qs.name and r["setting"] == setting and r["candidates"] == n)
            main_rows.append([qs.name, setting + tag, n, r[f"ndcg@{K}"], r[f"recall@{K}"]])
    print(markdown_table(["dataset", "method", "candidates", f"nDCG@{K}", f"recall@{K}"], main_rows) + "\n")

    print(f"## Fusion sweep: hybrid nDCG@{K} and margin over max(dense, BM25) at the same candidates\n")
    header = ["setting", "candidates"] + [h for d in names for h in (d, "margin")] + ["mean (test)", "meets (test)"]
    print(markdown_table(header, [[e["setting"], e["candidates"]] + [v for d in names for v in (e[d], e[f"{d} margin"])]
                                  + [e["mean"], "yes" if e["meets"] else "no"] for e in table]) + "\n")
    print("## Single retrievers by candidates\n")
    print(markdown_table(["dataset", "candidates", f"dense nDCG@{K}", f"BM25 nDCG@{K}"],
                         [[qs.name, n] + [next(r[f"ndcg@{K}"] for r in rows if r["dataset"] == qs.name
                                               and r["setting"] == m and r["candidates"] == n) for m in ("dense", "bm25")]
                          for qs in sets for n in CANDIDATES]) + "\n")
    embedding.embed_query("warm up")
    latency = [search_latency(qs.name, qs.index, list(datasets[qs.name].queries.values()))
               for qs in sets if qs.name in TEST_SETS]
    print("## Hybrid search latency with the defaults (query embedding included, one at a time)\n")
    print(markdown_table(["dataset", "queries", "p50 ms", "p95 ms"],
                         [[r["dataset"], r["queries"], r["p50_ms"], r["p95_ms"]] for r in latency]) + "\n")
    meeting = [e for e in table if e["meets"]]
    current = next(e for e in table if e["setting"] == label(default_fusion) and e["candidates"] == default_candidates)
    print(f"{len(meeting)} of {len(table)} settings meet the goal on both test sets. Best mean nDCG@{K}: "
          f"{recommended['setting']} with {recommended['candidates']} candidates per retriever "
          f"({recommended['mean']:.3f}); the current default ({current['setting']}, {current['candidates']}) "
          f"{'meets' if current['meets'] else 'does not meet'} it at {current['mean']:.3f}.")
    if args.json:
        args.json.write_text(json.dumps({"quick": args.quick, "rows": rows, "sweep": table,
                                         "recommended": recommended, "latency": latency}, indent=1))


if __name__ == "__main__":
    main()
