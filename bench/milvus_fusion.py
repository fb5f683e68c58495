"""How Milvus should fuse dense and BM25 results, chosen on the SQuAD train split (issue 20).

Milvus fuses a hybrid search with WeightedRanker or RRFRanker. WeightedRanker with norm_score maps each score
through arctan (IP: 0.5 + atan(s)/pi, BM25: 2 atan(s)/pi) before weighting, where the local path min-max scales
each list over its candidates, so the local path's weights do not carry over. For each question this script asks
Milvus for the dense and the BM25 candidates once (as the hybrid search asks them, `candidates` each), then scores
every fusion on the grid from those lists in numpy, as Milvus would rank them (checked against Milvus's own
hybrid_search for the first questions), and ranks documents at their best chunk.

Choice: by nDCG@10 on questions of the SQuAD train split (paragraphs as documents, the question's paragraph
relevant; the validation articles left out), the local path's convex fusion on the same lists beside them. The
best fusion there is printed beside the one rag/milvus.py uses (BM25_SCALE); bench/REPORT.md says why that one.
`--report` adds TIME and SciFact (test sets: reported, not chosen on).

Usage: .venv/bin/python bench/milvus_fusion.py [--questions N] [--report]   (about 4 min with --report)
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import beir
from corpora import CACHE, beir_records, build_cached_index, query_vectors
from milvus import milvus_copy

from rag import lexical
from rag.answering import AnswerSettings
from rag.index import load_index
from rag.milvus import BM25_SCALE, IVF_NPROBE, MilvusIndex, bm25_text
from rag.retrieval import FusionSettings, dense_candidates, fuse, lexical_candidates

K = 10
WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
RAW_BM25_WEIGHTS = (0.01, 0.02, 0.03, 0.04, 0.05, 0.08)
IDF_SCALES = (0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5)
RRF_KS = (10, 20, 30, 60, 100)


@dataclass
class Lists:
    """One question's candidates: Milvus's (chunk id -> raw score) and the local path's, dense and BM25."""
    milvus_dense: dict[int, float]
    milvus_sparse: dict[int, float]
    local_dense: dict[int, float]
    local_sparse: dict[int, float]
    idf_sum: float  # the question's tokens' idf, added: what its BM25 scores scale with


def arctan_weighted(dense: dict[int, float], sparse: dict[int, float], w: float) -> list[tuple[int, float]]:
    """WeightedRanker(w, 1 - w, norm_score=True) as Milvus scores it; a chunk one search missed scores 0 there."""
    ids = set(dense) | set(sparse)
    score = {i: (w * (0.5 + np.arctan(dense[i]) / np.pi) if i in dense else 0.0)
             + ((1 - w) * 2 * np.arctan(sparse[i]) / np.pi if i in sparse else 0.0) for i in ids}
    return sorted(score.items(), key=lambda item: (-item[1], item[0]))


def raw_weighted(dense: dict[int, float], sparse: dict[int, float], a: float, b: float) -> list[tuple[int, float]]:
    """WeightedRanker(a, b, norm_score=False): raw inner product and raw BM25, weighted and added."""
    ids = set(dense) | set(sparse)
    score = {i: a * dense.get(i, 0.0) + b * sparse.get(i, 0.0) for i in ids}
    return sorted(score.items(), key=lambda item: (-item[1], item[0]))


def rrf(dense: dict[int, float], sparse: dict[int, float], k: int) -> list[tuple[int, float]]:
    return fuse(dense, sparse, FusionSettings(method="rrf", dense_weight=0.5, rrf_k=k))


def fusions() -> dict[str, Callable[[Lists], list[tuple[int, float]]]]:
    """Every fusion tried, by name: WeightedRanker over normalised scores (Milvus's arctan), over raw scores with a
    fixed BM25 weight, over raw scores with BM25's weight divided by the question's idf (rag/milvus.py's), RRF."""
    out: dict[str, Callable[[Lists], list[tuple[int, float]]]] = {
        "FAISS path: min-max convex w=0.5, bm25s": lambda l: fuse(l.local_dense, l.local_sparse, FusionSettings()),
        "min-max convex w=0.5 (not in Milvus)": lambda l: fuse(l.milvus_dense, l.milvus_sparse, FusionSettings()),
    }
    for w in WEIGHTS:
        out[f"normalised, dense weight {w}"] = lambda l, w=w: arctan_weighted(l.milvus_dense, l.milvus_sparse, w)
    for r in RAW_BM25_WEIGHTS:
        out[f"raw, BM25 weight {r}"] = lambda l, r=r: raw_weighted(l.milvus_dense, l.milvus_sparse, 1.0, r)
    for r in IDF_SCALES:
        out[f"raw, BM25 weight {r} / question idf"] = lambda l, r=r: raw_weighted(
            l.milvus_dense, l.milvus_sparse, 1.0, r / l.idf_sum)
    for k in RRF_KS:
        out[f"rrf k={k}"] = lambda l, k=k: rrf(l.milvus_dense, l.milvus_sparse, k)
    return out


