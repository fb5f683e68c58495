"""BM25 over chunks (bm25s, with an English stemmer and stopwords)."""
from __future__ import annotations

import math
from collections import Counter
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stemmed word tokens without stopwords; the same for documents and queries."""
    if not texts:
        return []
    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)


def build_bm25(tokens: list[list[str]]) -> bm25s.BM25:
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    return retriever


def document_frequencies(tokens: list[list[str]]) -> dict[str, int]:
    """In how many documents each token occurs; the answerer weighs question words by it."""
    counts: Counter[str] = Counter()
    for doc in tokens:
        counts.update(set(doc))
    return dict(counts)


def idf(df: dict[str, int], n_docs: int, token: str) -> float:
    """BM25's inverse document frequency, always positive (unknown tokens are the rarest)."""
    return math.log(1 + (n_docs - df.get(token, 0) + 0.5) / (df.get(token, 0) + 0.5))


def save_bm25(retriever: bm25s.BM25, directory: Path) -> None:
    retriever.save(str(directory), show_progress=False)


def load_bm25(directory: Path) -> bm25s.BM25:
    return bm25s.BM25.load(str(directory), mmap=True, show_progress=False)


def bm25_scores(retriever: bm25s.BM25, query: str, n_docs: int, mask: np.ndarray | None = None) -> np.ndarray:
    """BM25 score of every document for the query (0 where masked out or no term matches)."""
    tokens = tokenize([query])[0]
    if not tokens or n_docs == 0:
        return np.zeros(n_docs, dtype=np.float32)
    scores = retriever.get_scores(tokens)
    if mask is not None:
        scores = scores * mask
    return np.asarray(scores, dtype=np.float32)
