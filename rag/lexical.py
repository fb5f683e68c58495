"""BM25 over chunks (bm25s, with an English stemmer, spaCy's irregular lemmas and stopwords)."""
from __future__ import annotations

import json
import math
from collections import Counter
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np

from rag.storage import DamagedFileError, RowFile


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


TOKENIZER_VERSION = 2  # recorded in each index; a change makes `rag index` rebuild BM25 (no re-embedding)


class _LemmaStemmer:
    """The Snowball stem of a word's lemma, where spaCy's English exception tables know an irregular one
    ("told" -> "tell", "won" -> "win", "children" -> "child"), which no stemmer finds."""

    def __init__(self) -> None:
        from rag import nlp

        tables = nlp.get_nlp().get_pipe("lemmatizer").lookups.get_table("lemma_exc")
        self.stem = stem = _stemmer().stemWord
        self.irregular = {word: lemmas[0] for pos in ("verb", "noun") for word, lemmas in tables[pos].items()
                          if lemmas and stem(word) != stem(lemmas[0])}

    def stemWords(self, words: list[str]) -> list[str]:  # noqa: N802 (the name bm25s calls)
        return [self.stem(self.irregular.get(w, w)) for w in words]


@lru_cache(maxsize=1)
def _lemma_stemmer() -> _LemmaStemmer:
    return _LemmaStemmer()


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased, stemmed word tokens without stopwords; the same for documents and queries."""
    if not texts:
        return []
    return bm25s.tokenize(texts, stopwords="en", stemmer=_lemma_stemmer(), return_ids=False, show_progress=False)


K1, B = 1.5, 0.75  # BM25's term-frequency saturation and length normalisation (bm25s's defaults; Milvus is given them)


def build_bm25(tokens: list[list[str]]) -> bm25s.BM25:
    retriever = bm25s.BM25(k1=K1, b=B)
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


class BM25Postings:
    """The index bm25s saves (per token, the documents holding it and their precomputed BM25 term scores, in
    CSC arrays), scored by reading only the query tokens' postings with pread: as `bm25s.BM25.get_scores`
    computes, without keeping the arrays resident (a 1M-chunk index has 374 MB of them)."""

    def __init__(self, directory: Path) -> None:
        params = json.loads((directory / "params.index.json").read_text())
        if params.get("method", "lucene") not in ("lucene", "robertson", "atire"):
            raise ValueError(f"{directory}: BM25 variant {params.get('method')!r} needs scores this reader lacks")
        self.num_docs = int(params["num_docs"])
        self.vocabulary: dict[str, int] = json.loads((directory / "vocab.index.json").read_text())
        self.indptr = np.load(directory / "indptr.csc.index.npy")
        self.indices = RowFile(directory / "indices.csc.index.npy")
        self.data = RowFile(directory / "data.csc.index.npy")
        if not int(self.indptr[-1]) == len(self.indices) == len(self.data):
            self.close()
            raise DamagedFileError(f"bm25/: the postings end at {int(self.indptr[-1])}, but hold {len(self.indices)} "
                             f"documents and {len(self.data)} scores")

    def close(self) -> None:
        self.indices.close()
        self.data.close()

    def get_scores(self, tokens: list[str]) -> np.ndarray:
        postings = [slice(int(self.indptr[i]), int(self.indptr[i + 1]))
                    for i in (self.vocabulary[t] for t in tokens if t in self.vocabulary)]
        docs = [self.indices[p] for p in postings]
        weights = [self.data[p] for p in postings]
        if not docs:
            return np.zeros(self.num_docs, dtype=np.float32)
        return np.bincount(np.concatenate(docs), np.concatenate(weights), minlength=self.num_docs).astype(np.float32)


def load_bm25(directory: Path) -> BM25Postings:
    return BM25Postings(directory)


def bm25_scores(retriever: BM25Postings | bm25s.BM25, query: str, n_docs: int, mask: np.ndarray | None = None
                ) -> np.ndarray:
    """BM25 score of every document for the query (0 where masked out or no term matches)."""
    tokens = tokenize([query])[0]
    if not tokens or n_docs == 0:
        return np.zeros(n_docs, dtype=np.float32)
    scores = retriever.get_scores(tokens)
    if mask is not None:
        scores = scores * mask
    return np.asarray(scores, dtype=np.float32)


def stem_words(words: list[str]) -> list[str]:
    """Lower-cased words as `tokenize` stems them (irregular forms through their lemma), stopwords kept."""
    return _lemma_stemmer().stemWords(words)
