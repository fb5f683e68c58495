"""Building, updating and loading the index: chunk and sentence tables, vectors, entities, BM25.

Layout of an index directory:
    CURRENT               name of the build being served (replaced atomically)
    builds/<name>/        one complete build:
        manifest.json         format, model, chunker and annotator, counts, span labels
        articles.jsonl        article metadata (with `duplicate_of`); texts.bin + text_offsets.npy hold the texts
        hashes.json           content hash per article, to tell what changed
        chunks.npy, sentences.npy, spans.npy, span_ptr.npy    offset tables (int32; span_ptr int64)
        chunk_vectors.npy, sentence_vectors.npy, chunks.faiss, bm25/, df.json
    .lock                 held while a build runs
A build is written beside the served one and switched to by replacing CURRENT, so a crash mid-build
leaves the previous index serving. Unchanged articles reuse their stored vectors and entities (only their
entities and phrases are found again when the annotator changed, which is far cheaper than embedding).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache, partial
from pathlib import Path
from typing import TypeVar

import numpy as np
from tqdm.auto import tqdm

from rag import embedding, lexical, nlp, vectors
from rag.chunking import SPLITTER_VERSION, chunk_sentences, split_sentences
from rag.dedup import NearDuplicateSettings, mark_near_duplicates
from rag.errors import (ArticleFormatError, IndexBusyError, IndexDamagedError, IndexNotBuiltError,
                        IndexNotWritableError, IndexOutdatedError, ModelMismatchError)
from rag.ingest import content_hash, scan_corpus
from rag.settings import Settings
from rag.storage import DamagedFileError, RowFile, TextFile, write_texts
from rag.types import Article, Chunk, Sentence, Span

FORMAT_VERSION = 3
TOKENIZE_BATCH = 50_000  # chunk texts per tokenizer call, to bound the memory of big builds
_BUILD_NAME = re.compile(r"[0-9]{8}T[0-9]{12}Z-[0-9a-z]{1,32}")  # see _write_build
T = TypeVar("T")
KEEP_OLDER_BUILDS = 1  # builds before the served one that are kept: a server may still be switching from it
LOCK_HOLDER_WAIT_SECONDS = 2.0  # how long a second build waits for the first to record its pid


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
    replaced: list[tuple[str, str]] = field(default_factory=list)  # (older version's path, newer article's id)
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

    def skipped(self) -> list[str]:
        """One "path: reason" per corpus file the build skipped."""
        return ([f"{problem.path}: {problem.reason}" for problem in self.problems]
                + [f"{path}: same text as article {kept}" for path, kept in self.duplicates]
                + [f"{path}: replaced by {newer}, a newer version of the same URL" for path, newer in self.replaced])


def chunker_settings(settings: Settings) -> dict:
    return {"max_chars": settings.chunk_max_chars, "overlap_sentences": settings.chunk_overlap_sentences}


def near_duplicate_settings(settings: Settings) -> NearDuplicateSettings:
    return NearDuplicateSettings(settings.near_duplicate_threshold, settings.near_duplicate_shingle_words)


class IndexData:
    """A loaded build, read-only. Small tables are held in memory; texts, vectors and spans are read from disk
    by row when a question needs them (rag/storage.py), so a large index costs little memory.

    Opening a build checks that every file agrees with the manifest (sizes, shapes, counts) and raises
    IndexDamagedError naming the first that does not, so a damaged build is never served half-read.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        try:
            self._open(directory)
            self._check()
        except BaseException:
            self.close()
            raise
        catalog, texts = self.catalog, self.texts

        @lru_cache(maxsize=256)
        def article_at(i: int) -> Article:
            """Article i with its text (cached: a question reads the same few articles many times)."""
            return replace(catalog[i], text=texts[i])

        # A closure over the tables, not a bound method: no reference cycle keeps a replaced build's files open.
        self.article_at = article_at

    def _open(self, directory: Path) -> None:
        read = partial(_read_build_file, directory)
        self.manifest = read("manifest.json", _read_json)
        self.catalog = read("articles.jsonl", _read_catalog)  # metadata only: `article_at(i)` reads the text
        self.article_index = {a.id: i for i, a in enumerate(self.catalog)}
        self.chunk_table = read("chunks.npy", np.load)  # (n, 5): article, start, end, first sentence, last + 1
        self.sentence_table = read("sentences.npy", np.load)  # (n, 3): article, start, end
        self.span_ptr = read("span_ptr.npy", np.load)  # spans of sentence i: rows span_ptr[i]:span_ptr[i + 1]
        self.span_table = read("spans.npy", RowFile)  # (k, 5): start, end, "label|dep" code, head start, end
        self.chunk_vectors = read("chunk_vectors.npy", RowFile)
        self.sentence_vectors = read("sentence_vectors.npy", RowFile)
        self.texts = read("texts.bin", lambda path: TextFile(path.parent))
        self.vector_index = read("chunks.faiss", partial(vectors.load_vector_index, mmap=True))
        self.bm25 = read("bm25", lexical.load_bm25) if len(self.chunk_table) else None
        self.chunk_article = self.chunk_table[:, 0]
        self.document_frequency = read("df.json", _read_json)

    def _check(self) -> None:
        """Every table's size must be the one the manifest counts."""
        try:
            counts, dimensions = self.manifest["counts"], self.manifest["model"]["dimensions"]
            articles, chunks, sentences, spans = (counts[k] for k in ("articles", "chunks", "sentences", "spans"))
            self.span_labels: list[str] = self.manifest["span_labels"]
        except (KeyError, TypeError) as error:
            raise IndexDamagedError(f"build {self.directory}", f"manifest.json lacks {error}") from None
        found = {
            "articles.jsonl": (len(self.catalog), articles),
            "text_offsets.npy": (len(self.texts), articles),
            "chunks.npy": (self.chunk_table.shape, (chunks, 5)),
            "sentences.npy": (self.sentence_table.shape, (sentences, 3)),
            "span_ptr.npy": ((*self.span_ptr.shape, int(self.span_ptr[-1]) if len(self.span_ptr) else None),
                             (sentences + 1, spans)),
            "spans.npy": (self.span_table.shape, (spans, 5)),
            "chunk_vectors.npy": (self.chunk_vectors.shape, (chunks, dimensions)),
            "sentence_vectors.npy": (self.sentence_vectors.shape, (sentences, dimensions)),
            "chunks.faiss": ((self.vector_index.ntotal, self.vector_index.d), (chunks, dimensions)),
            "bm25/": (self.bm25.num_docs if self.bm25 else 0, chunks),
        }
        for name, (have, want) in found.items():
            if have != want:
                raise IndexDamagedError(f"build {self.directory}", f"{name} holds {have} where the manifest "
                                                                   f"counts {want}")

    def close(self) -> None:
        """Close the build's files now; a replaced build is also closed as soon as nothing refers to it."""
        for name in ("span_table", "chunk_vectors", "sentence_vectors", "texts", "bm25"):
            files = self.__dict__.get(name)
            if files is not None:
                files.close()
        self.__dict__.pop("vector_index", None)  # unmaps an IVF index's lists

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


