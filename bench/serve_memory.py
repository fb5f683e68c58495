"""Memory of a real `rag serve` process: with the seed corpus, and with a synthetic index of 1M chunks.

Two settings, each served by `rag serve --index DIR --port P` in a subprocess (the embedding model,
spaCy and the index loaded as in production):

- seed: the repository's corpus/, indexed with `rag.index.build_index` into bench/.cache/serve_memory/seed;
- large: a synthetic build of ``--chunks`` chunks (default 1,000,000) in the exact layout `rag.index`
  reads. Its articles (~10 chunks each) are made of real sentences drawn at random from the seed
  articles and the SQuAD paragraphs of shared/eval, with the entities and noun phrases spaCy finds in
  those sentences as the spans table; sentence and chunk offsets come from `rag.index.analyze`, so they
  slice the article text exactly as a real build's do. Vectors are random unit vectors from the clustered
  mixture of bench/scale.py (no model runs); the FAISS index, BM25 and df.json are made by the same
  `rag.vectors` and `rag.lexical` calls a build makes. The build is cached under
  bench/.cache/serve_memory/large (large-N for other sizes) and remade when FORMAT_VERSION, the model
  or the generator changes.

`write_build` mirrors `rag.index._write_build` but streams the vectors to their .npy files: the real
function concatenates every article's vectors in memory (and copies them once more), which at 1M chunks
is over 10 GB. Before each run both writers are given the same few articles and every file they write
is compared, so a format change in rag/index.py that this script does not follow stops it.

For each setting: time from start until /healthz says ok, 20 `/ask` requests (the dev questions and
variants of them, as bench/latency.py sends), then VmRSS and VmHWM of the server from /proc/<pid>/status,
its resident memory split by mapping (/proc/<pid>/smaps: anonymous memory, each index file, shared
libraries), /ask p50 and the index size on disk. Then more traffic: 300 distinct XQuAD questions (50 with
--quick) and one question filtered by source, with the memory after each, since touched pages of
memory-mapped files stay resident. For the large index a fresh process also loads the models and the
build's files one at a time, as `IndexData.__init__` does, and records the resident memory after each
step: where the memory goes. Linux only (/proc).

Usage: .venv/bin/python bench/serve_memory.py [--chunks N | --quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from corpora import CACHE, EVAL, markdown_table, percentile, seed_records, squad_records
from latency import ask, free_port, questions, start_server
from scale import DIM, Mixture

from rag import embedding, lexical, nlp, vectors
from rag.chunking import chunk_sentences, split_sentences
from rag.index import (FORMAT_VERSION, ArticleRows, _assemble, _write_build, analyze, build_index, check_model,
                       chunker_settings, current_build)
from rag.ingest import content_hash, slugify
from rag.settings import Settings
from rag.types import Article

WORK = CACHE / "serve_memory"
DEFAULT_CHUNKS = 1_000_000
QUICK_CHUNKS = 20_000
TARGET_MB = 1536  # the target: under 1.5 GB resident with 1M chunks loaded
QUESTIONS = 20
MORE_QUESTIONS = 300  # then this many distinct XQuAD questions (--quick: QUICK_MORE), to see memory grow
QUICK_MORE = 50
FILTER_SOURCE = "Jiji Press"  # one of the seed's four outlets: a quarter of the synthetic articles
CHUNKS_PER_ARTICLE = (6, 14)  # drawn uniformly, mean 10
SENTENCES_PER_PARAGRAPH = 4
TOKENIZE_BATCH = 50_000  # chunk texts per lexical.tokenize call
VECTOR_BATCH = 100_000
GENERATOR_VERSION = 1  # bump when the synthetic build changes, so a cached one is remade
MB = 1 << 20


@dataclasses.dataclass(frozen=True)
class PoolSentence:
    """A real sentence with its spans relative to its start: (start, end, head start, head end) and labels."""

    text: str
    spans: np.ndarray  # (k, 4) int64
    labels: tuple[str, ...]  # "LABEL|dep" per span


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sentence_pool() -> tuple[list[PoolSentence], str]:
    """Sentences of the seed articles and the SQuAD paragraphs with spaCy's spans, and a key of their content.

    The spans are cached under that key: spaCy takes about 15 s over the ~1,900 sentences.
    """
    texts = [r["text"][s:e] for r in seed_records() + squad_records() for s, e in split_sentences(r["text"])]
    key = hashlib.sha256("\n".join(texts + [nlp.SPACY_PACKAGE]).encode()).hexdigest()[:16]
    path = WORK / f"pool-{key}.json"
    if not path.exists():
        log(f"annotating {len(texts):,} pool sentences with spaCy (once)")
        annotated = [[[s.start, s.end, s.head_start, s.head_end, f"{s.label}|{s.dep}"] for s in spans]
                     for spans in nlp.annotate(texts)]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"texts": texts, "spans": annotated}))
    data = json.loads(path.read_text())
    pool = [PoolSentence(text, np.array([s[:4] for s in spans], np.int64).reshape(-1, 4), tuple(s[4] for s in spans))
            for text, spans in zip(data["texts"], data["spans"])]
    return pool, key


@dataclasses.dataclass(frozen=True)
class Outlets:
    """The seed's outlets and sections, given to the synthetic articles in turn."""

    sources: tuple[str, ...]
    sections: tuple[str, ...]

    @classmethod
    def of_seed(cls) -> Outlets:
        records = seed_records()
        return cls(tuple(sorted({r["source"] for r in records})),
                   tuple(sorted({r.get("section", "General") for r in records})))