def candidate_lists(index: MilvusIndex, local, texts: list[str], vectors: np.ndarray, candidates: int) -> list[Lists]:
    client, chunks = index.milvus.client, index.names["chunks"]
    out = []
    for text, vector in zip(texts, vectors):
        dense = client.search(chunks, [vector.tolist()], anns_field="dense", limit=candidates, output_fields=["id"],
                              search_params={"metric_type": "IP", "params": {"nprobe": IVF_NPROBE}})[0]
        terms = lexical.tokenize([text])[0]
        sparse = (client.search(chunks, [bm25_text(terms)], anns_field="sparse", limit=candidates,
                                output_fields=["id"], search_params={"metric_type": "BM25"})[0] if terms else [])
        out.append(Lists({int(h["id"]): float(h["distance"]) for h in dense},
                         {int(h["id"]): abs(float(h["distance"])) for h in sparse},
                         dense_candidates(local, vector, candidates), lexical_candidates(local, text, candidates),
                         sum(local.idf(t) for t in set(terms)) or 1.0))
    return out


def check_simulation(index: MilvusIndex, texts: list[str], vectors: np.ndarray, lists: list[Lists],
                     candidates: int) -> dict[str, float]:
    """Share of questions whose top-10 chunks from Milvus's hybrid_search equal the simulated ranking, for
    WeightedRanker over normalised scores and over raw scores as rag/milvus.py weights them."""
    from pymilvus import AnnSearchRequest, WeightedRanker

    same = {"normalised": 0, "raw": 0}
    for text, vector, l in zip(texts, vectors, lists):
        terms = lexical.tokenize([text])[0]
        weights = index.fusion_weights(terms, 0.5)
        requests = [AnnSearchRequest([vector.tolist()], "dense", {"metric_type": "IP"}, candidates),
                    AnnSearchRequest([bm25_text(terms)], "sparse", {"metric_type": "BM25"}, candidates)]
        rankers = {"normalised": (WeightedRanker(0.5, 0.5, norm_score=True),
                                  arctan_weighted(l.milvus_dense, l.milvus_sparse, 0.5)),
                   "raw": (WeightedRanker(*weights, norm_score=False),
                           raw_weighted(l.milvus_dense, l.milvus_sparse, *weights))}
        for name, (ranker, simulated) in rankers.items():
            hits = index.milvus.client.hybrid_search(index.names["chunks"], requests, ranker, limit=K,
                                                     output_fields=["id"])[0]
            same[name] += [int(h["id"]) for h in hits] == [i for i, _ in simulated[:K]]
    return {name: n / max(1, len(texts)) for name, n in same.items()}


def score(index, lists: list[Lists], ids: list[str], qrels: beir.Qrels) -> dict[str, float]:
    out = {}
    for name, method in fusions().items():
        run = {}
        for qid, l in zip(ids, lists):
            run[qid] = list(dict.fromkeys(index.catalog[int(index.chunk_article[i])].id for i, _ in method(l)))
        out[name] = beir.evaluate(run, qrels, K)[f"ndcg@{K}"]
    return out


def squad_train_set(limit: int, seed: int = 7) -> tuple[list[str], list[str], beir.Qrels]:
    from fit_answerer import training_corpus
    from squad import build_corpus_index

    articles, questions, validation, _ = training_corpus()
    build_corpus_index("squad_train", articles)
    picked = [q for q, v in zip(questions, validation) if not v]
    random.Random(seed).shuffle(picked)
    picked = picked[:limit]
    return [q.id for q in picked], [q.text for q in picked], {q.id: {q.article_id: 1} for q in picked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=3000, help="SQuAD train-split questions to choose on")
    parser.add_argument("--report", action="store_true", help="also score TIME and SciFact (test sets)")
    parser.add_argument("--json", type=str, default="")
    args = parser.parse_args()
    candidates = AnswerSettings().candidates
    sets = [("squad_train", *squad_train_set(args.questions))]
    if args.report:
        for name in ("time_news_1963", "scifact"):
            dataset = beir.load(name)
            build_cached_index(name, beir_records(dataset.docs, dataset.name))
            ids = list(dataset.queries)
            sets.append((name, ids, [dataset.queries[q] for q in ids], dataset.qrels))
    results = {}
    for name, ids, texts, qrels in sets:
        started = time.perf_counter()
        remote, _ = milvus_copy(name)
        local = load_index(CACHE / name / "index")
        vectors = query_vectors(name, texts)
        lists = candidate_lists(remote, local, texts, vectors, candidates)
        agree = check_simulation(remote, texts[:30], vectors[:30], lists[:30], candidates)
        results[name] = {"questions": len(ids), "simulation_agrees": agree, "ndcg": score(local, lists, ids, qrels),
                         "seconds": time.perf_counter() - started}
        print(f"{name}: {len(ids)} questions, simulated rankings = Milvus's for {agree} of 30, "
              f"{results[name]['seconds']:.0f} s", file=sys.stderr)
    names = list(results["squad_train"]["ndcg"])
    print("| fusion | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for n in names:
        print(f"| {n} | " + " | ".join(f"{results[s]['ndcg'][n]:.3f}" for s in results) + " |")
    in_milvus = [n for n in names if n.startswith(("normalised", "raw", "rrf"))]
    train = results["squad_train"]["ndcg"]
    best = max(in_milvus, key=train.get)
    used = f"raw, BM25 weight {BM25_SCALE} / question idf"
    print(f"\nbest in Milvus on the SQuAD train split: {best} ({train[best]:.3f}); rag/milvus.py's: {used} "
          f"({train.get(used, float('nan')):.3f})", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