def _read_json(path: Path) -> dict:
    """A JSON object (every JSON file of a build holds one)."""
    value = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(value, dict):
        raise ValueError(f"not a JSON object but {type(value).__name__}")
    return value


def _read_catalog(path: Path) -> list[Article]:
    with open(path, encoding="utf-8") as lines:
        return [Article(**json.loads(line), text="") for line in lines]


def _read_build_file(directory: Path, name: str, read: Callable[[Path], T]) -> T:
    """`read(directory / name)`, where any failure means a damaged build and is said naming the file."""
    try:
        return read(directory / name)
    except Exception as error:
        message = re.sub(r"^Error in .*? at \S+:\d+: (Error: )?", "", str(error).strip()).splitlines()
        reason = message[0][:300] if message else type(error).__name__
        if not isinstance(error, DamagedFileError):  # those name their file already
            reason = f"{name}: {reason}"
        raise IndexDamagedError(f"build {directory}", reason) from None


def current_build(index_dir: Path) -> Path | None:
    """The directory of the build CURRENT names, or None before the first build. IndexDamagedError when CURRENT
    names no complete build (garbage bytes, a missing directory)."""
    try:
        raw = (index_dir / "CURRENT").read_bytes()
    except FileNotFoundError:
        return None
    name = raw.decode("utf-8", errors="replace").strip()
    if not _BUILD_NAME.fullmatch(name):
        raise IndexDamagedError(str(index_dir), f"CURRENT names no build: {raw[:40]!r}")
    path = index_dir / "builds" / name
    if not (path / "manifest.json").is_file():
        raise IndexDamagedError(str(index_dir), f"CURRENT names build {name}, which has no manifest.json")
    return path


