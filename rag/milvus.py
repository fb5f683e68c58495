"""The index in Milvus: the same builds as rag/index.py writes to disk, stored in Milvus collections and served from
there, so any number of `rag serve` replicas can answer from one Milvus without local index files.

A build is four collections, `<prefix>_<build>_<table>`:
    articles    metadata (JSON) and text, in parts of at most TEXT_PART characters (a VARCHAR holds 64 KB)
    chunks      offsets, the chunk's BM25 tokens (as the FAISS path's bm25s has them) for Milvus's BM25 Function (a
                sparse field), the dense vector,
                and the article's outlet (case-folded) and date (YYYYMMDD, 0 when undated) for filter expressions
    sentences   offsets, vector and entity spans
    meta        the manifest (as rag/index.py writes it, plus the layout), document frequencies and content hashes
It is written whole into new collections, then the alias `<prefix>_current` is switched to its meta collection in
one call, so a reader never sees half a build and a failed build leaves the alias where it was. The build before
the served one is kept (a replica may still be switching from it); older ones and leftovers are dropped.

Retrieval is one `hybrid_search`: the dense vectors and BM25 over the chunks' tokens, fused by Milvus (WeightedRanker
over raw scores, BM25's weighted by the question's idf, for the local path's default convex fusion; RRFRanker with
`FusionSettings(method="rrf")`),
with the outlet and date filters as filter expressions inside both searches. The small tables (articles' metadata,
chunk and sentence offsets, document frequencies) are read once when a build is opened, as IndexData holds them;
texts, sentence vectors and spans are read by id when a question needs them.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import secrets
import socket
import datetime as dt
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from rag import embedding, lexical, vectors
from rag.errors import IndexBusyError, IndexNotBuiltError, IndexOutdatedError, RagError, StoreUnavailableError
from rag.index import (KEEP_OLDER_BUILDS, TOKENIZE_BATCH, ArticleRows, BuildReport, IndexData, _assemble,
                       build_manifest, check_model, reuse_problem)
from rag.retrieval import FusionSettings
from rag.settings import Settings
from rag.types import Article, Filters, Passage

log = logging.getLogger(__name__)

LAYOUT = 2  # the collections' schema; a build of another layout is refused with a message to rebuild
# Chunks' `text` holds this program's BM25 tokens (bm25_text), word characters joined by spaces, which the standard
# tokenizer (no filters) splits back into the same tokens (Milvus Lite has no whitespace tokenizer).
ANALYZER = {"tokenizer": "standard"}
BM25_PARAMS = {"bm25_k1": lexical.K1, "bm25_b": lexical.B}
TEXT_PART = 16_000  # characters per VARCHAR part: 4 bytes each at most, under Milvus's 65,535-byte limit
PARTS_PER_ARTICLE = 4_096  # an article's parts have ids row * PARTS_PER_ARTICLE + part (2 MB fits in 131)
META_PART = 16_000  # characters of a JSON value per meta row
INSERT_BATCH = 1_000
GET_BATCH = 1_000
SCAN_PAGE = 10_000  # rows per query when a build's tables are read (Milvus returns at most 16,384)
CACHED_ARTICLES = 256  # article texts kept per build
CACHED_SENTENCES = 8_192  # sentence rows (vector and spans) kept per build: a question reads the same ones again
LOCK_STALE_HOURS = 24  # a build lock this old is taken over (a build of a whole archive takes hours)
POLL_SECONDS = 1.0  # how often a server asks Milvus which build the alias names
IVF_NPROBE = vectors.NPROBE
BM25_SCALE = 0.7  # BM25's weight per unit of question idf against the inner product's 1 (bench/milvus_fusion.py)
_DUMMY = [1.0, 0.0]  # Milvus needs a vector field in every collection; articles and meta hold this one
_BUILD = re.compile(r"b[0-9]{8}T[0-9]{12}Z_[0-9a-f]{6}")
TABLES = ("articles", "sentences", "chunks", "meta")


def is_lite(uri: str) -> bool:
    return not uri.lower().startswith(("http://", "https://"))


def filter_expression(filters: Filters | None) -> str | None:
    """The filters as a Milvus boolean expression over the chunks' `source` and `published` fields (pure); None when
    nothing is filtered. Outlets match case-insensitively (stored case-folded) and undated articles never pass a date
    bound, as Filters.admits decides."""
    if filters is None or filters == Filters():
        return None
    parts = []
    if filters.sources:
        parts.append(f"source in {json.dumps(sorted({s.casefold() for s in filters.sources}), ensure_ascii=False)}")
    if filters.since:
        parts.append(f"published >= {_date_number(filters.since)}")
    if filters.until:
        parts.append(f"published > 0 and published <= {_date_number(filters.until)}")
    return " and ".join(parts)


def _date_number(date: str | None) -> int:
    """YYYY-MM-DD as the integer YYYYMMDD (0 for no date), which orders as the dates do."""
    return int(date.replace("-", "")) if date else 0


def _short(error: BaseException) -> str:
    text = str(getattr(error, "message", "") or error or type(error).__name__)
    return " ".join(text.split())[:300]


def describe_error(error: BaseException, uri: str, connecting: bool = False) -> RagError:
    """A pymilvus error as a one-line error a user can act on (pure): refused credentials, Milvus unreachable, or
    what Milvus said."""
    if isinstance(error, RagError):
        return error
    text = _short(error)
    causes = list(_causes(error))
    refused = [c for c in causes if _grpc_code(c) in ("UNAUTHENTICATED", "PERMISSION_DENIED")]
    if refused:  # pymilvus reports a refused token while connecting as "Fail connecting", the reason in its cause
        text = _short(refused[0]) if not hasattr(refused[0], "details") else " ".join(refused[0].details().split())
    lowered = text.lower()
    if refused or re.search(r"\b(auth\w*|credentials?|password|token|unauthenticated|permission denied)\b", lowered):
        return StoreUnavailableError(f"Milvus at {uri} refused the credentials ({text}): set RAG_MILVUS_TOKEN to "
                                     "\"user:password\" or an API key that may use it")
    if connecting or any(word in lowered for word in ("connect", "unavailable", "deadline", "timed out", "timeout",
                                                      "open local milvus failed")):
        hint = ("is another process using this Milvus Lite file?" if is_lite(uri)
                else "is Milvus running, and is the URI right?")
        return StoreUnavailableError(f"cannot reach Milvus at {uri} ({text or 'no reply'}): {hint}")
    return StoreUnavailableError(f"Milvus at {uri} failed: {text}")


def _causes(error: BaseException):
    """The error and those it was raised from."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _grpc_code(error: BaseException) -> str:
    """The gRPC status of an RpcError (its name), "" for other errors."""
    code = getattr(error, "code", None)
    try:
        return getattr(code(), "name", "") if callable(code) else ""
    except Exception:
        return ""


