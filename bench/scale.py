"""How rag.vectors indexes scale: build time, latency, recall, disk size and memory, 10k to 1M vectors.

Corpus: synthetic 384-d unit vectors from a clustered mixture (``Mixture``), with the metadata a
build keeps beside them, written the way ``rag.index`` writes it: article metadata in articles.jsonl,
their texts in texts.bin (``rag.storage.write_texts``; a chunk's text is a slice of its article's, so it
is not stored twice) and one int32 row per chunk (article, start, end, first sentence, last sentence + 1)
in chunks.npy.

Each size is indexed twice, exact (``exact_limit=n``) and approximate (``exact_limit=0``), so both
sides of ``rag.vectors.EXACT_LIMIT`` show; "chosen" marks what ``build_vector_index`` picks by
default. Per index: build seconds (2 threads); p50/p95 wall and p95 CPU time of 200 single-query
``rag.vectors.search`` calls (k=10, one thread, after 20 warm-up queries), queries being fresh
draws from the mixture; recall@10 against exact search; the largest error of a returned score
against the exact cosine; index file size; and the resident memory (VmRSS from /proc, so Linux
only) of a fresh process that loads the index and the metadata and answers the same 200 queries,
once with the index read into memory and once memory-mapped.
On a machine shared with other jobs the wall-time tail includes waits for a core; CPU time does not.

Usage: .venv/bin/python bench/scale.py [--sizes 10000,1000000 | --quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from rag import vectors
from rag.storage import TextFile, write_texts
from rag.types import Article

DIM = 384
K = 10
QUERIES = 200
WARMUP = 20
BUILD_THREADS = 2
DEFAULT_SIZES = (10_000, 30_000, 50_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 20_000)
CHUNKS_PER_ARTICLE = 8
CHUNK_CHARS = 300
SENTENCES_PER_CHUNK = 3
ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz      ", dtype=np.uint8)  # about one space in six
MB = 1 << 20


@dataclass(frozen=True)
class Mixture:
    """Clustered unit vectors shaped like sentence embeddings of news.

    100 topics x 40 stories = 4,000 cluster centres; a story's centre is its topic's plus a random
    direction of length 0.8, so clusters overlap at two scales. Story sizes follow Zipf's law (a few
    big stories, a long tail). Around its centre a vector gets Gaussian noise whose variance along
    the i-th of 384 randomly rotated axes falls as 1/(i+1): sentence embeddings have a low effective
    dimension, and isotropic noise would put every neighbour at the same distance. The result has a
    participation ratio of 64 (all-MiniLM-L6-v2 chunks of XQuAD articles: 77) and a mean cosine of
    0.01 between random pairs (XQuAD: 0.03).
    """

    centres: np.ndarray  # (clusters, DIM), unit rows
    weights: np.ndarray  # (clusters,), sums to 1
    noise: np.ndarray  # (DIM, DIM), maps white noise to within-cluster noise

    @classmethod
    def make(cls, rng: np.random.Generator, topics: int = 100, stories: int = 40) -> Mixture:
        topic_centres = _unit(rng.standard_normal((topics, DIM)))
        offsets = 0.8 * _unit(rng.standard_normal((topics * stories, DIM)))
        centres = _unit(np.repeat(topic_centres, stories, axis=0) + offsets)
        zipf = 1.0 / np.arange(1, len(centres) + 1)
        rotation, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
        spectrum = 1.0 / np.arange(1, DIM + 1)
        noise = np.sqrt(spectrum / spectrum.sum())[:, None] * rotation.T
        return cls(centres.astype(np.float32), rng.permutation(zipf / zipf.sum()), noise.astype(np.float32))

    def sample(self, n: int, rng: np.random.Generator, batch: int = 100_000) -> np.ndarray:
        out = np.empty((n, DIM), np.float32)
        for start in range(0, n, batch):
            rows = min(batch, n - start)
            labels = rng.choice(len(self.centres), rows, p=self.weights)
            points = self.centres[labels] + rng.standard_normal((rows, DIM), dtype=np.float32) @ self.noise
            out[start:start + rows] = _unit(points)
        return out


@dataclass
class Row:
    vectors: int
    index: str
    chosen: bool
    build_s: float
    p50_ms: float
    p95_ms: float
    cpu_p95_ms: float
    recall_at_10: float
    score_error: float
    index_mb: float
    metadata_mb: float
    memory: dict[str, float]  # fresh-process memory after loading the index into memory
    memory_mmap: dict[str, float]  # the same with load_vector_index(mmap=True)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def write_metadata(directory: Path, n: int, rng: np.random.Generator) -> float:
    """Write articles.jsonl, texts.bin and chunks.npy for n chunks of CHUNK_CHARS characters; return their MB."""
    article_chars = CHUNKS_PER_ARTICLE * CHUNK_CHARS
    texts = []
    with open(directory / "articles.jsonl", "w", encoding="utf-8") as out:
        for a in range(math.ceil(n / CHUNKS_PER_ARTICLE)):
            texts.append(ALPHABET[rng.integers(0, len(ALPHABET), article_chars)].tobytes().decode("ascii"))
            article = Article(id=f"a{a:07d}", title=f"Article {a}", source="Synthetic Wire", text="",
                              published="2025-06-05", url=f"https://example.com/news/{a}")
            out.write(json.dumps({k: v for k, v in asdict(article).items() if k != "text"}) + "\n")
    write_texts(directory, texts)
    chunk = np.arange(n)
    position = chunk % CHUNKS_PER_ARTICLE
    table = np.column_stack([chunk // CHUNKS_PER_ARTICLE, position * CHUNK_CHARS, (position + 1) * CHUNK_CHARS,
                             chunk * SENTENCES_PER_CHUNK, (chunk + 1) * SENTENCES_PER_CHUNK])
    np.save(directory / "chunks.npy", table.astype(np.int32))
    return sum(_megabytes(directory / name) for name in ("articles.jsonl", "texts.bin", "text_offsets.npy",
                                                         "chunks.npy"))


def _megabytes(path: Path) -> float:
    return path.stat().st_size / MB


def time_searches(index: faiss.Index, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Wall and CPU seconds taken by each query searched alone on one thread, its top-K scores and ids.

    CPU time leaves out the time the thread waited for a core, which a shared machine adds to the wall time.
    """
    for query in queries[:WARMUP]:
        vectors.search(index, query[None, :], K)
    wall = np.empty(len(queries))
    cpu = np.empty(len(queries))
    scores = np.empty((len(queries), K), np.float32)
    ids = np.empty((len(queries), K), np.int64)
    for i, query in enumerate(queries):
        wall_start, cpu_start = time.perf_counter(), time.thread_time()
        found_scores, found = vectors.search(index, query[None, :], K)
        wall[i], cpu[i] = time.perf_counter() - wall_start, time.thread_time() - cpu_start
        scores[i], ids[i] = found_scores[0], found[0]
    return wall, cpu, scores, ids


