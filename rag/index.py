"""Building, updating and loading the index: chunk and sentence tables, vectors, entities, BM25.

Layout of an index directory:
    CURRENT               name of the build being served (replaced atomically)
    builds/<name>/        one complete build:
        manifest.json         format, model, chunker and annotator, counts, span labels
        articles.jsonl        article metadata; texts.bin + text_offsets.npy hold the texts
        hashes.json           content hash per article, to tell what changed
        chunks.npy, sentences.npy, spans.npy, span_ptr.npy    offset tables (int32; span_ptr int64)
        chunk_vectors.npy, sentence_vectors.npy, chunks.faiss, bm25/, df.json
    .lock                 held while a build runs
A build is written beside the served one and switched to by replacing CURRENT, so a crash mid-build
leaves the previous index serving. Unchanged articles reuse their stored vectors and entities (only their
entities and phrases are found again when the annotator changed, which is far cheaper than embedding).
"""
from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from rag import embedding, lexical, nlp, vectors
from rag.chunking import SPLITTER_VERSION, chunk_sentences, split_sentences
from rag.errors import ArticleFormatError, IndexBusyError, IndexNotBuiltError, IndexOutdatedError, ModelMismatchError
from rag.ingest import content_hash, scan_corpus
from rag.settings import Settings
from rag.storage import RowFile, TextFile, write_texts
from rag.types import Article, Chunk, Sentence, Span

FORMAT_VERSION = 3
TOKENIZE_BATCH = 50_000  # chunk texts per tokenizer call, to bound the memory of big builds
KEEP_BUILDS = 2  # the served build and the one before it, which in-flight requests may still read


@dataclass
class ArticleRows:
    """Everything the index stores about one article; reused as is while the article is unchanged."""

    sentences: np.ndarray  # (n, 2) start, end
    chunks: np.ndarray  # (m, 4) start, end, first sentence, last sentence + 1 (relative to the article)
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    spans: np.ndarray  # (k, 5) sentence (relative), start, end, head start, head end
    span_labels: list[str]  # "LABEL|dep" per span


@dataclass
class BuildReport:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    problems: list[ArticleFormatError] = field(default_factory=list)
    duplicates: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    embedded_chunks: int = 0
    embedded_sentences: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    rebuilt_all: str | None = None  # why nothing could be reused, if so
    reannotated: int = 0  # unchanged articles whose entities and phrases were found again (annotator changed)
    resplit: int | None = None  # with a new sentence splitter: unchanged articles it splits differently
    build: str = ""

    def summary(self) -> str:
        return (f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed, "
                f"{len(self.unchanged)} unchanged")


def chunker_settings(settings: Settings) -> dict:
    return {"max_chars": settings.chunk_max_chars, "overlap_sentences": settings.chunk_overlap_sentences}