def _quiet_pymilvus() -> None:
    """pymilvus logs every failed call with a traceback; the errors are reported in one line instead."""
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("pymilvus")] + ["pymilvus"]:
        logging.getLogger(name).setLevel(logging.CRITICAL)


@lru_cache(maxsize=8)
def _client(uri: str, token: str) -> object:
    from pymilvus import MilvusClient

    _quiet_pymilvus()
    if is_lite(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        # Milvus Lite serves gRPC in this process and logs a traceback for each call it does not implement
        # (AllocTimestamp, which pymilvus then does without).
        logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    return MilvusClient(uri=uri, token=token, timeout=10)


class Milvus:
    """One Milvus (URI and token) and the collections of this program's builds in it. Every call that fails
    raises a one-line RagError (StoreUnavailableError when Milvus is unreachable or refuses the token)."""

    def __init__(self, uri: str, token: str = "", prefix: str = "rag") -> None:
        if not uri or not (uri.endswith(".db") or not is_lite(uri)):
            raise ValueError(f"a Milvus URI is a path ending in .db or http(s)://host:port, got {uri!r}")
        self.uri, self.token, self.prefix = uri, token, prefix
        self.alias = f"{prefix}_current"

    @classmethod
    def from_settings(cls, settings: Settings) -> Milvus:
        if not settings.milvus_uri:
            raise ValueError("no Milvus URI: set RAG_MILVUS_URI or pass --milvus")
        token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
        return cls(settings.milvus_uri, token, settings.milvus_prefix)

    @property
    def client(self):
        try:
            return _client(self.uri, self.token)
        except Exception as error:
            raise describe_error(error, self.uri, connecting=True).with_traceback(None) from None

    @contextlib.contextmanager
    def calls(self) -> Iterator[None]:
        """Turn a failed Milvus call into the one-line error."""
        try:
            yield
        except RagError:
            raise
        except Exception as error:
            raise describe_error(error, self.uri) from None

    def collection(self, build: str, table: str) -> str:
        return f"{self.prefix}_{build}_{table}"

    def served_build(self) -> str | None:
        """The build the alias names (None before the first build)."""
        client = self.client
        with self.calls():
            if self.alias not in client.list_aliases().get("aliases", []):
                return None
            target = client.describe_alias(self.alias)["collection_name"]
        return self._build_of(target) or target

    def _build_of(self, collection: str) -> str | None:
        found = re.fullmatch(re.escape(self.prefix) + r"_(" + _BUILD.pattern + r")_(" + "|".join(TABLES) + ")",
                             collection)
        return found[1] if found else None

    def builds(self) -> dict[str, list[str]]:
        """Every build of this prefix with its collections."""
        with self.calls():
            names = self.client.list_collections()
        out: dict[str, list[str]] = {}
        for name in names:
            build = self._build_of(name)
            if build:
                out.setdefault(build, []).append(name)
        return out

    def open(self, build: str | None = None) -> MilvusIndex:
        """The build the alias names (or `build`), checked and ready to serve."""
        build = build or self.served_build()
        if build is None:
            raise IndexNotBuiltError(f"Milvus at {self.uri} (no alias {self.alias})")
        if not _BUILD.fullmatch(build):
            raise IndexOutdatedError(f"the Milvus alias {self.alias} at {self.uri} names {build}, which is not a build "
                                     f"of this layout: run `rag index --milvus {self.uri}` to rebuild")
        return MilvusIndex(self, build)


class _Recent:
    """Values by integer key, those not kept read together by `read` (keys -> values); the `size` most recent kept,
    since a question reads the same sentences and articles again."""

    def __init__(self, size: int, read: Callable[[list[int]], dict]) -> None:
        self.size, self.read = size, read
        self._kept: OrderedDict[int, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, keys: list[int]) -> dict:
        """The values of the keys that exist."""
        with self._lock:
            found = {k: self._kept[k] for k in keys if k in self._kept}
        missing = [k for k in dict.fromkeys(keys) if k not in found]
        if missing:
            found.update(self.read(missing))
        with self._lock:
            for k in keys:
                if k in found:
                    self._kept[k] = found[k]
                    self._kept.move_to_end(k)
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        return found

    def clear(self) -> None:
        self._kept.clear()


class _SentenceRows:
    """Sentence vectors and spans read from Milvus by id, the recent ones kept: `vectors[ids]` as RowFile gives."""

    def __init__(self, milvus: Milvus, collection: str, count: int, dimensions: int) -> None:
        self.milvus, self.collection, self.shape = milvus, collection, (count, dimensions)
        self._recent = _Recent(CACHED_SENTENCES, self._read)

    def _read(self, ids: list[int]) -> dict[int, tuple[np.ndarray, list]]:
        found = {}
        for lo in range(0, len(ids), GET_BATCH):
            with self.milvus.calls():
                got = self.milvus.client.get(self.collection, ids=ids[lo:lo + GET_BATCH],
                                             output_fields=["vector", "spans"])
            for row in got:
                found[int(row["id"])] = (np.asarray(row["vector"], dtype=np.float32), list(row["spans"]))
        return found

    def rows(self, ids: list[int]) -> list[tuple[np.ndarray, list]]:
        found = self._recent.get(ids)
        for i in ids:
            if i not in found:
                raise IndexError(f"sentence {i} is not in {self.collection}")
        return [found[i] for i in ids]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: int | slice | list[int] | np.ndarray) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            return self.rows([int(key)])[0][0]
        ids = list(range(*key.indices(len(self)))) if isinstance(key, slice) else [int(i) for i in key]
        rows = self.rows(ids)
        return np.stack([r[0] for r in rows]) if rows else np.zeros((0, self.shape[1]), np.float32)

    def close(self) -> None:
        self._recent.clear()


