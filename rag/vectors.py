"""FAISS index over chunk embeddings, with the index type chosen by corpus size.

Embeddings are L2-normalised float32 rows, so inner product is cosine similarity,
and the id a search returns is the row position of the vector that was indexed.

Up to ``EXACT_LIMIT`` vectors an exact ``IndexFlatIP`` is fast enough and needs no
tuning. Above it, float32 storage stops fitting the memory budget (1M x 384 is 1.5 GB
on its own) and a linear scan stops fitting the latency budget, so the vectors go
into HNSW over 8-bit scalar-quantised codes (``IndexHNSWSQ``): 384 B per vector of
codes plus ~260 B of graph links, searched in about a millisecond.
Every constant below was measured with ``bench/scale.py`` (synthetic clustered
384-d vectors, 2-core machine, single-query search on one thread).
"""

import os
from pathlib import Path

import faiss
import numpy as np

# Flat p95 per query: 3.5 ms at 50k vectors, 14 ms at 100k.
EXACT_LIMIT = 50_000
# M=16 reached recall@10 0.90 at efSearch 128 on 100k vectors, M=32 reached 0.99.
HNSW_M = 32
# 1M vectors build in 6.2 min on 2 cores; a larger value would exceed 10 min.
EF_CONSTRUCTION = 40
# At 1M: recall@10 0.970 (efSearch 128: 0.950), p50 1.2 ms, p95 5.3 ms.
EF_SEARCH = 256

PathLike = str | os.PathLike[str]


def build_vector_index(
    vectors: np.ndarray,
    *,
    exact_limit: int = EXACT_LIMIT,
    hnsw_m: int = HNSW_M,
    ef_search: int = EF_SEARCH,
) -> faiss.Index:
    """Index ``vectors`` (n, dim): exact up to ``exact_limit`` rows, HNSW-SQ8 above.

    Search ids are row positions in ``vectors``. HNSW scores are computed from the
    8-bit codes, so they can differ from the exact cosine by about 0.01.
    """
    matrix = _as_matrix(vectors, "vectors")
    _require_at_least(exact_limit, 0, "exact_limit")
    _require_at_least(hnsw_m, 2, "hnsw_m")
    _require_at_least(ef_search, 1, "ef_search")
    rows, dim = matrix.shape
    if rows <= exact_limit:
        index: faiss.Index = faiss.IndexFlatIP(dim)
    else:
        index = _hnsw_sq8(dim, hnsw_m, ef_search)
        index.train(matrix)
    index.add(matrix)
    return index


def search(
    index: faiss.Index, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (scores, ids), each of shape (len(queries), min(k, index.ntotal)).

    Rows are sorted by decreasing score. HNSW searches with an efSearch of at least
    ``k``, since a smaller candidate list cannot hold ``k`` results.
    """
    _require_at_least(k, 1, "k")
    matrix = _as_matrix(queries, "queries")
    if matrix.shape[1] != index.d:
        raise ValueError(
            f"queries have dimension {matrix.shape[1]}, index has {index.d}"
        )
    k = min(k, index.ntotal)
    if k == 0 or len(matrix) == 0:
        shape = (len(matrix), k)
        return np.empty(shape, np.float32), np.empty(shape, np.int64)
    return index.search(matrix, k, params=_search_params(index, k))


def save_vector_index(index: faiss.Index, path: PathLike) -> None:
    """Write ``index`` to ``path``; the HNSW efSearch is stored with it."""
    faiss.write_index(index, os.fspath(path))


def load_vector_index(path: PathLike, *, mmap: bool = False) -> faiss.Index:
    """Read an index written by ``save_vector_index``.

    ``mmap=True`` maps the codes and graph from the file instead of copying them:
    loading is instant, memory is page cache shared between processes (1M HNSW-SQ8:
    40 MB private instead of 670 MB), but the index is read-only.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no vector index at {path}")
    flags = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY if mmap else 0
    return faiss.read_index(os.fspath(path), flags)


def _hnsw_sq8(dim: int, hnsw_m: int, ef_search: int) -> faiss.IndexHNSWSQ:
    index = faiss.IndexHNSWSQ(
        dim, faiss.ScalarQuantizer.QT_8bit, hnsw_m, faiss.METRIC_INNER_PRODUCT
    )
    index.hnsw.efConstruction = EF_CONSTRUCTION
    index.hnsw.efSearch = ef_search
    return index


def _search_params(index: faiss.Index, k: int) -> faiss.SearchParameters | None:
    if isinstance(index, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(efSearch=max(index.hnsw.efSearch, k))
    return None


def _as_matrix(array: np.ndarray, name: str) -> np.ndarray:
    """View ``array`` as a C-contiguous float32 (rows, dim) matrix, copying if needed."""
    matrix = np.ascontiguousarray(array, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError(f"{name} must have shape (rows, dim>0), got {matrix.shape}")
    return matrix


def _require_at_least(value: int, minimum: int, name: str) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