class IndexData:
    """A loaded build, read-only. Small tables are held in memory; texts, vectors and spans are read from disk
    by row when a question needs them (rag/storage.py), so a large index costs little memory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.manifest = json.loads((directory / "manifest.json").read_text())
        with open(directory / "articles.jsonl", encoding="utf-8") as lines:
            # Metadata only, for filters and listings: the text of article i is read by `article_at(i)`.
            self.catalog = [Article(**json.loads(line), text="") for line in lines]
        self.article_index = {a.id: i for i, a in enumerate(self.catalog)}
        self.chunk_table = np.load(directory / "chunks.npy")  # (n, 5): article, start, end, first sentence, last + 1
        self.sentence_table = np.load(directory / "sentences.npy")  # (n, 3): article, start, end
        self.span_ptr = np.load(directory / "span_ptr.npy")  # spans of sentence i: rows span_ptr[i]:span_ptr[i + 1]
        self.span_table = RowFile(directory / "spans.npy")  # (k, 5): start, end, "label|dep" code, head start, end
        self.span_labels = self.manifest["span_labels"]
        self.chunk_vectors = RowFile(directory / "chunk_vectors.npy")
        self.sentence_vectors = RowFile(directory / "sentence_vectors.npy")
        self.texts = TextFile(directory)
        self.vector_index = vectors.load_vector_index(directory / "chunks.faiss", mmap=True)
        self.bm25 = lexical.load_bm25(directory / "bm25") if len(self.chunk_table) else None
        self.chunk_article = self.chunk_table[:, 0]
        self.document_frequency = json.loads((directory / "df.json").read_text())
        self.article_at = lru_cache(maxsize=256)(self._read_article)

    def _read_article(self, i: int) -> Article:
        """Article i with its text (cached: a question reads the same few articles many times)."""
        return replace(self.catalog[i], text=self.texts[i])

    def idf(self, token: str) -> float:
        return lexical.idf(self.document_frequency, len(self.chunk_table), token)

    @property
    def build_time(self) -> str:
        return self.manifest["build_time"]

    def article(self, article_id: str) -> Article:
        return self.article_at(self.article_index[article_id])

    def chunk(self, i: int) -> Chunk:
        a, start, end, lo, hi = (int(v) for v in self.chunk_table[i])
        article = self.article_at(a)
        return Chunk(article.id, start, end, article.text[start:end], tuple(range(lo, hi)))

    def sentence(self, i: int) -> Sentence:
        a, start, end = (int(v) for v in self.sentence_table[i])
        article = self.article_at(a)
        return Sentence(article.id, start, end, article.text[start:end])

    def sentence_article(self, i: int) -> Article:
        return self.article_at(int(self.sentence_table[i, 0]))

    def first_sentence(self, article_id: str) -> Sentence:
        """The article's lede, which names what the article is about."""
        return self.sentence(self._ranges(article_id)[2])

    def spans(self, sentence_id: int) -> list[Span]:
        rows = self.span_table[int(self.span_ptr[sentence_id]):int(self.span_ptr[sentence_id + 1])]
        return [Span(int(s), int(e), *self.span_labels[int(c)].split("|"), int(hs), int(he))
                for s, e, c, hs, he in rows]

    def content_hashes(self) -> dict[str, str]:
        """Article id -> content hash, which a rebuild compares with the corpus (not needed for serving)."""
        return json.loads((self.directory / "hashes.json").read_text())

    def _ranges(self, article_id: str) -> tuple[int, int, int, int]:
        """The article's chunk rows c_lo:c_hi and sentence rows s_lo:s_hi."""
        a = self.article_index[article_id]
        c_lo, c_hi = (int(v) for v in np.searchsorted(self.chunk_article, [a, a + 1]))
        s_lo, s_hi = (int(v) for v in np.searchsorted(self.sentence_table[:, 0], [a, a + 1]))
        return c_lo, c_hi, s_lo, s_hi

    def layout_of(self, article_id: str) -> tuple[np.ndarray, np.ndarray]:
        """The stored sentence and chunk offsets of one article, as `analyze` returns them."""
        return self._layout(*self._ranges(article_id))

    def _layout(self, c_lo: int, c_hi: int, s_lo: int, s_hi: int) -> tuple[np.ndarray, np.ndarray]:
        chunks = self.chunk_table[c_lo:c_hi, 1:].astype(np.int64)
        chunks[:, 2:] -= s_lo
        return self.sentence_table[s_lo:s_hi, 1:].astype(np.int64), chunks

    def rows_of(self, article_id: str) -> ArticleRows:
        """The stored rows of one article, with sentence numbers made relative to it."""
        c_lo, c_hi, s_lo, s_hi = self._ranges(article_id)
        sentences, chunks = self._layout(c_lo, c_hi, s_lo, s_hi)
        p_lo, p_hi = int(self.span_ptr[s_lo]), int(self.span_ptr[s_hi])
        span_rows = self.span_table[p_lo:p_hi].astype(np.int64)
        span_sentence = np.repeat(np.arange(s_hi - s_lo), np.diff(self.span_ptr[s_lo:s_hi + 1]))
        spans = np.column_stack([span_sentence, span_rows[:, :2], span_rows[:, 3:]])
        labels = [self.span_labels[int(c)] for c in span_rows[:, 2]]
        return ArticleRows(sentences, chunks, self.chunk_vectors[c_lo:c_hi], self.sentence_vectors[s_lo:s_hi], spans,
                           labels)


def current_build(index_dir: Path) -> Path | None:
    """The directory of the build being served, or None before the first build."""
    try:
        name = (index_dir / "CURRENT").read_text().strip()
    except FileNotFoundError:
        return None
    path = index_dir / "builds" / name
    return path if (path / "manifest.json").exists() else None


def check_model(manifest: dict) -> None:
    """An index is only served by the program and model that wrote it (vectors from two models do not mix)."""
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexOutdatedError(f"the index has format {manifest.get('format')}, this version reads format "
                                 f"{FORMAT_VERSION}: run `rag index` to rebuild it")
    installed = embedding.model_identity()
    if manifest.get("model") != installed:
        raise ModelMismatchError(
            f"the index was built with {manifest.get('model')}, but {installed} is installed: run `rag index` to rebuild")


