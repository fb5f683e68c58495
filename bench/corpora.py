"""Corpora for the benchmarks, made only from public evaluation data and the seed articles.

Every corpus is written as JSONL files under ``bench/.cache/<name>/corpus`` and indexed with
``rag.index.build_index`` into ``bench/.cache/<name>/index``. The build is incremental, so a rerun
finds every article unchanged and embeds nothing. Sources:

- the seed articles of the repository's ``corpus/``;
- SQuAD-format Wikipedia paragraphs (XQuAD, SQuAD v2 dev), consecutive paragraphs of one Wikipedia
  article grouped into news-sized articles;
- BEIR documents (TIME 1963 news, SciFact abstracts), one article per document.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import statistics
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import beir  # noqa: E402
from rag import embedding  # noqa: E402
from rag.index import BuildReport, IndexData, build_index, load_index  # noqa: E402
from rag.ingest import scan_corpus, slugify  # noqa: E402
from rag.settings import Settings  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
CACHE = ROOT / "bench" / ".cache"
SQUAD_FILES = ("xquad.en.json", "squad_v2_dev_5articles.json")
SHARD_BYTES = 1_000_000  # below rag's per-file limit (Settings.max_article_bytes)
TITLE_WORDS = 8  # a document without a title is titled by its first words

Record = dict[str, str]  # one JSONL line: id, title, source, text (and optional article fields)


def beir_records(docs: Iterable[beir.Doc], source: str) -> list[Record]:
    """One article per BEIR document; the article id is the document id (BEIR ids are already slugs).

    The title is not indexed by rag (chunks are cut from the text only), so it does not affect retrieval.
    """
    records = []
    for doc in docs:
        if slugify(doc.id) != doc.id:
            raise ValueError(f"BEIR id {doc.id!r} is not a slug; the article id would differ from it")
        title = doc.title.strip() or " ".join(doc.text.split()[:TITLE_WORDS])
        records.append({"id": doc.id, "title": title, "source": source, "text": doc.text})
    return records


def seed_records() -> list[Record]:
    """The articles of the repository's corpus/, as JSONL records with their metadata."""
    scan = scan_corpus(ROOT / "corpus")
    return [{"id": f"seed-{slugify(a.id, 50)}", "title": a.title, "source": a.source, "text": a.text,
             **{k: v for k, v in (("published", a.published), ("section", a.section)) if v}}
            for a in scan.articles]


def squad_records(paragraphs_per_article: int = 2) -> list[Record]:
    """Consecutive paragraphs of each Wikipedia article, `paragraphs_per_article` to an article.

    XQuAD and the SQuAD v2 excerpt share five Wikipedia articles and 24 paragraphs: each paragraph is used once.
    """
    paragraphs: dict[str, list[str]] = {}
    for name in SQUAD_FILES:
        for doc in json.loads((EVAL / "squad" / name).read_text())["data"]:
            kept = paragraphs.setdefault(doc["title"].replace("_", " "), [])
            kept += [text for p in doc["paragraphs"] if (text := p["context"].strip()) not in kept]
    records = []
    for title, texts in paragraphs.items():
        for part, lo in enumerate(range(0, len(texts), paragraphs_per_article), start=1):
            records.append({"id": f"squad-{slugify(title, 40)}-{part}", "title": f"{title} ({part})",
                            "source": "Wikipedia", "text": "\n\n".join(texts[lo:lo + paragraphs_per_article])})
    return records


def _round_robin(*sources: list[Record]) -> Iterator[Record]:
    iterators = [iter(s) for s in sources]
    while iterators:
        for it in list(iterators):
            try:
                yield next(it)
            except StopIteration:
                iterators.remove(it)


def mixed_records(n: int) -> list[Record]:
    """The first n articles of a fixed mix: seed, then SQuAD groups and TIME alternately, then SciFact.

    SciFact abstracts only fill in once the other sources run out (after about 660 articles), so the
    first n of a larger mix are exactly the n of a smaller one.
    """
    time_docs = beir_records(beir.load("time_news_1963").docs, "TIME")
    scifact_docs = beir_records(beir.load("scifact").docs, "SciFact")
    for r in time_docs:
        r["id"] = f"time-{r['id']}"
    for r in scifact_docs:
        r["id"] = f"scifact-{r['id']}"
    mix = itertools.chain(seed_records(), _round_robin(squad_records(), time_docs), scifact_docs)
    records = list(itertools.islice(mix, n))
    if len({r["id"] for r in records}) != len(records):
        raise ValueError("two articles of the mix have the same id")
    if len(records) < n:
        raise ValueError(f"only {len(records)} articles are available, asked for {n}")
    return records


def describe(records: list[Record]) -> str:
    """Articles per source and their mean length, for the report."""
    by_source: dict[str, list[int]] = {}
    for r in records:
        by_source.setdefault(r["source"] if r["source"] in ("Wikipedia", "TIME", "SciFact") else "seed",
                             []).append(len(r["text"]))
    return ", ".join(f"{len(v)} {k} (mean {statistics.mean(v):,.0f} chars)" for k, v in by_source.items())


def write_corpus(corpus_dir: Path, records: list[Record]) -> list[Path]:
    """Write the records as JSONL files of at most SHARD_BYTES each, the corpus' only files.

    rag applies its per-article size limit to whole files, so one large JSONL would be rejected.
    A file is rewritten only when its content changes.
    """
    corpus_dir.mkdir(parents=True, exist_ok=True)
    shards: list[list[str]] = [[]]
    size = 0
    for r in records:
        line = json.dumps(r, ensure_ascii=False) + "\n"
        if shards[-1] and size + len(line.encode()) > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(line)
        size += len(line.encode())
    paths = []
    for number, lines in enumerate(shards, start=1):
        path = corpus_dir / f"articles-{number:04d}.jsonl"
        content = "".join(lines)
        if not path.exists() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
        paths.append(path)
    for other in corpus_dir.iterdir():
        if other not in paths:
            other.unlink()
    return paths


def build_cached_index(name: str, records: list[Record], settings: Settings | None = None
                       ) -> tuple[BuildReport, IndexData]:
    """Index the records under bench/.cache/<name>; embeds only what earlier runs did not."""
    write_corpus(CACHE / name / "corpus", records)
    report = build_index(CACHE / name / "corpus", CACHE / name / "index", settings or Settings(),
                         progress=sys.stderr.isatty())
    if report.problems or report.duplicates:
        raise RuntimeError(f"{name}: {len(report.problems)} articles unreadable, {len(report.duplicates)} "
                           f"duplicates; the benchmark needs every document indexed")
    return report, load_index(CACHE / name / "index")


def query_vectors(name: str, texts: list[str]) -> np.ndarray:
    """Embeddings of the query texts, cached under bench/.cache/<name>/ by a hash of the texts."""
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:12]
    path = CACHE / name / f"queries-{key}.npy"
    if path.exists():
        return np.load(path)
    vectors = embedding.embed(texts, batch_size=64)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def machine_load() -> dict[str, float]:
    """Cores and 1-minute load average: timings on a shared machine mean little without them."""
    return {"cores": os.cpu_count() or 0, "load_average": os.getloadavg()[0]}


def load_line(before: dict[str, float]) -> str:
    return (f"Machine: {before['cores']} cores; 1-minute load average {before['load_average']:.2f} at start, "
            f"{machine_load()['load_average']:.2f} at the end.")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub markdown table; floats are printed with three decimals."""
    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
