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

The build is written by `rag.index._write_build` itself, given a vector writer that streams the random
vectors to their .npy files (the default one concatenates every article's vectors in memory).

For each setting: time from start until /healthz says ok, 20 `/ask` requests (the dev questions and
variants of them, as bench/latency.py sends), then VmRSS and VmHWM of the server from /proc/<pid>/status,
its resident memory split by mapping (/proc/<pid>/smaps: anonymous memory, each index file, shared
libraries), /ask p50 and the index size on disk. Then more traffic: 300 distinct XQuAD questions (50 with
--quick) and one question filtered by source, with the memory after each, since touched pages of
memory-mapped files stay resident. For the large index a fresh process also loads the models, then the
index (`IndexData`), then reads a few hundred rows of everything a question reads, and records the
resident memory after each step: where the memory goes. Linux only (/proc).

Usage: .venv/bin/python bench/serve_memory.py [--chunks N | --quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from corpora import CACHE, EVAL, markdown_table, percentile, seed_records, squad_records
from latency import ask, free_port, questions, start_server
from scale import DIM, Mixture

from rag import embedding, nlp
from rag.chunking import chunk_sentences, split_sentences
from rag.index import (FORMAT_VERSION, ArticleRows, IndexData, VectorWriter, _write_build, analyze, build_index,
                       check_model, chunker_settings, current_build)
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


def large_index(n_chunks: int, settings: Settings) -> Path:
    """The synthetic index directory of n_chunks chunks, generated unless a matching one is cached."""
    index_dir = WORK / ("large" if n_chunks == DEFAULT_CHUNKS else f"large-{n_chunks}")
    pool, pool_key = sentence_pool()
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
    _write_build(index_dir, articles, rows, hashes, settings,
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
                    "spans": manifest["counts"]["spans"], "files_mb": files_of(build)}
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
    """In this fresh process, load what `rag serve` loads one piece at a time; resident memory after each."""
    steps: list[dict] = []

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
    index = IndexData(build)
    mark("IndexData: catalog, tables in memory, the rest opened", articles=len(index.catalog),
         tables_mb=sum(t.nbytes for t in (index.chunk_table, index.sentence_table, index.span_ptr)) / MB)
    rng = np.random.default_rng(0)
    for i in rng.integers(len(index.chunk_table), size=300).tolist():
        chunk = index.chunk(i)
        ids = list(chunk.sentence_ids)
        index.sentence_vectors[ids]
        for s in ids:
            index.spans(s)
    mark("300 random chunks read with their sentences, vectors and spans")
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
    peak = large["memory_after_filtered"]["peak_mb"]
    verdict = "under" if peak < TARGET_MB else "OVER"
    out.append(f"\nAfter {QUESTIONS} /ask requests (the dev questions and variants): VmRSS, VmHWM (peak since "
               f"start), RssAnon and RssFile from /proc/<pid>/status. Target: under {TARGET_MB:,} MB with "
               f"{DEFAULT_CHUNKS:,} chunks; this {large['counts']['chunks']:,}-chunk index peaks at "
               f"{peak:,.0f} MB over all the traffic below: {verdict}. Stopped with SIGTERM: "
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
               "and reclaimable, but resident), so VmRSS grows with the variety of questions; rows of the "
               "tables and vectors are read with pread and do not stay resident. A filter admitting up to 50,000 "
               "chunks makes the dense search an exact scan of their vectors; a wider one searches the FAISS index "
               "restricted to them.\n")

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