def check_model(manifest: dict) -> None:
    """An index is only served by the program and model that wrote it (vectors from two models do not mix)."""
    if manifest.get("format") != FORMAT_VERSION:
        raise IndexOutdatedError(f"the index has format {manifest.get('format')}, this version reads format "
                                 f"{FORMAT_VERSION}: run `rag index` to rebuild it")
    installed = embedding.model_identity()
    if manifest.get("model") != installed:
        raise ModelMismatchError(
            f"the index was built with {manifest.get('model')}, but {installed} is installed: run `rag index` to rebuild")


def index_fingerprint(index_dir: Path) -> tuple:
    """What loading the served build depends on, found cheaply: CURRENT's content and the size, time and inode of
    each file of the build it names (stat only). A build that failed to load is tried again once this changes."""
    try:
        current = (index_dir / "CURRENT").read_bytes()
    except FileNotFoundError:
        return ()
    except OSError as error:  # a directory, unreadable: loading will say so
        return ("unreadable", repr(error))
    name = current.decode("utf-8", errors="replace").strip()
    files = []
    if _BUILD_NAME.fullmatch(name):
        for root, _, names in os.walk(index_dir / "builds" / name):
            for file_name in names:
                try:
                    stat = os.stat(os.path.join(root, file_name))
                except OSError:
                    continue
                files.append((root, file_name, stat.st_size, stat.st_mtime_ns, stat.st_ino))
    return current, tuple(sorted(files))


def load_build(build: Path) -> IndexData:
    """Open one build for serving: written by this program and model, and whole."""
    check_model(_read_build_file(build, "manifest.json", _read_json))
    return IndexData(build)


def load_index(index_dir: Path) -> IndexData:
    """Load the served build; raises IndexNotBuiltError when there is none, IndexDamagedError when it is damaged."""
    build = current_build(index_dir)
    if build is None:
        raise IndexNotBuiltError(str(index_dir))
    return load_build(build)


@contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index directory; a second one fails at once, naming the pid of the first."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:
        raise IndexNotWritableError(_cannot_write(index_dir, error)) from None
    try:
        _acquire(fd, index_dir)
        record = f"pid {os.getpid()}\n".encode()
        os.pwrite(fd, record, 0)  # one write, right after locking: a rival waits for it (see _acquire)
        os.ftruncate(fd, len(record))
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # leaves no pid behind for the next build's rivals to name
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, index_dir: Path) -> None:
    """Lock, or raise IndexBusyError naming the holder. A holder records its pid just after it locks, so a rival
    that finds the lock taken but no live pid recorded waits a moment for it rather than say "unknown pid"."""
    deadline = time.monotonic() + LOCK_HOLDER_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        holder = _lock_holder(fd)
        if holder is not None or time.monotonic() > deadline:
            raise IndexBusyError(f"another build of {index_dir} is running ({holder or 'unknown pid'}); "
                                 "wait for it to finish")
        time.sleep(0.01)


