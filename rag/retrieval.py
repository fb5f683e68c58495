"""Hybrid retrieval: dense (FAISS) and BM25 candidates, filtered before ranking, fused into one list."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rag import lexical, vectors
from rag.index import IndexData
from rag.types import Filters, Passage


EXACT_SUBSET = 50_000  # filtered searches over at most this many chunks are exact (at most ~75 MB read)
EXACT_BATCH = 8_192  # vectors read at once by an exact filtered search


@dataclass(frozen=True)
class FusionSettings:
    """How dense and BM25 rankings are joined; defaults chosen on TIME and SciFact (bench/retrieval.py)."""

    method: str = "convex"  # "convex": weighted sum of normalised scores; "rrf": reciprocal rank fusion
    dense_weight: float = 0.5
    rrf_k: int = 60


def allowed_chunks(index: IndexData, filters: Filters | None) -> np.ndarray | None:
    """Boolean mask of the chunks whose article passes the filters, or None when nothing is filtered."""
    if filters is None or filters == Filters():
        return None
    admitted = np.array([filters.admits(a) for a in index.catalog], dtype=bool)
    return admitted[index.chunk_article] if len(index.chunk_article) else np.zeros(0, dtype=bool)


def dense_candidates(index: IndexData, query_vector: np.ndarray, k: int,
                     mask: np.ndarray | None = None) -> dict[int, float]:
    """Top-k chunks by cosine similarity among the admitted ones (all when `mask` is None).

    A filter admitting at most EXACT_SUBSET chunks is searched exactly, reading their vectors from disk in
    batches; a wider one searches the FAISS index restricted to the admitted ids.
    """
    if mask is None:
        scores, ids = vectors.search(index.vector_index, query_vector[None, :], k)
    else:
        admitted = np.flatnonzero(mask)
        if len(admitted) > EXACT_SUBSET:
            scores, ids = vectors.search(index.vector_index, query_vector[None, :], k, admitted=mask)
        else:
            scores, ids = _exact_search(index, query_vector, admitted, k)
    return {int(i): float(s) for i, s in zip(ids[0], scores[0]) if i >= 0}


def _exact_search(index: IndexData, query_vector: np.ndarray, ids: np.ndarray, k: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    best_scores, best_ids = np.empty(0, np.float32), np.empty(0, np.int64)
    for lo in range(0, len(ids), EXACT_BATCH):
        batch = ids[lo:lo + EXACT_BATCH]
        scores = np.concatenate([best_scores, index.chunk_vectors[batch] @ query_vector])
        candidates = np.concatenate([best_ids, batch])
        top = np.argsort(-scores, kind="stable")[:k]
        best_scores, best_ids = scores[top], candidates[top]
    return best_scores[None, :], best_ids[None, :]


def lexical_candidates(index: IndexData, question: str, k: int, mask: np.ndarray | None = None) -> dict[int, float]:
    """Top-k chunks by BM25 with a positive score."""
    if index.bm25 is None:
        return {}
    scores = lexical.bm25_scores(index.bm25, question, len(index.chunk_table),
                                 None if mask is None else mask.astype(np.float32))
    k = min(k, len(scores))
    top = np.argpartition(-scores, k - 1)[:k] if k else []
    return {int(i): float(scores[i]) for i in top if scores[i] > 0}


def _normalise(scores: dict[int, float]) -> dict[int, float]:
    """Min-max scale to [0, 1] so two scorers with different ranges can be added."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    span = high - low
    return {i: (s - low) / span if span > 0 else 1.0 for i, s in scores.items()}


def fuse(dense: dict[int, float], sparse: dict[int, float], settings: FusionSettings = FusionSettings()
         ) -> list[tuple[int, float]]:
    """Join two candidate lists into one ranking, best first (pure)."""
    ids = set(dense) | set(sparse)
    if settings.method == "rrf":
        def rank_map(scores: dict[int, float]) -> dict[int, int]:
            return {i: r for r, i in enumerate(sorted(scores, key=scores.get, reverse=True))}
        dense_rank, sparse_rank = rank_map(dense), rank_map(sparse)
        w = settings.dense_weight
        fused = {i: (w / (settings.rrf_k + dense_rank[i] + 1) if i in dense_rank else 0.0)
                 + ((1 - w) / (settings.rrf_k + sparse_rank[i] + 1) if i in sparse_rank else 0.0) for i in ids}
    elif settings.method == "convex":
        d, s = _normalise(dense), _normalise(sparse)
        w = settings.dense_weight if sparse else 1.0
        fused = {i: w * d.get(i, 0.0) + (1 - w) * s.get(i, 0.0) for i in ids}
    else:
        raise ValueError(f"fusion method must be 'convex' or 'rrf', got {settings.method!r}")
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def retrieve(index: IndexData, question: str, query_vector: np.ndarray, k: int, filters: Filters | None = None,
             candidates: int = 50, fusion: FusionSettings = FusionSettings()) -> list[Passage]:
    """The k best chunks for a question among those passing the filters."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    hybrid = getattr(index, "hybrid_passages", None)
    if hybrid is not None:  # a store that searches and fuses itself (rag/milvus.py)
        return hybrid(question, query_vector, k, filters, candidates, fusion)
    mask = allowed_chunks(index, filters)
    dense = dense_candidates(index, query_vector, max(k, candidates), mask)
    sparse = lexical_candidates(index, question, max(k, candidates), mask)
    return [Passage(i, index.chunk(i), score, dense.get(i, 0.0), sparse.get(i, 0.0))
            for i, score in fuse(dense, sparse, fusion)[:k]]
