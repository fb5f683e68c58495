"""FAISS index over chunk embeddings, with the index type chosen by corpus size.

Embeddings are L2-normalised float32 rows, so inner product is cosine similarity,
and the id a search returns is the row position of the vector that was indexed.

Up to ``EXACT_LIMIT`` vectors an exact ``IndexFlatIP`` is fast enough and needs no
tuning. Above it a linear scan misses the latency budget and float32 storage misses
the memory budget (1M x 384 is 1.5 GB on its own), so the vectors go into an
inverted file over 8-bit scalar-quantised residuals (``IVF<sqrt n>,SQ8``): 384 B per
vector, and a search scans the ``nprobe`` lists whose centroids are nearest the query.
HNSW over the same SQ8 codes (M=32, efConstruction 40) was rejected: on 1M vectors
of the same kind it took 19.5 min to build instead of 38 s, wrote 656 MB instead of 375 MB,
and reached recall@10 0.952 at efSearch 128 (0.961 at 256) instead of 0.980.
Numbers come from ``bench/scale.py`` (synthetic clustered 384-d vectors, 2-core machine
shared with other jobs, single-query search on one thread); the HNSW and nprobe 8
figures from one-off runs on vectors from the same mixture.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import faiss
import numpy as np

# Flat p95 per query: 3-4 ms at 50k vectors, 14 ms at 70k, 25 ms at 100k.
EXACT_LIMIT = 50_000
# At 1M vectors (1,000 lists): recall@10 0.980, p50 1.2 ms, p95 5.3 ms (1.5 ms CPU); nprobe 8: 0.960.
NPROBE = 16

PathLike = str | os.PathLike[str]


def build_vector_index(
    vectors: np.ndarray, *, exact_limit: int = EXACT_LIMIT, nprobe: int = NPROBE
) -> faiss.Index:
    """Index ``vectors`` (n, dim): exact up to ``exact_limit`` rows, IVF-SQ8 above.

    Search ids are row positions in ``vectors``. IVF scores are computed from the
    8-bit codes: they differed from the exact cosine by up to 0.0033 at 1M vectors.
    """
    matrix = _as_matrix(vectors, "vectors")
    _require_at_least(exact_limit, 0, "exact_limit")
    _require_at_least(nprobe, 1, "nprobe")
    rows, dim = matrix.shape
    if rows <= exact_limit:
        index: faiss.Index = faiss.IndexFlatIP(dim)
    else:
        index = _ivf_sq8(dim, _list_count(rows), nprobe)
        index.train(matrix)
    index.add(matrix)
    return index


def search(
    index: faiss.Index, queries: np.ndarray, k: int, admitted: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (scores, ids), each of shape (len(queries), min(k, index.ntotal)).

    Rows are sorted by decreasing score. An IVF search probes at least as many lists
    as hold ``k`` vectors on average; if the probed lists still hold fewer than
    ``k``, the row is padded with id -1. ``admitted`` (a boolean mask over the ids)
    restricts the search to those ids; an IVF search then probes proportionally more
    lists, so that it scans about as many admitted vectors as an unrestricted one.
    """
    _require_at_least(k, 1, "k")
    matrix = _as_matrix(queries, "queries")
    if matrix.shape[1] != index.d:
        raise ValueError(
            f"queries have dimension {matrix.shape[1]}, index has {index.d}"
        )
    if admitted is not None and len(admitted) != index.ntotal:
        raise ValueError(f"admitted has {len(admitted)} entries, index has {index.ntotal} vectors")
    k = min(k, index.ntotal)
    if k == 0 or len(matrix) == 0:
        shape = (len(matrix), k)
        return np.empty(shape, np.float32), np.empty(shape, np.int64)
    if admitted is None:
        if isinstance(index, faiss.IndexFlatIP):
            return _flat_search(index, matrix, k)
        return index.search(matrix, k, params=_search_params(index, k))
    bitmap = np.packbits(np.asarray(admitted, dtype=bool), bitorder="little")
    selector = faiss.IDSelectorBitmap(len(admitted), faiss.swig_ptr(bitmap))
    share = max(int(np.count_nonzero(admitted)), 1) / index.ntotal
    return index.search(matrix, k, params=_search_params(index, k, share, selector))


def _flat_search(index: faiss.IndexFlatIP, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact search as one matrix product over the index's own vectors (no copy) and a partial sort.

    Same results as ``index.search``, 2.5x faster for one query over 20k vectors (0.65 ms instead of 1.6 ms),
    and it does not stall when the other core is busy as FAISS's OpenMP threads did (p50 5.8 ms then).
    """
    stored = faiss.rev_swig_ptr(index.get_xb(), index.ntotal * index.d).reshape(index.ntotal, index.d)
    scores = queries @ stored.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    return np.take_along_axis(top_scores, order, axis=1), np.take_along_axis(top, order, axis=1).astype(np.int64)


def save_vector_index(index: faiss.Index, path: PathLike) -> None:
    """Write ``index`` to ``path``; an IVF index keeps its nprobe."""
    faiss.write_index(index, os.fspath(path))


def load_vector_index(path: PathLike, *, mmap: bool = False) -> faiss.Index:
    """Read an index written by ``save_vector_index``.

    ``mmap=True`` maps an IVF index's lists from the file instead of reading them:
    loading costs nothing (1M vectors: 2 MB instead of 375 MB) and lists become
    resident as they are searched, as page cache that processes share and the kernel
    can reclaim. Adding to a mapped index raises; overwriting its file while mapped
    crashes the process (unlinking is safe). A flat index is always read into memory.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"no vector index at {path}")
    return faiss.read_index(os.fspath(path), faiss.IO_FLAG_MMAP if mmap else 0)


def _list_count(rows: int) -> int:
    """sqrt(n) lists, of ~sqrt(n) vectors each: 1M vectors train and add in 38 s."""
    return max(1, math.isqrt(rows))


def _ivf_sq8(dim: int, lists: int, nprobe: int) -> faiss.IndexIVFScalarQuantizer:
    # For inner product faiss trains the coarse centroids with spherical k-means.
    index = faiss.index_factory(dim, f"IVF{lists},SQ8", faiss.METRIC_INNER_PRODUCT)
    index.nprobe = nprobe
    return index


def _search_params(
    index: faiss.Index, k: int, share: float = 1.0, selector: faiss.IDSelector | None = None
) -> faiss.SearchParameters | None:
    if isinstance(index, faiss.IndexIVF):
        lists_for_k = math.ceil(k * index.nlist / (index.ntotal * share))
        nprobe = min(index.nlist, max(math.ceil(index.nprobe / share), lists_for_k))
        return faiss.SearchParametersIVF(nprobe=nprobe, sel=selector)
    return None if selector is None else faiss.SearchParameters(sel=selector)


def _as_matrix(array: np.ndarray, name: str) -> np.ndarray:
    """View ``array`` as a C-contiguous float32 (rows, dim) matrix, copying if needed."""
    matrix = np.ascontiguousarray(array, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ValueError(f"{name} must have shape (rows, dim>0), got {matrix.shape}")
    return matrix


def _require_at_least(value: int, minimum: int, name: str) -> None:
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
