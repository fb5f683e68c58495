"""The FAISS index chosen by size, and searches restricted to admitted ids (filters before ranking)."""
from __future__ import annotations

import faiss
import numpy as np
import pytest

from rag import vectors


def _unit_rows(n: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, 32)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_small_indexes_are_exact_and_large_ones_approximate() -> None:
    data = _unit_rows(600)
    assert isinstance(vectors.build_vector_index(data, exact_limit=1000), faiss.IndexFlatIP)
    assert isinstance(vectors.build_vector_index(data, exact_limit=100), faiss.IndexIVF)


@pytest.mark.parametrize("exact_limit", [1000, 100])
def test_a_restricted_search_returns_only_admitted_ids_best_first(exact_limit: int) -> None:
    data = _unit_rows(600)
    index = vectors.build_vector_index(data, exact_limit=exact_limit)
    query = data[17] + 0.1 * _unit_rows(1, seed=1)[0]
    admitted = np.zeros(len(data), dtype=bool)
    admitted[::3] = True  # row 17 is not admitted
    scores, ids = vectors.search(index, query[None, :], 10, admitted=admitted)
    assert len(ids[0]) == 10 and all(admitted[i] for i in ids[0])
    assert list(scores[0]) == sorted(scores[0], reverse=True)
    exact = np.flatnonzero(admitted)[np.argsort(-(data[admitted] @ query))[:10]]
    overlap = len(set(ids[0].tolist()) & set(exact.tolist()))
    assert overlap == 10 if exact_limit == 1000 else overlap >= 8


def test_a_restricted_search_checks_the_mask_length() -> None:
    index = vectors.build_vector_index(_unit_rows(50))
    with pytest.raises(ValueError, match="admitted has 49 entries"):
        vectors.search(index, _unit_rows(1), 5, admitted=np.ones(49, dtype=bool))


def test_an_exact_search_finds_what_faiss_finds() -> None:
    data = _unit_rows(500)
    index = vectors.build_vector_index(data)
    queries = _unit_rows(3, seed=2)
    scores, ids = vectors.search(index, queries, 7)
    faiss_scores, faiss_ids = index.search(queries, 7)
    assert ids.dtype == np.int64 and ids.shape == (3, 7)
    assert np.array_equal(ids, faiss_ids)
    assert np.allclose(scores, faiss_scores, atol=1e-5)
    assert vectors.search(index, queries[:1], 1000)[1].shape == (1, 500)  # k is capped at the index size