def _lock_holder(fd: int) -> str | None:
    """"pid N" as the lock file records it, if process N is alive (a build killed with -9 leaves its pid)."""
    found = re.match(rb"pid ([0-9]+)\n", os.pread(fd, 64, 0))
    if found is None:
        return None
    try:
        os.kill(int(found[1]), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return f"pid {int(found[1])}"


def _cannot_write(path: Path, error: OSError) -> str:
    return (f"cannot write to {path} ({error.strerror or error}): make it writable (chmod u+w, or chattr -i if it "
            "is immutable) and run `rag index` again")


def _check_writable(index_dir: Path) -> None:
    """Fail before any embedding when the new build could not be written or switched to."""
    for directory in (index_dir, index_dir / "builds"):
        probe = directory / f".write-test-{os.getpid()}"
        try:
            directory.mkdir(exist_ok=True)
            probe.mkdir()
            probe.rmdir()
        except OSError as error:
            raise IndexNotWritableError(_cannot_write(directory, error)) from None


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


def _reusable(index_dir: Path, settings: Settings, report: BuildReport) -> tuple[IndexData | None, dict[str, str]]:
    """The served build and its articles' content hashes if this build can reuse its rows; otherwise (None, {}),
    with the reason in `report`. Any error reading the served build means rebuilding from the corpus."""
    try:
        build = current_build(index_dir)
        if build is None:
            return None, {}
        manifest = _read_build_file(build, "manifest.json", _read_json)
        report.rebuilt_all = reuse_problem(manifest, settings)
        if report.rebuilt_all is None:
            previous = IndexData(build)
            try:
                return previous, _read_build_file(build, "hashes.json", _read_json)
            except BaseException:
                previous.close()
                raise
    except Exception as error:
        report.rebuilt_all = _unreadable(error)
    return None, {}


def reuse_problem(manifest: dict, settings: Settings) -> str | None:
    """Why a build's rows cannot be reused by the next one (None: they can)."""
    if manifest.get("format") != FORMAT_VERSION:
        return "index format changed"
    if manifest.get("model") != embedding.model_identity():
        return f"embedding model changed from {manifest.get('model')}"
    if manifest.get("chunker") != chunker_settings(settings):
        return "chunker settings changed"
    return None


def _unreadable(error: Exception) -> str:
    """Why the previous build cannot be reused, in one line."""
    reason = f"{error.where} is damaged ({error.reason})" if isinstance(error, IndexDamagedError) else \
        f"could not be read ({type(error).__name__}: {error})"
    return f"the previous index {reason}; rebuilt from the corpus"


def _plan(articles: list[Article], hashes: dict[str, str], previous: IndexData | None, old: dict[str, str],
          settings: Settings, report: BuildReport) -> list[Article]:
    """Sort the corpus into added, changed, removed and unchanged articles (in `report`); returns the articles to
    embed: new and changed ones, and with a new sentence splitter the unchanged ones it now splits differently."""
    report.added, report.changed, report.unchanged, report.resplit = [], [], [], None
    fresh = [a for a in articles if old.get(a.id) != hashes[a.id]]
    if previous is not None and previous.manifest.get("splitter") != SPLITTER_VERSION:
        resplit = [a for a in articles if old.get(a.id) == hashes[a.id] and not _same_layout(previous, a, settings)]
        report.resplit = len(resplit)
        fresh += resplit
    for a in articles:
        (report.unchanged if old.get(a.id) == hashes[a.id] else report.changed if a.id in old
         else report.added).append(a.id)
    report.removed = sorted(set(old) - set(hashes))
    return fresh


class LocalStore:
    """Where build_index keeps builds: by default directories under the index directory, switched by CURRENT.
    Another store (rag/milvus.py) offers the same five methods and receives the same rows."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir

    def lock(self) -> contextlib.AbstractContextManager:
        return build_lock(self.index_dir)

    def reusable(self, settings: Settings, report: BuildReport) -> tuple[IndexData | None, dict[str, str]]:
        return _reusable(self.index_dir, settings, report)

    def check_writable(self) -> None:
        _check_writable(self.index_dir)

    def prune(self) -> None:
        _prune(self.index_dir)

    def write(self, articles: list[Article], rows: list[ArticleRows], hashes: dict[str, str],
              settings: Settings) -> str:
        try:
            return _write_build(self.index_dir, articles, rows, hashes, settings)
        except OSError as error:
            raise IndexNotWritableError(f"could not write the new build into {self.index_dir / 'builds'} "
                                        f"({error}); the index served is unchanged") from None


def build_index(corpus_dir: Path, index_dir: Path, settings: Settings, progress: bool = True,
                on_scanned: Callable[[BuildReport], None] | None = None,
                store: LocalStore | None = None) -> BuildReport:
    """Bring the index up to date with the corpus, embedding only new and changed articles (into `store`: by
    default the build directories under `index_dir`)."""
    started = time.perf_counter()
    report = BuildReport()
    store = store or LocalStore(index_dir)
    with store.lock():
        scan = scan_corpus(corpus_dir, settings.max_article_bytes)
        report.problems, report.duplicates, report.replaced = scan.problems, scan.duplicates, scan.replaced
        hashes = {a.id: content_hash(a) for a in scan.articles}
        previous, old = store.reusable(settings, report)
        try:
            try:
                fresh = _plan(scan.articles, hashes, previous, old, settings, report)
                # A new annotator or tokenizer reuses every vector: spans are found again, BM25 is rebuilt anyway.
                stale = previous is not None and previous.manifest.get("annotator") != nlp.annotator_identity()
                retokenize = previous is not None and previous.manifest.get("tokenizer") != lexical.TOKENIZER_VERSION
                # A build before `duplicate_of`, or with other near-duplicate settings, is rebuilt (nothing embedded).
                same_duplicates = previous is not None and previous.manifest.get("near_duplicates") == \
                    near_duplicate_settings(settings).identity()
                up_to_date = previous is not None and same_duplicates and not (
                    fresh or report.removed or stale or retokenize or report.resplit is not None)
                fresh_ids = {a.id for a in fresh}
                kept = [a for a in scan.articles if a.id not in fresh_ids]
                kept_rows = [previous.rows_of(a.id) for a in kept] if previous and not up_to_date else []
            except Exception as error:
                if previous is None:
                    raise
                previous.close()  # damaged beyond what loading checks: nothing of it is reused
                previous, report.rebuilt_all = None, _unreadable(error)
                fresh = _plan(scan.articles, hashes, None, {}, settings, report)
                stale = retokenize = up_to_date = False
                kept, kept_rows = [], []
            if up_to_date:
                report.chunks = len(previous.chunk_table)
                store.prune()  # what a killed build left
                report.seconds = time.perf_counter() - started
                return report  # keep serving the current build
            store.check_writable()
            if on_scanned:
                on_scanned(report)
            new_rows = dict(zip((a.id for a in fresh), _process(fresh, settings, report, progress)))
            if stale and kept:
                kept_rows = _reannotate(kept, kept_rows, progress)
                report.reannotated = len(kept)
            new_rows.update(zip((a.id for a in kept), kept_rows))
            rows = [new_rows[a.id] for a in scan.articles]
            report.chunks = sum(len(r.chunks) for r in rows)
        finally:
            if previous is not None:
                previous.close()
        articles = mark_near_duplicates(scan.articles, near_duplicate_settings(settings))
        report.build = store.write(articles, rows, hashes, settings)
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
        manifest = build_manifest(settings, len(articles), tables, span_labels)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        _fsync_tree(tmp)
        os.rename(tmp, builds / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    pointer = index_dir / f".CURRENT.{name}"
    pointer.write_text(name + "\n")
    os.replace(pointer, index_dir / "CURRENT")
    _prune(index_dir)
    return name


def build_manifest(settings: Settings, articles: int, tables: dict[str, np.ndarray], span_labels: list[str]) -> dict:
    """What a build records about how it was made (checked before reuse and serving) and what it holds."""
    return {
        "format": FORMAT_VERSION,
        "model": embedding.model_identity(),
        "chunker": chunker_settings(settings),
        "annotator": nlp.annotator_identity(),
        "tokenizer": lexical.TOKENIZER_VERSION,
        "splitter": SPLITTER_VERSION,
        "near_duplicates": near_duplicate_settings(settings).identity(),
        "build_time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "counts": {"articles": articles, "chunks": len(tables["chunks"]),
                   "sentences": len(tables["sentences"]), "spans": len(tables["spans"])},
        "span_labels": span_labels,
    }


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


def _prune(index_dir: Path) -> None:
    """Remove what interrupted builds left (temporary directories and pointers, and complete builds that CURRENT
    never named, which are newer than the one it names) and builds older than the served one but the newest
    KEEP_OLDER_BUILDS, which a server may still be switching from. The build CURRENT names is never removed."""
    builds = index_dir / "builds"
    leftovers = [*index_dir.glob(".CURRENT.*"), *builds.glob(".tmp-*"), *builds.glob(".write-test-*")]
    try:
        served = current_build(index_dir)
    except (IndexDamagedError, OSError):
        served = None  # nothing but leftovers can be told apart
    if served is not None:
        complete = sorted(p for p in builds.iterdir() if p.is_dir() and not p.name.startswith("."))
        older = [p for p in complete if p.name < served.name]
        leftovers += [p for p in complete if p.name > served.name] + older[:max(0, len(older) - KEEP_OLDER_BUILDS)]
    for path in leftovers:
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        except OSError:
            pass  # a read-only directory: left for a later build