def compose_article(number: int, target_chunks: int, pool: list[PoolSentence], outlets: Outlets,
                    settings: Settings, rng: np.random.Generator) -> tuple[Article, ArticleRows]:
    """An article of `target_chunks` chunks made of random pool sentences, with its rows as a build stores them.

    Offsets come from `rag.index.analyze` on the final text; pool spans are moved to the sentence holding
    them (a span the splitter cut in two is dropped). Vectors are left empty: they are written separately.
    """
    picks: list[int] = []
    starts: list[int] = []
    parts: list[str] = []
    position = 0
    while True:
        for i in rng.integers(len(pool), size=4 * target_chunks).tolist():
            separator = "" if not picks else "\n\n" if len(picks) % SENTENCES_PER_PARAGRAPH == 0 else " "
            position += len(separator)
            picks.append(i)
            starts.append(position)
            parts.append(separator + pool[i].text)
            position += len(pool[i].text)
        known = [(s, s + len(pool[i].text)) for s, i in zip(starts, picks)]
        planned = chunk_sentences(known, settings.chunk_max_chars, settings.chunk_overlap_sentences)
        if len(planned) >= target_chunks:
            break
    cut = planned[target_chunks - 1][1]
    text = "".join(parts)[:cut]
    source = outlets.sources[number % len(outlets.sources)]
    published = (dt.date(2016, 1, 1) + dt.timedelta(days=int(rng.integers(3650)))).isoformat()
    title = " ".join(pool[picks[0]].text.split()[:12]).rstrip(",.;:")
    article_id = f"{published}-{slugify(f'{source} {title}', 60)}-{number}"
    article = Article(id=article_id, title=title, source=source, text=text, published=published,
                      section=outlets.sections[number % len(outlets.sections)],
                      url=f"https://news.example.com/{article_id}", path=f"{article_id}.md")
    sentences, chunks = analyze(article, settings)

    placed = [(s, i) for s, i in zip(starts, picks) if s + len(pool[i].text) <= cut and len(pool[i].spans)]
    if placed:
        spans = np.concatenate([pool[i].spans + s for s, i in placed])
        labels = [label for _, i in placed for label in pool[i].labels]
        row = np.searchsorted(sentences[:, 0], spans[:, 0], side="right") - 1
        keep = (row >= 0) & (spans[:, 1] <= sentences[np.maximum(row, 0), 1])
        span_rows = np.column_stack([row, spans[:, :2], spans[:, 2:]])[keep]
        labels = [label for label, kept in zip(labels, keep.tolist()) if kept]
    else:
        span_rows, labels = np.zeros((0, 5), np.int64), []
    empty = np.zeros((0, DIM), np.float32)
    return article, ArticleRows(sentences, chunks, empty, empty, span_rows.astype(np.int64), labels)


