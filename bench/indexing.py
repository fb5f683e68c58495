"""Indexing throughput, and what adding one article to a 1,000-article index costs.

Articles come from bench/corpora.py's fixed mix of public text: the seed articles, SQuAD paragraphs
grouped in twos, TIME news, and (past ~660 articles) SciFact abstracts.

Throughput: a fresh index of N articles (default 200) is built with `build_index` in a temporary
directory, with both models loaded beforehand (their load times are reported apart). Reported:
chunks/s and sentences/s (everything embedded over the whole build time) and where the time goes:
the embedding model (`BuildReport.model_seconds`, split into chunks and sentences by timing
`rag.index._embed_batches`), spaCy (`rag.nlp.annotate`, timed by wrapping it), writing the build
(`rag.index._write_build`: tables, FAISS, BM25, fsync) and the rest (reading, splitting, chunking).

Incremental: 1,000 articles indexed once under bench/.cache/scale1000 (reused by later runs), then
article 1,001 of the mix is added and `build_index` timed with what it embedded; the article is then
removed again (also timed) so the cache stays at 1,000, and a rebuild with nothing changed is timed.

Usage: .venv/bin/python bench/indexing.py [--articles N] [--quick] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from corpora import CACHE, Record, describe, load_line, machine_load, markdown_table, mixed_records, write_corpus

import rag.index  # noqa: E402
import rag.nlp  # noqa: E402
from rag import embedding  # noqa: E402
from rag.index import BuildReport, build_index  # noqa: E402
from rag.settings import Settings  # noqa: E402


@contextmanager
def stage_timers() -> Iterator[dict[str, float]]:
    """Seconds spent in the wrapped index stages while the block runs (keyed by stage)."""
    totals: dict[str, float] = defaultdict(float)
    targets: list[tuple[object, str, Callable[..., str]]] = [
        (rag.nlp, "annotate", lambda *a, **k: "spacy"),
        (rag.index, "_write_build", lambda *a, **k: "write"),
        (rag.index, "_embed_batches", lambda texts, settings, progress, what: what.removeprefix("embedding ")),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in targets]

    def timed(original: Callable, key: Callable[..., str]) -> Callable:
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[key(*args, **kwargs)] += time.perf_counter() - started
        return wrapper

    for (module, name, key), (_, _, original) in zip(targets, originals):
        setattr(module, name, timed(original, key))
    try:
        yield totals
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


def timed_build(corpus_dir: Path, index_dir: Path) -> tuple[BuildReport, dict[str, float]]:
    with stage_timers() as stages:
        report = build_index(corpus_dir, index_dir, Settings(), progress=False)
    return report, dict(stages)


def load_models() -> dict[str, float]:
    """Load the embedding model and spaCy now, so that builds time work and not loading."""
    seconds = {}
    for name, load in (("embedding model", lambda: embedding.embed(["warm up"])),
                       ("spaCy", lambda: rag.nlp.annotate(["Warm up."]))):
        started = time.perf_counter()
        load()
        seconds[name] = time.perf_counter() - started
    return seconds


def throughput(records: list[Record]) -> dict:
    """A fresh build of the records in a temporary directory."""
    with tempfile.TemporaryDirectory() as tmp:
        write_corpus(Path(tmp) / "corpus", records)
        report, stages = timed_build(Path(tmp) / "corpus", Path(tmp) / "index")
    return {"articles": len(records), "chunks": report.embedded_chunks, "sentences": report.embedded_sentences,
            "seconds": report.seconds, "model_seconds": report.model_seconds, "stages": stages}


def step(report: BuildReport, stages: dict[str, float]) -> dict:
    return {"seconds": report.seconds, "added": report.added, "removed": report.removed,
            "embedded_chunks": report.embedded_chunks, "embedded_sentences": report.embedded_sentences,
            "model_seconds": report.model_seconds, "stages": stages, "total_chunks": report.chunks}


def incremental(records: list[Record], new: Record, name: str) -> dict[str, dict]:
    """Index `records` once (cached), then time adding `new`, removing it again and an unchanged rebuild."""
    corpus_dir, index_dir = CACHE / name / "corpus", CACHE / name / "index"
    steps = {}
    write_corpus(corpus_dir, records)
    steps[f"index {len(records)} (cached after the first run)"] = step(*timed_build(corpus_dir, index_dir))
    write_corpus(corpus_dir, records + [new])
    steps["add 1 article"] = step(*timed_build(corpus_dir, index_dir))
    write_corpus(corpus_dir, records)
    steps["remove it again"] = step(*timed_build(corpus_dir, index_dir))
    steps["rebuild, nothing changed"] = step(*timed_build(corpus_dir, index_dir))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=200, help="articles in the throughput build")
    parser.add_argument("--scale", type=int, default=1000, help="articles in the index that one is added to")
    parser.add_argument("--quick", action="store_true", help="20 articles, and one added to 50")
    parser.add_argument("--json", type=Path, help="save the results here")
    args = parser.parse_args()
    n, scale = (20, 50) if args.quick else (args.articles, args.scale)
    if n < 1 or scale < 1:
        parser.error(f"--articles and --scale must be >= 1, got {n} and {scale}")

    machine = machine_load()
    mix = mixed_records(max(n, scale + 1))
    loads = load_models()
    fresh = throughput(mix[:n])
    steps = incremental(mix[:scale], mix[scale], f"scale{scale}")

    s = fresh["stages"]
    other = fresh["seconds"] - fresh["model_seconds"] - s.get("spacy", 0.0) - s.get("write", 0.0)
    print(f"## Fresh index of {n} articles: {describe(mix[:n])}\n")
    print(markdown_table(["stage", "seconds", "share", "rate"], [
        ["whole build", fresh["seconds"], 1.0,
         f"{fresh['chunks'] / fresh['seconds']:.1f} chunks/s, {fresh['sentences'] / fresh['seconds']:.1f} sentences/s"],
        ["embedding model (model_seconds)", fresh["model_seconds"], fresh["model_seconds"] / fresh["seconds"], ""],
        ["- of which chunks", s.get("chunks", 0.0), s.get("chunks", 0.0) / fresh["seconds"],
         f"{fresh['chunks'] / max(s.get('chunks', 0.0), 1e-9):.1f} chunks/s"],
        ["- of which sentences", s.get("sentences", 0.0), s.get("sentences", 0.0) / fresh["seconds"],
         f"{fresh['sentences'] / max(s.get('sentences', 0.0), 1e-9):.1f} sentences/s"],
        ["spaCy (nlp.annotate)", s.get("spacy", 0.0), s.get("spacy", 0.0) / fresh["seconds"],
         f"{fresh['sentences'] / max(s.get('spacy', 0.0), 1e-9):.1f} sentences/s"],
        ["write build (tables, FAISS, BM25, fsync)", s.get("write", 0.0), s.get("write", 0.0) / fresh["seconds"], ""],
        ["other (scan, split, chunk)", other, other / fresh["seconds"], ""],
    ]) + "\n")
    print(f"{fresh['chunks']} chunks and {fresh['sentences']} sentences embedded; models loaded beforehand in "
          + ", ".join(f"{k} {v:.1f} s" for k, v in loads.items()) + ".\n")
    print(f"## Incremental update of a {scale}-article index: {describe(mix[:scale])}; added: {mix[scale]['id']} "
          f"({len(mix[scale]['text']):,} chars)\n")
    print(markdown_table(
        ["step", "seconds", "added", "removed", "embedded chunks", "embedded sentences", "model s", "spaCy s",
         "write s", "chunks in index"],
        [[name, r["seconds"], len(r["added"]), len(r["removed"]), r["embedded_chunks"], r["embedded_sentences"],
          r["model_seconds"], r["stages"].get("spacy", 0.0), r["stages"].get("write", 0.0), r["total_chunks"]]
         for name, r in steps.items()]) + "\n")
    print(load_line(machine))
    if args.json:
        args.json.write_text(json.dumps({"quick": args.quick, "machine": machine, "model_load_seconds": loads,
                                         "throughput": fresh, "incremental": steps}, indent=1))


if __name__ == "__main__":
    main()