def load_index(index_dir: Path) -> IndexData:
    """Load the served build; raises IndexNotBuiltError when there is none."""
    build = current_build(index_dir)
    if build is None:
        raise IndexNotBuiltError(str(index_dir))
    check_model(json.loads((build / "manifest.json").read_text()))
    return IndexData(build)


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index directory; a second one fails at once with a clear message."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise IndexBusyError(
                f"another build of {index_dir} is running ({handle.read().strip() or 'unknown pid'}); "
                "wait for it to finish") from None
        handle.truncate(0)
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def analyze(article: Article, settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """Sentence and chunk offsets of an article (pure: no models)."""
    sentences = split_sentences(article.text)
    chunks = chunk_sentences(sentences, settings.chunk_max_chars, settings.chunk_overlap_sentences)
    chunk_rows = np.array([(s, e, ids[0], ids[-1] + 1) for s, e, ids in chunks], dtype=np.int64).reshape(-1, 4)
    return np.array(sentences, dtype=np.int64).reshape(-1, 2), chunk_rows


def _same_layout(index: IndexData, article: Article, settings: Settings) -> bool:
    """Whether the splitter and chunker still cut the article where the index has it cut."""
    return all(np.array_equal(x, y) for x, y in zip(analyze(article, settings), index.layout_of(article.id)))


def _process(articles: list[Article], settings: Settings, report: BuildReport, progress: bool) -> list[ArticleRows]:
    """Embed and annotate new or changed articles, in batches across articles."""
    layouts = [analyze(a, settings) for a in articles]
    chunk_texts = [a.text[s:e] for a, (_, chunks) in zip(articles, layouts) for s, e, _, _ in chunks]
    sentence_texts = [a.text[s:e] for a, (sents, _) in zip(articles, layouts) for s, e in sents]
    sentence_offsets = [int(s) for _, (sents, _) in zip(articles, layouts) for s, _ in sents]
    if chunk_texts:
        embedding.get_model()  # loading is not embedding: keep it out of model_seconds
    started = time.perf_counter()
    chunk_vectors = _embed_batches(chunk_texts, settings, progress, "embedding chunks")
    sentence_vectors = _embed_batches(sentence_texts, settings, progress, "embedding sentences")
    report.model_seconds += time.perf_counter() - started
    spans = _annotate_batches(sentence_texts, sentence_offsets, progress)
    report.embedded_chunks += len(chunk_texts)
    report.embedded_sentences += len(sentence_texts)
    rows, c, s = [], 0, 0
    for sents, chunks in layouts:
        span_rows, labels = _span_rows(spans[s:s + len(sents)])
        rows.append(ArticleRows(sents, chunks, chunk_vectors[c:c + len(chunks)], sentence_vectors[s:s + len(sents)],
                                span_rows, labels))
        c += len(chunks)
        s += len(sents)
    return rows


def _span_rows(spans: list[list[Span]]) -> tuple[np.ndarray, list[str]]:
    """One article's spans, sentence by sentence, as stored rows and their "LABEL|dep" labels."""
    rows = [(j, span.start, span.end, span.head_start, span.head_end)
            for j, found in enumerate(spans) for span in found]
    labels = [f"{span.label}|{span.dep}" for found in spans for span in found]
    return np.array(rows, dtype=np.int64).reshape(-1, 5), labels


def _reannotate(articles: list[Article], rows: list[ArticleRows], progress: bool) -> list[ArticleRows]:
    """The rows with their spans found again by the installed annotator; vectors and offsets are kept."""
    texts = [a.text[s:e] for a, r in zip(articles, rows) for s, e in r.sentences.tolist()]
    offsets = [s for r in rows for s, _ in r.sentences.tolist()]
    spans = _annotate_batches(texts, offsets, progress)
    out, s = [], 0
    for r in rows:
        span_rows, labels = _span_rows(spans[s:s + len(r.sentences)])
        out.append(replace(r, spans=span_rows, span_labels=labels))
        s += len(r.sentences)
    return out


def _batches(n: int, size: int, progress: bool, what: str) -> Iterator[tuple[int, int]]:
    bar = tqdm(total=n, desc=what, unit="text", disable=None if progress else True, leave=False)
    for lo in range(0, n, size):
        yield lo, min(n, lo + size)
        bar.update(min(n, lo + size) - lo)
    bar.close()


def _embed_batches(texts: list[str], settings: Settings, progress: bool, what: str) -> np.ndarray:
    parts = [embedding.embed(texts[lo:hi], settings.embed_batch_size)
             for lo, hi in _batches(len(texts), settings.embed_batch_size * 8, progress, what)]
    return np.concatenate(parts) if parts else embedding.embed([])


def _annotate_batches(texts: list[str], offsets: list[int], progress: bool) -> list[list[Span]]:
    spans: list[list[Span]] = []
    for lo, hi in _batches(len(texts), 256, progress, "finding entities"):
        spans += nlp.annotate(texts[lo:hi], offsets[lo:hi])
    return spans


def _reusable(index_dir: Path, settings: Settings, report: BuildReport) -> IndexData | None:
    """The served build if its rows can be reused by this build; otherwise None, with the reason in `report`."""
    build = current_build(index_dir)
    if build is None:
        return None
    try:
        manifest = json.loads((build / "manifest.json").read_text())
        if manifest.get("format") != FORMAT_VERSION:
            report.rebuilt_all = "index format changed"
        elif manifest.get("model") != embedding.model_identity():
            report.rebuilt_all = f"embedding model changed from {manifest.get('model')}"
        elif manifest.get("chunker") != chunker_settings(settings):
            report.rebuilt_all = "chunker settings changed"
        else:
            return IndexData(build)
    except Exception as error:  # a damaged build is rebuilt, not fatal
        report.rebuilt_all = f"previous index unreadable ({error})"
    return None


def build_index(corpus_dir: Path, index_dir: Path, settings: Settings, progress: bool = True,
                on_scanned: Callable[[BuildReport], None] | None = None) -> BuildReport:
    """Bring the index up to date with the corpus, embedding only new and changed articles."""
    started = time.perf_counter()
    report = BuildReport()
    with build_lock(index_dir):
        scan = scan_corpus(corpus_dir, settings.max_article_bytes)
        report.problems, report.duplicates = scan.problems, scan.duplicates
        previous = _reusable(index_dir, settings, report)
        old = previous.content_hashes() if previous else {}
        hashes = {a.id: content_hash(a) for a in scan.articles}
        fresh = [a for a in scan.articles if old.get(a.id) != hashes[a.id]]
        if previous is not None and previous.manifest.get("splitter") != SPLITTER_VERSION:
            # A new sentence splitter: only the articles it now splits differently are embedded again.
            resplit = [a for a in scan.articles
                       if old.get(a.id) == hashes[a.id] and not _same_layout(previous, a, settings)]
            report.resplit = len(resplit)
            fresh += resplit
        for a in scan.articles:
            (report.unchanged if old.get(a.id) == hashes[a.id] else report.changed if a.id in old
             else report.added).append(a.id)
        report.removed = sorted(set(old) - set(hashes))
        if on_scanned:
            on_scanned(report)
        # A new annotator or tokenizer reuses every vector: spans are found again, BM25 is rebuilt anyway.
        stale = previous is not None and previous.manifest.get("annotator") != nlp.annotator_identity()
        retokenize = previous is not None and previous.manifest.get("tokenizer") != lexical.TOKENIZER_VERSION
        if previous is not None and not (fresh or report.removed or stale or retokenize or report.resplit is not None):
            report.chunks = len(previous.chunk_table)
            report.seconds = time.perf_counter() - started
            return report  # up to date: keep serving the current build
        new_rows = dict(zip((a.id for a in fresh), _process(fresh, settings, report, progress)))
        kept = [a for a in scan.articles if a.id not in new_rows]
        kept_rows = [previous.rows_of(a.id) for a in kept]
        if stale and kept:
            kept_rows = _reannotate(kept, kept_rows, progress)
            report.reannotated = len(kept)
        new_rows.update(zip((a.id for a in kept), kept_rows))
        rows = [new_rows[a.id] for a in scan.articles]
        report.chunks = sum(len(r.chunks) for r in rows)
        report.build = _write_build(index_dir, scan.articles, rows, hashes, settings)
    report.seconds = time.perf_counter() - started
    return report


def _assemble(rows: list[ArticleRows]) -> tuple[dict[str, np.ndarray], list[str]]:
    """Concatenate per-article rows into index-wide tables (int32, offsets and row numbers fit); returns the
    tables and the span labels their codes index."""
    chunk_parts, sentence_parts, span_parts, span_counts = [], [], [], []
    labels: dict[str, int] = {}
    n_sentences = 0
    for a, r in enumerate(rows):
        chunks = r.chunks.copy()
        chunks[:, 2:] += n_sentences
        chunk_parts.append(np.column_stack([np.full(len(chunks), a), chunks]).astype(np.int32))
        sentence_parts.append(np.column_stack([np.full(len(r.sentences), a), r.sentences]).astype(np.int32))
        codes = np.array([labels.setdefault(label, len(labels)) for label in r.span_labels], dtype=np.int64)
        span_parts.append(np.column_stack([r.spans[:, 1:3], codes, r.spans[:, 3:5]]).astype(np.int32) if len(codes)
                          else np.zeros((0, 5), np.int32))
        span_counts.append(np.bincount(r.spans[:, 0], minlength=len(r.sentences)) if len(codes)
                           else np.zeros(len(r.sentences), np.int64))
        n_sentences += len(r.sentences)

    def stack(parts: list[np.ndarray], width: int) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros((0, width), np.int32)

    counts = np.concatenate(span_counts) if span_counts else np.zeros(0, np.int64)
    tables = {
        "chunks": stack(chunk_parts, 5),
        "sentences": stack(sentence_parts, 3),
        "spans": stack(span_parts, 5),
        "span_ptr": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
    }
    return tables, list(labels)


# (build directory, chunks, sentences) -> writes chunk_vectors.npy and sentence_vectors.npy there
VectorWriter = Callable[[Path, int, int], None]


def _write_build(index_dir: Path, articles: list[Article], rows: list[ArticleRows], hashes: dict[str, str],
                 settings: Settings, write_vectors: VectorWriter | None = None) -> str:
    """Write a complete build into a temporary directory, then switch CURRENT to it atomically.

    `write_vectors` replaces the default, which concatenates the rows' vectors in memory; bench/serve_memory.py
    streams a million random ones to disk instead.
    """
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    name = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)
    tmp = builds / f".tmp-{name}"
    tmp.mkdir()
    try:
        tables, span_labels = _assemble(rows)
        for table, array in tables.items():
            np.save(tmp / f"{table}.npy", array)
        (write_vectors or _vector_writer(rows))(tmp, len(tables["chunks"]), len(tables["sentences"]))
        chunk_vectors = np.load(tmp / "chunk_vectors.npy", mmap_mode="r")
        vectors.save_vector_index(vectors.build_vector_index(chunk_vectors), tmp / "chunks.faiss")
        del chunk_vectors
        chunk_rows = tables["chunks"][:, :3].tolist()
        tokens: list[list[str]] = []
        for lo in range(0, len(chunk_rows), TOKENIZE_BATCH):
            tokens += lexical.tokenize([articles[a].text[s:e] for a, s, e in chunk_rows[lo:lo + TOKENIZE_BATCH]])
        if tokens:
            lexical.save_bm25(lexical.build_bm25(tokens), tmp / "bm25")
        (tmp / "df.json").write_text(json.dumps(lexical.document_frequencies(tokens)))
        del tokens
        write_texts(tmp, (article.text for article in articles))
        with open(tmp / "articles.jsonl", "w", encoding="utf-8") as out:
            for article in articles:
                out.write(json.dumps({k: v for k, v in asdict(article).items() if k != "text"}, ensure_ascii=False)
                          + "\n")
        (tmp / "hashes.json").write_text(json.dumps({a.id: hashes[a.id] for a in articles}))
        manifest = {
            "format": FORMAT_VERSION,
            "model": embedding.model_identity(),
            "chunker": chunker_settings(settings),
            "annotator": nlp.annotator_identity(),
            "tokenizer": lexical.TOKENIZER_VERSION,
            "splitter": SPLITTER_VERSION,
            "build_time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "counts": {"articles": len(articles), "chunks": len(tables["chunks"]),
                       "sentences": len(tables["sentences"]), "spans": len(tables["spans"])},
            "span_labels": span_labels,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _fsync_tree(tmp)
        os.rename(tmp, builds / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pointer = index_dir / f".CURRENT.{name}"
    pointer.write_text(name + "\n")
    os.replace(pointer, index_dir / "CURRENT")
    _prune(builds, keep=name)
    return name


def _vector_writer(rows: list[ArticleRows]) -> VectorWriter:
    def write(directory: Path, n_chunks: int, n_sentences: int) -> None:
        dims = embedding.model_identity()["dimensions"]
        for name in ("chunk_vectors", "sentence_vectors"):
            parts = [getattr(r, name) for r in rows]
            matrix = np.concatenate(parts) if parts else np.zeros((0, dims), np.float32)
            np.save(directory / f"{name}.npy", matrix.astype(np.float32, copy=False))
    return write


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def _prune(builds: Path, keep: str) -> None:
    """Remove interrupted temporary builds and all but the newest KEEP_BUILDS complete ones."""
    complete = sorted((p for p in builds.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)
    for path in complete[:-KEEP_BUILDS]:
        if path.name != keep:
            shutil.rmtree(path, ignore_errors=True)
    for path in builds.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)