def synthetic_articles(n_chunks: int, pool: list[PoolSentence], settings: Settings, seed: int = 0,
                       progress: bool = True) -> tuple[list[Article], list[ArticleRows]]:
    """Articles of 6-14 chunks (mean 10) adding up to exactly n_chunks chunks."""
    rng = np.random.default_rng(seed)
    outlets = Outlets.of_seed()
    articles: list[Article] = []
    rows: list[ArticleRows] = []
    remaining = n_chunks
    while remaining > 0:
        target = min(remaining, int(rng.integers(CHUNKS_PER_ARTICLE[0], CHUNKS_PER_ARTICLE[1] + 1)))
        article, row = compose_article(len(articles), target, pool, outlets, settings, rng)
        if len(row.chunks) > remaining:  # the real splitter cut a sentence the pool had whole: draw again
            continue
        articles.append(article)
        rows.append(row)
        remaining -= len(row.chunks)
        if progress and len(articles) % 10_000 == 0:
            log(f"  {len(articles):,} articles, {n_chunks - remaining:,} chunks")
    return articles, rows


VectorWriter = Callable[[Path, int, int], None]  # (build directory, chunks, sentences) -> writes the two .npy


def write_build(index_dir: Path, articles: list[Article], rows: list[ArticleRows], hashes: dict[str, str],
                settings: Settings, write_vectors: VectorWriter, tokenize_batch: int = TOKENIZE_BATCH,
                progress: bool = True) -> Path:
    """The files of `rag.index._write_build`, with the vectors written by `write_vectors` straight to disk.

    Same tables (`_assemble`), FAISS index, BM25, df.json, articles.jsonl and manifest; no fsync and no
    pruning (the cache holds one build). Returns the build directory, which CURRENT names.
    """
    say = log if progress else lambda message: None
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    name = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-synthetic"
    tmp = builds / f".tmp-{name}"
    tmp.mkdir()
    try:
        tables, span_labels, ranges = _assemble(rows)
        np.savez(tmp / "tables.npz", **tables)
        say(f"  tables: {', '.join(f'{k} {v.shape}' for k, v in tables.items())}")
        write_vectors(tmp, len(tables["chunks"]), len(tables["sentences"]))
        chunk_vectors = np.load(tmp / "chunk_vectors.npy", mmap_mode="r")
        say("  FAISS index")
        vectors.save_vector_index(vectors.build_vector_index(chunk_vectors), tmp / "chunks.faiss")
        del chunk_vectors
        say("  BM25")
        chunk_rows = tables["chunks"][:, :3].tolist()
        del tables
        tokens: list[list[str]] = []
        for lo in range(0, len(chunk_rows), tokenize_batch):
            tokens += lexical.tokenize([articles[a].text[s:e] for a, s, e in chunk_rows[lo:lo + tokenize_batch]])
        if tokens:
            lexical.save_bm25(lexical.build_bm25(tokens), tmp / "bm25")
        (tmp / "df.json").write_text(json.dumps(lexical.document_frequencies(tokens)))
        del tokens
        with open(tmp / "articles.jsonl", "w", encoding="utf-8") as out:
            for article in articles:
                out.write(json.dumps(dataclasses.asdict(article), ensure_ascii=False) + "\n")
        manifest = {
            "format": FORMAT_VERSION,
            "model": embedding.model_identity(),
            "chunker": chunker_settings(settings),
            "build_time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "counts": {"articles": len(articles), "chunks": len(chunk_rows),
                       "sentences": ranges[-1][1][1] if ranges else 0},
            "span_labels": span_labels,
            "articles": {a.id: {"hash": hashes[a.id], "chunks": c, "sentences": s}
                         for a, (c, s) in zip(articles, ranges)},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        os.rename(tmp, builds / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    (index_dir / "CURRENT").write_text(name + "\n")
    return builds / name


def random_vector_writer(mixture: Mixture, seed: int) -> VectorWriter:
    """Writes unit vectors drawn from `mixture` into chunk_vectors.npy and sentence_vectors.npy, in batches."""
    def write(directory: Path, n_chunks: int, n_sentences: int) -> None:
        rng = np.random.default_rng(seed)
        for name, rows in (("chunk_vectors.npy", n_chunks), ("sentence_vectors.npy", n_sentences)):
            log(f"  {name}: {rows:,} random vectors")
            out = np.lib.format.open_memmap(directory / name, mode="w+", dtype=np.float32, shape=(rows, DIM))
            for lo in range(0, rows, VECTOR_BATCH):
                out[lo:lo + VECTOR_BATCH] = mixture.sample(min(VECTOR_BATCH, rows - lo), rng)
            out.flush()
            del out
    return write


def check_same_format(pool: list[PoolSentence], settings: Settings) -> None:
    """Write the same few articles with rag.index._write_build and with write_build; every file must match."""
    articles, rows = synthetic_articles(40, pool, settings, seed=7, progress=False)
    rng = np.random.default_rng(7)
    mixture = Mixture.make(rng, topics=4, stories=4)
    full = [dataclasses.replace(r, chunk_vectors=mixture.sample(len(r.chunks), rng),
                                sentence_vectors=mixture.sample(len(r.sentences), rng)) for r in rows]
    hashes = {a.id: content_hash(a) for a in articles}

    def save_vectors(directory: Path, n_chunks: int, n_sentences: int) -> None:
        np.save(directory / "chunk_vectors.npy", np.concatenate([r.chunk_vectors for r in full]))
        np.save(directory / "sentence_vectors.npy", np.concatenate([r.sentence_vectors for r in full]))

    with tempfile.TemporaryDirectory(prefix="rag-serve-memory-") as tmp:
        reference = Path(tmp) / "reference" / "builds" / _write_build(Path(tmp) / "reference", articles, full,
                                                                      hashes, settings)
        ours = write_build(Path(tmp) / "ours", articles, rows, hashes, settings, save_vectors, tokenize_batch=7,
                           progress=False)
        files = sorted(str(p.relative_to(reference)) for p in reference.rglob("*") if p.is_file())
        found = sorted(str(p.relative_to(ours)) for p in ours.rglob("*") if p.is_file())
        if files != found:
            raise RuntimeError(f"rag.index writes {files}, this script {found}: follow rag/index.py")
        for name in files:
            if not _same_file(reference / name, ours / name):
                raise RuntimeError(f"{name} differs from what rag.index._write_build writes: follow rag/index.py")


def _same_file(a: Path, b: Path) -> bool:
    if a.suffix == ".npz":
        x, y = np.load(a), np.load(b)
        return x.files == y.files and all(np.array_equal(x[k], y[k]) and x[k].dtype == y[k].dtype for k in x.files)
    if a.suffix == ".npy":
        x, y = np.load(a), np.load(b)
        return x.dtype == y.dtype and np.array_equal(x, y)
    if a.name == "manifest.json":
        x, y = json.loads(a.read_text()), json.loads(b.read_text())
        x.pop("build_time")
        y.pop("build_time")
        return x == y
    return a.read_bytes() == b.read_bytes()


def large_index(n_chunks: int, settings: Settings) -> Path:
    """The synthetic index directory of n_chunks chunks, generated unless a matching one is cached."""
    index_dir = WORK / ("large" if n_chunks == DEFAULT_CHUNKS else f"large-{n_chunks}")
    pool, pool_key = sentence_pool()
    check_same_format(pool, settings)
    wanted = {"generator": GENERATOR_VERSION, "chunks": n_chunks, "format": FORMAT_VERSION,
              "model": embedding.model_identity(), "chunker": chunker_settings(settings), "pool": pool_key}
    stamp = index_dir / "synthetic.json"
    if current_build(index_dir) and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        log(f"synthetic index of {n_chunks:,} chunks: cached in {index_dir}")
        return index_dir
    shutil.rmtree(index_dir, ignore_errors=True)
    started = time.perf_counter()
    log(f"synthetic index of {n_chunks:,} chunks: composing articles from {len(pool):,} real sentences")
    articles, rows = synthetic_articles(n_chunks, pool, settings)
    hashes = {a.id: content_hash(a) for a in articles}
    write_build(index_dir, articles, rows, hashes, settings,
                random_vector_writer(Mixture.make(np.random.default_rng(0)), seed=1))
    stamp.write_text(json.dumps(wanted, indent=1))
    log(f"  written in {time.perf_counter() - started:.0f} s")
    return index_dir


def proc_status(pid: int | str) -> dict[str, float]:
    """VmRSS, VmHWM (peak resident), RssAnon and RssFile of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[key].split()[0]) / 1024 for name, key in
            (("rss_mb", "VmRSS"), ("peak_mb", "VmHWM"), ("anon_mb", "RssAnon"), ("file_mb", "RssFile"))}


def resident_by_mapping(pid: int, build: Path) -> dict[str, float]:
    """Resident MB per mapping kind from /proc/<pid>/smaps: anonymous, each file of the build, libraries, other."""
    resident: dict[str, float] = {}
    root = str(build.resolve()) + "/"
    where = "anonymous"
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split()
        if "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
            path = head[5] if len(head) >= 6 else ""
            if not path.startswith("/"):
                where = "anonymous"
            elif path.startswith(root):
                where = path[len(root):]
            elif ".so" in Path(path).name:
                where = "shared libraries"
            else:
                where = "other files"
        elif head[0] == "Rss:":
            resident[where] = resident.get(where, 0.0) + int(head[1]) / 1024
    return resident


def files_of(build: Path) -> dict[str, float]:
    """Size in MB of each file of a build."""
    return {str(p.relative_to(build)): p.stat().st_size / MB for p in sorted(build.rglob("*")) if p.is_file()}


def stop(server: subprocess.Popen) -> str:
    """SIGTERM and how the server ended: uvicorn shuts down gracefully, then re-raises the signal (status -15)."""
    server.terminate()
    try:
        status = server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        return "killed after 30 s"
    return "clean" if status in (0, -signal.SIGTERM) else f"exit status {status}"


def squad_questions(n: int) -> list[str]:
    """The first n XQuAD questions: distinct, so they touch different parts of the index files."""
    data = json.loads((EVAL / "squad" / "xquad.en.json").read_text())["data"]
    return [qa["question"] for doc in data for p in doc["paragraphs"] for qa in p["qas"]][:n]


def measure_server(name: str, index_dir: Path, texts: list[str], more: list[str]) -> dict:
    """Start `rag serve` on the index, ask the questions, read its memory; then more questions and a filtered one."""
    build = current_build(index_dir)
    manifest = json.loads((build / "manifest.json").read_text())
    check_model(manifest)
    port = free_port()
    result: dict = {"setting": name, "index_dir": str(index_dir), "counts": manifest["counts"],
                    "spans": int(np.load(build / "tables.npz")["span_ptr"][-1]), "files_mb": files_of(build)}
    result["disk_mb"] = sum(result["files_mb"].values())
    log(f"{name}: starting rag serve on {result['counts']['chunks']:,} chunks")
    with open(WORK / f"{name}.server.log", "w") as server_log:
        started = time.perf_counter()
        server = start_server(index_dir, port, server_log)
        result["healthy_s"] = time.perf_counter() - started
        try:
            result["memory_healthy"] = proc_status(server.pid)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
                latencies = [ask(client, q) for q in texts]
                result["ask_p50_ms"] = percentile(latencies, 50)
                result["ask_max_ms"] = max(latencies)
                result["memory"] = proc_status(server.pid)
                result["resident_by_mapping"] = resident_by_mapping(server.pid, build)
                result["more_questions"] = len(more)
                result["more_p50_ms"] = percentile([ask(client, q) for q in more], 50)
                result["memory_after_more"] = proc_status(server.pid)
                started = time.perf_counter()
                client.post("/ask", json={"question": texts[0], "filters": {"sources": [FILTER_SOURCE]}}
                            ).raise_for_status()
                result["filtered_ms"] = (time.perf_counter() - started) * 1000
                result["memory_after_filtered"] = proc_status(server.pid)
        finally:
            result["stopped"] = stop(server)
    log(f"  healthy after {result['healthy_s']:.1f} s, VmRSS {result['memory']['rss_mb']:.0f} MB, "
        f"VmHWM {result['memory']['peak_mb']:.0f} MB")
    return result


def probe(build: Path) -> list[dict]:
    """In this fresh process, load what `rag serve` loads one piece at a time; resident memory after each.

    The index steps follow `IndexData.__init__`; both ways of reading chunks.faiss are tried (mapped first,
    since memory freed by the other would not all return to the system). Ends with the article metadata
    alone (text left out), the part of articles.jsonl that must stay in memory for filters and listings.
    """
    steps: list[dict] = []
    held: dict[str, object] = {}

    def mark(step: str, **detail: float) -> None:
        gc.collect()
        steps.append({"step": step, **proc_status("self"), **detail})

    mark("interpreter with this script's imports (numpy, faiss, bm25s, httpx)")
    import web.app  # noqa: F401  (what `rag serve` imports: FastAPI, rag, faiss, bm25s)
    mark("imports of rag serve")
    embedding.embed_query("warm up")
    mark("embedding model (torch, MiniLM)")
    nlp.parse("Who warms up?")
    mark("spaCy model")
    held["manifest"] = json.loads((build / "manifest.json").read_text())
    mark("manifest.json parsed", articles_entries=len(held["manifest"]["articles"]))
    with open(build / "articles.jsonl", encoding="utf-8") as lines:
        articles = [Article(**json.loads(line)) for line in lines]
    held["articles"] = articles
    mark("articles.jsonl as Article objects", text_mb=sum(sys.getsizeof(a.text) for a in articles) / MB,
         text_chars_m=sum(len(a.text) for a in articles) / 1e6,
         wide_share=sum(1 for a in articles if sys.getsizeof(a.text) > len(a.text) + 80) / max(1, len(articles)))
    held["article_index"] = {a.id: i for i, a in enumerate(articles)}
    mark("article id index (dict)")
    tables = np.load(build / "tables.npz")
    held["tables"] = {k: tables[k] for k in tables.files}
    mark("tables.npz read into memory", **{f"{k}_mb": v.nbytes / MB for k, v in held["tables"].items()})
    held["vectors"] = [np.load(build / f"{k}_vectors.npy", mmap_mode="r") for k in ("chunk", "sentence")]
    mark("chunk and sentence vectors memory-mapped")
    held["faiss_mmap"] = vectors.load_vector_index(build / "chunks.faiss", mmap=True)
    mark("chunks.faiss, load_vector_index(mmap=True)")
    held["faiss"] = vectors.load_vector_index(build / "chunks.faiss")
    mark("chunks.faiss, load_vector_index() (read)")
    held["bm25"] = lexical.load_bm25(build / "bm25")
    mark("bm25/ (mmap=True)", vocabulary=len(held["bm25"].vocab_dict))
    held["df"] = json.loads((build / "df.json").read_text())
    mark("df.json parsed", tokens=len(held["df"]))
    with open(build / "articles.jsonl", encoding="utf-8") as lines:
        held["metadata"] = [Article(**{**json.loads(line), "text": ""}) for line in lines]
    mark("alternative: article metadata without text")
    return steps


def run_probe(build: Path) -> list[dict]:
    done = subprocess.run([sys.executable, __file__, "--probe", str(build)], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout)


def report(results: list[dict], steps: list[dict]) -> str:
    rows = []
    for r in results:
        c, m = r["counts"], r["memory"]
        rows.append([r["setting"], f"{c['articles']:,}", f"{c['chunks']:,}", f"{c['sentences']:,}", f"{r['spans']:,}",
                     f"{r['disk_mb']:,.1f}", f"{r['healthy_s']:.1f}", f"{r['ask_p50_ms']:.0f}",
                     f"{m['rss_mb']:,.0f}", f"{m['peak_mb']:,.0f}", f"{m['anon_mb']:,.0f}", f"{m['file_mb']:,.0f}"])
    out = ["## Memory of rag serve\n",
           markdown_table(["index", "articles", "chunks", "sentences", "spans", "on disk MB", "start to healthy s",
                           f"/ask p50 ms ({QUESTIONS})", "VmRSS MB", "VmHWM MB", "anonymous MB", "file-backed MB"],
                          rows)]
    large = results[-1]
    verdict = "under" if large["memory"]["peak_mb"] < TARGET_MB else "OVER"
    out.append(f"\nAfter {QUESTIONS} /ask requests (the dev questions and variants): VmRSS, VmHWM (peak since "
               f"start), RssAnon and RssFile from /proc/<pid>/status. Target: under {TARGET_MB:,} MB with "
               f"{DEFAULT_CHUNKS:,} chunks; this {large['counts']['chunks']:,}-chunk index peaks at "
               f"{large['memory']['peak_mb']:,.0f} MB: {verdict}. Stopped with SIGTERM: "
               + ", ".join(f"{r['setting']} {r['stopped']}" for r in results) + ".\n")

    n_more = results[0]["more_questions"]
    out.append(f"### Then more traffic: {n_more} distinct XQuAD questions, then one filtered to {FILTER_SOURCE}\n")
    rows = []
    for r in results:
        more, filtered = r["memory_after_more"], r["memory_after_filtered"]
        rows.append([r["setting"], f"{more['rss_mb']:,.0f}", f"{more['anon_mb']:,.0f}", f"{r['more_p50_ms']:.0f}",
                     f"{r['filtered_ms']:,.0f}", f"{filtered['rss_mb']:,.0f}", f"{filtered['anon_mb']:,.0f}",
                     f"{filtered['peak_mb']:,.0f}"])
    out.append(markdown_table(["index", f"VmRSS MB after {n_more}", "anonymous MB", "/ask p50 ms",
                               "filtered /ask ms", "VmRSS MB after it", "anonymous MB", "VmHWM MB"], rows))
    out.append("\nMemory-mapped files count in VmRSS as far as they have been touched (clean page cache: shared "
               "and reclaimable, but resident), so VmRSS grows with the variety of questions. A filter makes the "
               "dense search an exact scan of the admitted chunks' vectors.\n")

    kinds = sorted({k for r in results for k in r["resident_by_mapping"]},
                   key=lambda k: -max(r["resident_by_mapping"].get(k, 0) for r in results))
    table = [[k] + [f"{r['resident_by_mapping'].get(k, 0):,.1f}" for r in results]
             + [f"{large['files_mb'][k]:,.0f}" if k in large["files_mb"] else ""] for k in kinds]
    out.append(f"### Resident memory by mapping after the {QUESTIONS} requests (/proc/<pid>/smaps)\n")
    out.append(markdown_table(["mapping"] + [f"{r['setting']} MB" for r in results] + ["file size MB"], table))

    previous = None
    table = []
    for s in steps:
        detail = ", ".join(f"{k} {v:,.2f}" if isinstance(v, float) else f"{k} {v:,}" for k, v in s.items()
                           if k not in ("step", "rss_mb", "peak_mb", "anon_mb", "file_mb"))
        table.append([s["step"], f"{s['rss_mb']:,.0f}", f"{s['rss_mb'] - previous:+,.0f}" if previous else "",
                      f"{s['anon_mb']:,.0f}", detail])
        previous = s["rss_mb"]
    out.append(f"\n### Loading the {large['counts']['chunks']:,}-chunk build step by step (fresh process)\n")
    out.append(markdown_table(["step", "VmRSS MB", "change MB", "anonymous MB", "detail"], table))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--chunks", type=int, default=DEFAULT_CHUNKS, help="chunks of the synthetic index")
    size.add_argument("--quick", action="store_const", dest="chunks", const=QUICK_CHUNKS,
                      help=f"{QUICK_CHUNKS:,} chunks (about a minute)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--probe", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe)))
        return
    if args.chunks < 1:
        parser.error(f"--chunks must be >= 1, got {args.chunks}")
    settings = Settings()
    texts = questions(QUESTIONS)
    more = squad_questions(QUICK_MORE if args.chunks == QUICK_CHUNKS else MORE_QUESTIONS)
    seed_dir = WORK / "seed"
    build_index(Path(__file__).resolve().parents[1] / "corpus", seed_dir, settings, progress=False)
    large_dir = large_index(args.chunks, settings)
    results = [measure_server("seed", seed_dir, texts, more),
               measure_server(f"synthetic {args.chunks:,}", large_dir, texts, more)]
    log("loading the synthetic build step by step in a fresh process")
    steps = run_probe(current_build(large_dir))
    print(report(results, steps))
    if args.json:
        args.json.write_text(json.dumps({"results": results, "load_steps": steps}, indent=1))


if __name__ == "__main__":
    main()