def _percentile_ms(seconds: np.ndarray, q: int) -> float:
    return float(np.percentile(seconds, q) * 1e3)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(f, t)) / K for f, t in zip(found, truth)]))


def score_error(scores: np.ndarray, ids: np.ndarray, corpus: np.ndarray, queries: np.ndarray) -> float:
    """Largest difference between a returned score and the exact cosine of that query and vector."""
    exact = np.einsum("qkd,qd->qk", corpus[ids], queries)
    return float(np.abs(scores - exact)[ids >= 0].max())


def memory_status() -> dict[str, float]:
    """Resident (VmRSS), peak resident (VmHWM) and private (RssAnon) memory of this process, in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return {name: int(fields[key].split()[0]) / 1024
            for name, key in (("rss_mb", "VmRSS"), ("peak_mb", "VmHWM"), ("private_mb", "RssAnon"))}


def probe(directory: Path, index_file: Path, mmap: bool) -> dict[str, float]:
    """Run in a fresh process: load index and metadata as a server would, answer the queries."""
    faiss.omp_set_num_threads(1)
    before = memory_status()["rss_mb"]
    index = vectors.load_vector_index(index_file, mmap=mmap)
    with_index = memory_status()["rss_mb"]
    with open(directory / "articles.jsonl", encoding="utf-8") as lines:
        articles = [Article(**json.loads(line), text="") for line in lines]
    texts = TextFile(directory)
    chunks = np.load(directory / "chunks.npy")
    served = 0
    for query in np.load(directory / "queries.npy"):
        _, ids = vectors.search(index, query[None, :], K)
        hits = chunks[ids[0][ids[0] >= 0]]
        served += len([texts[a][start:end] for a, start, end, _, _ in hits.tolist()])
    assert len(articles) == len(texts)
    return {"interpreter_mb": before, "with_index_mb": with_index, "chunks_served": served, **memory_status()}


def measure_memory(directory: Path, index_file: Path, mmap: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--probe", str(directory), str(index_file)] + (["--mmap"] if mmap else [])
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def bench_index(n: int, exact_limit: int, corpus: np.ndarray, queries: np.ndarray, truth: np.ndarray,
                directory: Path, metadata_mb: float) -> Row:
    faiss.omp_set_num_threads(BUILD_THREADS)
    start = time.perf_counter()
    index = vectors.build_vector_index(corpus, exact_limit=exact_limit)
    build_s = time.perf_counter() - start
    faiss.omp_set_num_threads(1)
    wall, cpu, scores, found = time_searches(index, queries)
    index_file = directory / "chunks.faiss"
    vectors.save_vector_index(index, index_file)
    name = type(index).__name__
    del index
    row = Row(vectors=n, index=name, chosen=(exact_limit == n) == (n <= vectors.EXACT_LIMIT), build_s=build_s,
              p50_ms=_percentile_ms(wall, 50), p95_ms=_percentile_ms(wall, 95),
              cpu_p95_ms=_percentile_ms(cpu, 95),
              recall_at_10=recall(found, truth), score_error=score_error(scores, found, corpus, queries),
              index_mb=_megabytes(index_file), metadata_mb=metadata_mb,
              memory=measure_memory(directory, index_file, mmap=False),
              memory_mmap=measure_memory(directory, index_file, mmap=True))
    index_file.unlink()
    return row


def bench_size(n: int, mixture: Mixture, queries: np.ndarray, workdir: Path) -> list[Row]:
    log(f"{n:,} vectors: sampling, exact top-{K}, metadata")
    corpus = mixture.sample(n, np.random.default_rng((n, 1)))
    faiss.omp_set_num_threads(BUILD_THREADS)
    _, truth = faiss.knn(queries, corpus, K, metric=faiss.METRIC_INNER_PRODUCT)
    directory = workdir / str(n)
    directory.mkdir()
    np.save(directory / "queries.npy", queries)
    metadata_mb = write_metadata(directory, n, np.random.default_rng((n, 2)))
    rows = []
    for exact_limit in (n, 0):
        rows.append(bench_index(n, exact_limit, corpus, queries, truth, directory, metadata_mb))
        log(f"  {rows[-1].index}: built in {rows[-1].build_s:.1f} s, recall@{K} {rows[-1].recall_at_10:.3f}")
    return rows


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def markdown(rows: list[Row]) -> str:
    header = ["vectors", "index", "chosen", "build s", "p50 ms", "p95 ms", "p95 CPU ms", f"recall@{K}",
              "score error", "index MB", "metadata MB", "RSS MB", "RSS MB mmap (private)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [f"{r.vectors:,}", r.index, "yes" if r.chosen else "", f"{r.build_s:.1f}", f"{r.p50_ms:.2f}",
                 f"{r.p95_ms:.2f}", f"{r.cpu_p95_ms:.2f}", f"{r.recall_at_10:.3f}", f"{r.score_error:.4f}",
                 f"{r.index_mb:.0f}", f"{r.metadata_mb:.0f}", f"{r.memory['rss_mb']:.0f}",
                 f"{r.memory_mmap['rss_mb']:.0f} ({r.memory_mmap['private_mb']:.0f})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_sizes(text: str) -> tuple[int, ...]:
    sizes = tuple(int(part) for part in text.split(","))
    if any(size < K for size in sizes):
        raise argparse.ArgumentTypeError(f"sizes must be >= {K}, got {text}")
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--sizes", type=parse_sizes, default=DEFAULT_SIZES, help="comma-separated vector counts")
    sizes.add_argument("--quick", action="store_const", dest="sizes", const=QUICK_SIZES,
                       help=f"sizes {','.join(map(str, QUICK_SIZES))} (under a minute)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--probe", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--mmap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(*args.probe, mmap=args.mmap)))
        return
    mixture = Mixture.make(np.random.default_rng(0))
    queries = mixture.sample(QUERIES, np.random.default_rng(1))
    with tempfile.TemporaryDirectory(prefix="rag-scale-") as workdir:
        rows = [row for n in args.sizes for row in bench_size(n, mixture, queries, Path(workdir))]
    print(f"## Vector search at scale: synthetic clustered {DIM}-d vectors, {QUERIES} single queries, k={K}\n")
    print(markdown(rows))
    interpreter_mb = rows[0].memory["interpreter_mb"]
    print(f"\nchosen: what build_vector_index picks by default (exact up to {vectors.EXACT_LIMIT:,} vectors, "
          f"IVF nprobe {vectors.NPROBE} above). RSS: a fresh process holding the index and the metadata after "
          f"the queries (the interpreter with numpy and faiss alone: {interpreter_mb:.0f} MB); mmap: "
          f"load_vector_index(mmap=True), private = RssAnon.")
    if args.json:
        settings = {"dim": DIM, "k": K, "queries": QUERIES, "exact_limit": vectors.EXACT_LIMIT,
                    "nprobe": vectors.NPROBE, "build_threads": BUILD_THREADS, "search_threads": 1}
        args.json.write_text(json.dumps({"settings": settings, "rows": [asdict(r) for r in rows]}, indent=2))


if __name__ == "__main__":
    main()