class MilvusIndex(IndexData):
    """A build in Milvus, offering what the answerer reads of a local build (IndexData's tables and methods), and
    `hybrid_passages`, which retrieval calls instead of searching FAISS and BM25 itself."""

    def __init__(self, milvus: Milvus, build: str) -> None:
        self.milvus, self.build = milvus, build
        self.directory = Path(build)  # what status and logs name
        self.names = {table: milvus.collection(build, table) for table in TABLES}
        self._open_build()
        self._texts = _Recent(CACHED_ARTICLES, self._read_texts)

    def article_at(self, i: int) -> Article:
        return replace(self.catalog[i], text=self.texts([i])[i])

    def texts(self, articles: list[int]) -> dict[int, str]:
        """The texts of articles (rows of the catalog), those not kept read together by primary key: a filtered
        query scans the collection (30-270 ms an article in Milvus Lite)."""
        return self._texts.get(articles)

    def _read_texts(self, articles: list[int]) -> dict[int, str]:
        """Article texts from their parts (ids article * PARTS_PER_ARTICLE + part). The parts asked for first are
        those the article's chunks reach into, and one more; while the last part asked for exists, more are."""
        parts: dict[int, dict[int, str]] = {a: {} for a in articles}
        asked = {a: (0, int(self.text_reach[a]) // TEXT_PART + 2) for a in articles}
        while asked:
            ids = [a * PARTS_PER_ARTICLE + p for a, (lo, hi) in asked.items() for p in range(lo, hi)]
            for lo in range(0, len(ids), GET_BATCH):
                with self.milvus.calls():
                    rows = self.milvus.client.get(self.names["articles"], ids=ids[lo:lo + GET_BATCH],
                                                  output_fields=["text"])
                for row in rows:
                    a, part = divmod(int(row["id"]), PARTS_PER_ARTICLE)
                    parts[a][part] = row["text"]
            asked = {a: (hi, hi + 8) for a, (lo, hi) in asked.items() if hi - 1 in parts[a] and hi < PARTS_PER_ARTICLE}
        return {a: "".join(text for _, text in sorted(parts[a].items())) for a in articles}

    def _open_build(self) -> None:
        where = f"Milvus build {self.build} at {self.milvus.uri}"
        client = self.milvus.client
        with self.milvus.calls():
            present = set(client.list_collections())
            if not set(self.names.values()) <= present:
                missing = sorted(set(self.names.values()) - present)
                raise IndexOutdatedError(f"the {where} lacks collections {', '.join(missing)} (another layout, or "
                                         f"dropped): run `rag index --milvus {self.milvus.uri}` to rebuild")
            for collection in self.names.values():  # a Milvus restarted (or a Lite file reopened) has them released
                client.load_collection(collection)
            manifest = self._json("manifest")
        if manifest is None or manifest.get("layout") != LAYOUT:
            layout = None if manifest is None else manifest.get("layout")
            raise IndexOutdatedError(f"the {where} has collection layout {layout}, this version reads layout {LAYOUT}: "
                                     f"run `rag index --milvus {self.milvus.uri}` to rebuild it")
        check_model(manifest)
        self.manifest = manifest
        self.span_labels: list[str] = manifest["span_labels"]
        counts = manifest["counts"]
        with self.milvus.calls():
            articles = self._scan("articles", ["article", "meta"], counts["articles"], "article", "part == 0")
            chunks = self._scan("chunks", ["id", "article", "start", "end", "first", "last"], counts["chunks"])
            sentences = self._scan("sentences", ["id", "article", "start", "end"], counts["sentences"])
            self.document_frequency = self._json("df") or {}
        self.catalog = [Article(**row["meta"], text="") for row in sorted(articles, key=lambda r: r["article"])]
        self.article_index = {a.id: i for i, a in enumerate(self.catalog)}
        self.chunk_table = _table(chunks, ("article", "start", "end", "first", "last"))
        self.sentence_table = _table(sentences, ("article", "start", "end"))
        self.chunk_article = self.chunk_table[:, 0]
        self.text_reach = np.zeros(len(self.catalog), dtype=np.int64)  # the end of each article's last chunk
        np.maximum.at(self.text_reach, self.chunk_article, self.chunk_table[:, 2])
        found = {"articles": len(self.catalog), "chunks": len(self.chunk_table), "sentences": len(self.sentence_table)}
        for name, have in found.items():
            if have != counts[name]:
                raise IndexOutdatedError(f"the {where} holds {have} {name} where its manifest counts {counts[name]} "
                                         f"(incomplete): run `rag index --milvus {self.milvus.uri}` to rebuild it")
        self.sentence_vectors = _SentenceRows(self.milvus, self.names["sentences"], len(self.sentence_table),
                                              manifest["model"]["dimensions"])

    def _scan(self, table: str, fields: list[str], count: int, key: str = "id", condition: str = "") -> list[dict]:
        """The rows whose `key` is 0..count-1, in pages of SCAN_PAGE (under Milvus's limit on one query's rows)."""
        rows: list[dict] = []
        for lo in range(0, count, SCAN_PAGE):
            expression = f"{key} >= {lo} and {key} < {lo + SCAN_PAGE}" + (f" and {condition}" if condition else "")
            rows += self.milvus.client.query(self.names[table], filter=expression, output_fields=fields,
                                             limit=SCAN_PAGE)
        return rows

    def _json(self, key: str) -> object | None:
        """A JSON value of the meta table, stored in parts (None when absent)."""
        client = self.milvus.client
        head = client.get(self.names["meta"], ids=[f"{key}:count"], output_fields=["value"])
        if not head:
            return None
        count = int(head[0]["value"])
        ids = [f"{key}:{i:06d}" for i in range(count)]
        parts = {}
        for lo in range(0, count, GET_BATCH):
            for row in client.get(self.names["meta"], ids=ids[lo:lo + GET_BATCH], output_fields=["value"]):
                parts[row["key"]] = row["value"]
        return json.loads("".join(parts[i] for i in ids))

    def close(self) -> None:
        self.sentence_vectors.close()
        self._texts.clear()

    def content_hashes(self) -> dict[str, str]:
        with self.milvus.calls():
            return self._json("hashes") or {}

    def spans(self, sentence_id: int):
        from rag.types import Span

        rows = self.sentence_vectors.rows([int(sentence_id)])[0][1]
        return [Span(int(s), int(e), *self.span_labels[int(c)].split("|"), int(hs), int(he)) for s, e, c, hs, he in rows]

    def rows_of(self, article_id: str) -> ArticleRows:
        """The stored rows of one article, as IndexData.rows_of gives them (for reuse by the next build)."""
        c_lo, c_hi, s_lo, s_hi = self._ranges(article_id)
        sentences, chunks = self._layout(c_lo, c_hi, s_lo, s_hi)
        with self.milvus.calls():
            got = self.milvus.client.get(self.names["chunks"], ids=list(range(c_lo, c_hi)), output_fields=["dense"])
        by_id = {int(r["id"]): r["dense"] for r in got}
        dims = self.manifest["model"]["dimensions"]
        chunk_vectors = np.array([by_id[i] for i in range(c_lo, c_hi)], dtype=np.float32).reshape(-1, dims)
        rows = self.sentence_vectors.rows(list(range(s_lo, s_hi)))
        sentence_vectors = np.stack([r[0] for r in rows]) if rows else np.zeros((0, dims), np.float32)
        spans = [(j, s, e, hs, he) for j, (_, found) in enumerate(rows) for s, e, _, hs, he in found]
        labels = [self.span_labels[int(c)] for _, found in rows for _, _, c, _, _ in found]
        return ArticleRows(sentences, chunks, chunk_vectors, sentence_vectors,
                           np.array(spans, dtype=np.int64).reshape(-1, 5), labels)

    def fusion_weights(self, terms: list[str], dense_weight: float) -> tuple[float, float]:
        """WeightedRanker's weights for the raw inner product and the raw BM25 score of a question of these terms:
        BM25's divided by the terms' idf, which its scores grow with, and times BM25_SCALE. Milvus's own
        normalisation (arctan of each score) ranks worse than the local path's min-max, this one as well on SQuAD
        train questions (bench/milvus_fusion.py)."""
        idf_sum = sum(self.idf(term) for term in set(terms)) or 1.0
        return dense_weight, (1 - dense_weight) * BM25_SCALE / idf_sum

    def hybrid_passages(self, question: str, query_vector: np.ndarray, k: int, filters: Filters | None = None,
                        candidates: int = 50, fusion: FusionSettings = FusionSettings()) -> list[Passage]:
        """The k best chunks: dense and BM25 searches of `candidates` each, restricted by the filters and fused, all
        in Milvus. Fusion follows `fusion` as the local path does: "convex" is Milvus's WeightedRanker over raw scores
        (see fusion_weights), "rrf" its RRFRanker. A passage's score is the fused score min-max scaled over the
        candidates, as the local path scales scores (the answerer reads it as a clue)."""
        from pymilvus import AnnSearchRequest, RRFRanker, WeightedRanker

        expression = filter_expression(filters) or ""
        limit = max(k, candidates)
        dense_params = {"metric_type": "IP", "params": {"nprobe": IVF_NPROBE}}
        requests = [AnnSearchRequest([np.asarray(query_vector, np.float32).tolist()], "dense", dense_params, limit,
                                     expr=expression)]
        terms = lexical.tokenize([question])[0]
        if terms:  # a question of stopwords only has no BM25 terms
            requests.append(AnnSearchRequest([bm25_text(terms)], "sparse", {"metric_type": "BM25"}, limit,
                                             expr=expression))
        if fusion.method == "rrf":
            ranker = RRFRanker(fusion.rrf_k)
        elif fusion.method == "convex":
            weight = fusion.dense_weight if len(requests) == 2 else 1.0
            ranker = WeightedRanker(*self.fusion_weights(terms, weight)[:len(requests)], norm_score=False)
        else:
            raise ValueError(f"fusion method must be 'convex' or 'rrf', got {fusion.method!r}")
        with self.milvus.calls():
            hits = self.milvus.client.hybrid_search(self.names["chunks"], requests, ranker, limit=limit,
                                                    output_fields=["id"])[0]
        if not hits:
            return []
        self.texts(sorted({int(self.chunk_article[int(hit["id"])]) for hit in hits[:k]}))  # read together
        high, low = float(hits[0]["distance"]), float(hits[-1]["distance"])
        return [Passage(int(hit["id"]), self.chunk(int(hit["id"])),
                        (float(hit["distance"]) - low) / (high - low) if high > low else 1.0) for hit in hits[:k]]


def _table(rows: list[dict], fields: tuple[str, ...]) -> np.ndarray:
    """Rows with ids 0..n-1 as an (n, len(fields)) int32 array in id order."""
    table = np.zeros((len(rows), len(fields)), dtype=np.int32)
    for row in rows:
        table[int(row["id"])] = [row[f] for f in fields]
    return table


class MilvusStore:
    """Where build_index keeps builds when the index lives in Milvus (see rag/index.py's LocalStore)."""

    def __init__(self, milvus: Milvus) -> None:
        self.milvus = milvus

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One build at a time per Milvus and prefix, as build_lock is per index directory: the alias
        `<prefix>_building`, which Milvus creates only once, names a small collection whose name says who holds it
        (host, pid, start). A second build fails at once naming the holder (its prune would otherwise drop the
        first's collections as leftovers); a lock left by a process that died on this host, or older than
        LOCK_STALE_HOURS, is taken over. (Milvus Lite opens a file in one process anyway.)"""
        milvus, alias = self.milvus, f"{self.milvus.prefix}_building"
        host = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:60] or "host"
        holder = (f"{milvus.prefix}_lock_{host}_{os.getpid()}_"
                  f"{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(3)}")
        with milvus.calls():
            client = milvus.client
            self._create_small(holder)
            for attempt in range(2):
                try:
                    client.create_alias(holder, alias)
                    break
                except Exception as error:
                    other = self._lock_holder(alias)
                    if attempt == 0 and other is not None and _stale(other, milvus.prefix, host):
                        log.warning("taking over the Milvus build lock %s left by %s", alias, other)
                        client.drop_alias(alias)
                        self._drop_collection(other)
                        continue
                    self._drop_collection(holder)
                    if other is None:
                        raise describe_error(error, milvus.uri) from None
                    raise IndexBusyError(f"another build into Milvus at {milvus.uri} is running "
                                         f"({_who(other, milvus.prefix)}); wait for it to finish") from None
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                client.drop_alias(alias)
            self._drop_collection(holder)

    def _lock_holder(self, alias: str) -> str | None:
        try:
            return self.milvus.client.describe_alias(alias)["collection_name"]
        except Exception:
            return None

    def _create_small(self, name: str) -> None:
        """A collection of one dummy vector field and no rows (what an alias can name)."""
        from pymilvus import DataType

        create_collection(self.milvus.client, name, [("id", DataType.INT64, {"is_primary": True}),
                                                     ("dummy", DataType.FLOAT_VECTOR, {"dim": len(_DUMMY)})],
                          [("dummy", "FLAT", "IP", {})], description="rag-news build lock")

    def _drop_collection(self, name: str) -> None:
        with contextlib.suppress(Exception):  # left for the next prune
            self.milvus.client.drop_collection(name)

    def reusable(self, settings: Settings, report: BuildReport) -> tuple[IndexData | None, dict[str, str]]:
        build = self.milvus.served_build()  # unreachable: raised, nothing to build into
        if build is None:
            return None, {}
        try:
            previous = self.milvus.open(build)
        except StoreUnavailableError:
            raise
        except RagError as error:
            report.rebuilt_all = f"the previous Milvus build cannot be reused ({error}); rebuilt from the corpus"
            return None, {}
        report.rebuilt_all = reuse_problem(previous.manifest, settings)
        if report.rebuilt_all is not None:
            return None, {}
        return previous, previous.content_hashes()

    def check_writable(self) -> None:
        self.milvus.builds()

    def write(self, articles: list[Article], rows: list[ArticleRows], hashes: dict[str, str],
              settings: Settings) -> str:
        """Write the build into new collections, then point the alias at it; on any failure drop what was written."""
        build = "b" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ") + "_" + secrets.token_hex(3)
        try:
            with self.milvus.calls():
                self._write(build, articles, rows, hashes, settings)
                client = self.milvus.client
                meta = self.milvus.collection(build, "meta")
                if self.milvus.alias in client.list_aliases().get("aliases", []):
                    client.alter_alias(meta, self.milvus.alias)
                else:
                    client.create_alias(meta, self.milvus.alias)
        except BaseException:
            self._drop(build)
            raise
        self.prune()
        return build

    def prune(self) -> None:
        """Drop builds older than the served one but the newest KEEP_OLDER_BUILDS, and newer ones the alias never
        named (what failed builds left); never the served build."""
        served = self.milvus.served_build()
        if served is None:
            return
        builds = sorted(self.milvus.builds())
        older = [b for b in builds if b < served]
        for build in older[:max(0, len(older) - KEEP_OLDER_BUILDS)] + [b for b in builds if b > served]:
            self._drop(build)

    def _drop(self, build: str) -> None:
        for table in TABLES:
            self._drop_collection(self.milvus.collection(build, table))

    def _write(self, build: str, articles: list[Article], rows: list[ArticleRows], hashes: dict[str, str],
               settings: Settings) -> None:
        from pymilvus import DataType

        client, name = self.milvus.client, partial_name(self.milvus, build)
        dims = embedding.model_identity()["dimensions"]
        tables, span_labels = _assemble(rows)
        n_chunks = len(tables["chunks"])

        def create(table: str, fields: list[tuple], vector_indexes: list[tuple[str, str, str, dict]]) -> None:
            create_collection(client, name(table), fields, vector_indexes)

        dense_index = self._dense_index(n_chunks)
        dummy = ("dummy", DataType.FLOAT_VECTOR, {"dim": len(_DUMMY)})
        dummy_index = ("dummy", "FLAT", "IP", {})
        # articles: metadata and text parts
        create("articles", [("id", DataType.INT64, {"is_primary": True}), ("article", DataType.INT64, {}),
                            ("part", DataType.INT64, {}), ("text", DataType.VARCHAR, {"max_length": 65_535}),
                            ("meta", DataType.JSON, {}), dummy], [dummy_index])
        article_rows = []
        for a, article in enumerate(articles):
            meta = {k: v for k, v in asdict(article).items() if k != "text"}
            texts = [article.text[lo:lo + TEXT_PART] for lo in range(0, len(article.text), TEXT_PART)] or [""]
            article_rows += [{"id": a * PARTS_PER_ARTICLE + p, "article": a, "part": p, "text": text,
                              "meta": meta if p == 0 else {}, "dummy": _DUMMY} for p, text in enumerate(texts)]
        self._insert(name("articles"), article_rows)
        # sentences: offsets, vectors, spans ([start, end, label code, head start, head end])
        create("sentences", [("id", DataType.INT64, {"is_primary": True}), ("article", DataType.INT64, {}),
                             ("start", DataType.INT64, {}), ("end", DataType.INT64, {}),
                             ("vector", DataType.FLOAT_VECTOR, {"dim": dims}), ("spans", DataType.JSON, {})],
               [("vector", *self._dense_index(len(tables["sentences"])))])
        sentence_vectors = _stack([r.sentence_vectors for r in rows], dims)
        span_ptr, spans = tables["span_ptr"], tables["spans"]
        self._insert(name("sentences"), (
            {"id": i, "article": int(a), "start": int(s), "end": int(e), "vector": sentence_vectors[i].tolist(),
             "spans": spans[span_ptr[i]:span_ptr[i + 1]].tolist()}
            for i, (a, s, e) in enumerate(tables["sentences"].tolist())))
        # chunks: offsets, the chunk's tokens for BM25, dense vector, filter fields
        chunk_rows = tables["chunks"].tolist()
        tokens: list[list[str]] = []
        for lo in range(0, len(chunk_rows), TOKENIZE_BATCH):
            tokens += lexical.tokenize([articles[a].text[s:e] for a, s, e, _, _ in chunk_rows[lo:lo + TOKENIZE_BATCH]])
        create_chunks_collection(client, name("chunks"), dims, dense_index)
        chunk_vectors = _stack([r.chunk_vectors for r in rows], dims)
        self._insert(name("chunks"), (
            {"id": i, "article": a, "start": s, "end": e, "first": lo, "last": hi,
             "text": bm25_text(tokens[i]), "dense": chunk_vectors[i].tolist(),
             "source": articles[a].source.casefold()[:256], "published": _date_number(articles[a].published)}
            for i, (a, s, e, lo, hi) in enumerate(chunk_rows)))
        # meta: manifest, document frequencies (the answerer's idf), hashes
        manifest = {**build_manifest(settings, len(articles), tables, span_labels), "layout": LAYOUT, "build": build}
        create("meta", [("key", DataType.VARCHAR, {"is_primary": True, "max_length": 64}),
                        ("value", DataType.VARCHAR, {"max_length": 65_535}), dummy], [dummy_index])
        meta_rows = []
        for key, value in (("df", lexical.document_frequencies(tokens)),
                           ("hashes", {a.id: hashes[a.id] for a in articles}), ("manifest", manifest)):
            text = json.dumps(value, ensure_ascii=False)
            parts = [text[lo:lo + META_PART] for lo in range(0, len(text), META_PART)]
            meta_rows += [{"key": f"{key}:{i:06d}", "value": part, "dummy": _DUMMY} for i, part in enumerate(parts)]
            meta_rows.append({"key": f"{key}:count", "value": str(len(parts)), "dummy": _DUMMY})
        self._insert(name("meta"), meta_rows)

    def _dense_index(self, rows: int) -> tuple[str, str, dict]:
        """Exact up to vectors.EXACT_LIMIT rows as the FAISS path; above, an inverted file of sqrt(n) lists: 8-bit
        codes on a server as FAISS stores them, full vectors in Milvus Lite."""
        if rows <= vectors.EXACT_LIMIT:
            return "FLAT", "IP", {}
        return ("IVF_FLAT" if is_lite(self.milvus.uri) else "IVF_SQ8"), "IP", {"nlist": max(1, math.isqrt(rows))}

    def _insert(self, collection: str, rows) -> None:
        batch: list[dict] = []
        for row in rows:
            batch.append(row)
            if len(batch) == INSERT_BATCH:
                self.milvus.client.insert(collection, batch)
                batch = []
        if batch:
            self.milvus.client.insert(collection, batch)
        # Sealed now, its indexes built: unflushed rows are searched by brute force, and BM25 over them is
        # recomputed on every search (seconds a query on a corpus of a few hundred articles, bench/milvus.py).
        self.milvus.client.flush(collection)


def create_collection(client, name: str, fields: list[tuple], vector_indexes: list[tuple[str, str, str, dict]],
                      functions: list = (), description: str | None = None) -> None:
    """A collection of these (name, DataType, options) fields and (field, index type, metric, params) indexes."""
    schema = client.create_schema(auto_id=False, description=description or f"rag-news layout {LAYOUT}")
    for field_name, data_type, options in fields:
        schema.add_field(field_name, data_type, **options)
    for function in functions:
        schema.add_function(function)
    index_params = client.prepare_index_params()
    for field_name, index_type, metric, params in vector_indexes:
        index_params.add_index(field_name, index_type=index_type, metric_type=metric, params=params)
    client.create_collection(name, schema=schema, index_params=index_params, consistency_level="Strong")


def create_chunks_collection(client, name: str, dims: int, dense_index: tuple[str, str, dict]) -> None:
    """The chunks collection: offsets, the chunk's tokens for BM25 (bm25_text) analysed into a sparse field by
    Milvus's BM25 Function, the dense vector, and the filter fields (outlet, date)."""
    from pymilvus import DataType, Function, FunctionType

    create_collection(
        client, name,
        [("id", DataType.INT64, {"is_primary": True}), ("article", DataType.INT64, {}), ("start", DataType.INT64, {}),
         ("end", DataType.INT64, {}), ("first", DataType.INT64, {}), ("last", DataType.INT64, {}),
         ("text", DataType.VARCHAR, {"max_length": 65_535, "enable_analyzer": True, "analyzer_params": ANALYZER}),
         ("sparse", DataType.SPARSE_FLOAT_VECTOR, {}), ("dense", DataType.FLOAT_VECTOR, {"dim": dims}),
         ("source", DataType.VARCHAR, {"max_length": 1_024}), ("published", DataType.INT64, {})],
        [("dense", *dense_index), ("sparse", "SPARSE_INVERTED_INDEX", "BM25", BM25_PARAMS)],
        [Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                  output_field_names=["sparse"])])


def _lock_parts(holder: str, prefix: str) -> tuple[str, int, dt.datetime] | None:
    """Host, pid and start of a lock collection's name (None if it is not one)."""
    found = re.fullmatch(re.escape(prefix) + r"_lock_(\w+)_([0-9]+)_([0-9]{8}T[0-9]{6})_[0-9a-f]{6}", holder)
    if not found:
        return None
    started = dt.datetime.strptime(found[3], "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)
    return found[1], int(found[2]), started


def _who(holder: str, prefix: str) -> str:
    parts = _lock_parts(holder, prefix)
    return f"pid {parts[1]} on {parts[0]}, since {parts[2]:%Y-%m-%d %H:%M} UTC" if parts else holder


def _stale(holder: str, prefix: str, host: str) -> bool:
    """A lock whose process died on this host, or older than LOCK_STALE_HOURS."""
    parts = _lock_parts(holder, prefix)
    if parts is None:
        return False
    if dt.datetime.now(dt.timezone.utc) - parts[2] > dt.timedelta(hours=LOCK_STALE_HOURS):
        return True
    if parts[0] != host:
        return False
    try:
        os.kill(parts[1], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def bm25_text(tokens: list[str]) -> str:
    """A chunk's or a question's tokens as Milvus's BM25 reads them: this program's tokenizer (stems, lemmas of
    irregular words, no stopwords) joined by spaces and split there by ANALYZER, so Milvus scores the terms the
    FAISS path's bm25s scores (pure). Long chunks keep what fits a VARCHAR."""
    text = " ".join(tokens)
    return text if len(text) <= TEXT_PART else text[:max(0, text.rfind(" ", 0, TEXT_PART + 1))]


def partial_name(milvus: Milvus, build: str):
    return lambda table: milvus.collection(build, table)


def _stack(parts: list[np.ndarray], dims: int) -> np.ndarray:
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros((0, dims), np.float32)


class MilvusBuilds:
    """The builds a Pipeline serves from Milvus: which one the alias names (asked at most every POLL_SECONDS on the
    request path, at once by the watcher), and opening it."""

    def __init__(self, milvus: Milvus) -> None:
        self.milvus = milvus
        self.name = milvus.uri
        self._polled: tuple[float, tuple] | None = None

    def fingerprint(self) -> tuple:
        """The build the alias names now; an unreachable Milvus is a state of its own (loading will say why)."""
        try:
            state: tuple = ("build", self.milvus.served_build())
        except RagError as error:
            state = ("unreachable", str(error))
        self._polled = (time.monotonic(), state)
        return state

    def stamp(self) -> tuple:
        polled = self._polled
        if polled is not None and time.monotonic() - polled[0] < POLL_SECONDS:
            return polled[1]
        return self.fingerprint()

    def load(self) -> MilvusIndex:
        return self.milvus.open()
