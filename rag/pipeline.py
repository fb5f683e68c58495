"""The whole question-answering system behind one object, shared by the CLI and the web app.

It serves the current index build and switches to a newer one when `rag index` replaces it, without
failing the requests in flight: each request keeps the `IndexData` it started with, and a replaced build
is closed when the last of them is done (nothing else refers to it). A new build is only served once it has
loaded completely and passed its checks; until then, or when it is damaged, the build loaded before serves on.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from dataclasses import replace
from pathlib import Path

from rag import antonyms, article_facts, embedding, followups, nlp, places, questions, senses
from rag.answering import AnswerSettings, answer_question, contextual_question
from rag.errors import ArticleNotFoundError, IndexDamagedError, RagError
from rag.index import IndexData, index_fingerprint, load_index
from rag.settings import Settings, get_settings
from rag.types import Article, Filters, IndexStatus, Reply, Turn

log = logging.getLogger(__name__)
WATCH_SECONDS = 1.0  # how often a server looks for a new build between requests


def _stamp(index_dir: Path) -> tuple[int, int, int] | None:
    """CURRENT's inode, time and size: replacing or rewriting it changes them (one stat, checked per request)."""
    try:
        stat = os.stat(index_dir / "CURRENT")
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class LocalBuilds:
    """The builds a Pipeline serves from an index directory: CURRENT's stamp (one stat, per request), the
    fingerprint of the build it names, and loading it. rag/milvus.py's MilvusBuilds does the same for Milvus."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = index_dir
        self.name = str(index_dir)

    def stamp(self) -> tuple | None:
        return _stamp(self.index_dir)

    def fingerprint(self) -> tuple:
        return index_fingerprint(self.index_dir)

    def load(self) -> IndexData:
        return load_index(self.index_dir)


class Pipeline:
    def __init__(self, settings: Settings | None = None, index_dir: Path | None = None,
                 answer_settings: AnswerSettings | None = None) -> None:
        self.settings = settings or get_settings()
        self.index_dir = Path(index_dir or self.settings.index_dir)
        if self.settings.milvus_uri:  # the index lives in Milvus: no local files
            from rag.milvus import Milvus, MilvusBuilds

            self.builds = MilvusBuilds(Milvus.from_settings(self.settings))
        else:
            self.builds = LocalBuilds(self.index_dir)
        self.answer_settings = answer_settings or AnswerSettings()
        if self.settings.no_answer_threshold is not None:
            self.answer_settings = replace(self.answer_settings, no_answer_threshold=self.settings.no_answer_threshold)
        self._served: IndexData | None = None
        self._problem: RagError | None = None  # why the build CURRENT names is not served (None: it is)
        self._tried: tuple | None = None  # index_fingerprint when a build was last loaded or tried
        self._stamp: tuple[int, int, int] | None = None  # CURRENT's stamp then
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._watcher: threading.Thread | None = None

    def index(self) -> IndexData:
        """The served build. CURRENT is checked on each call (one stat); when it changes, the build it names is
        loaded and served once it has loaded completely and passed its checks. A build that fails to load is logged
        once and tried again only when CURRENT or its files change; meanwhile the build loaded before serves on."""
        served = self._served
        if served is not None and self._problem is None and self.builds.stamp() == self._stamp:
            return served
        if self._lock.acquire(blocking=served is None):  # with a build to serve, never wait for another's load
            try:
                self._refresh()
            finally:
                self._lock.release()
        served, problem = self._served, self._problem
        if served is None:  # raised afresh: the same exception raised again would grow its traceback each time
            raise (problem or IndexDamagedError(self.builds.name, "not loaded")).with_traceback(None)
        return served

    def _refresh(self) -> None:
        """Load the build CURRENT names unless this state of the index directory was tried already (hold the lock)."""
        stamp, fingerprint = self.builds.stamp(), self.builds.fingerprint()
        if fingerprint == self._tried:
            self._stamp = stamp
            return
        try:
            index = self.builds.load()
        except Exception as error:  # RagError, or anything a damaged build may raise: none takes the server down
            problem = error if isinstance(error, RagError) else IndexDamagedError(self.builds.name, repr(error))
            served = self._served
            log.warning("%s%s", problem, f" (still serving build {served.directory.name})" if served else "")
            self._problem = problem
        else:
            self._served, self._problem = index, None  # the build replaced is closed when its last request ends
        self._tried, self._stamp = fingerprint, stamp

    def status(self) -> IndexStatus:
        """What is served and why the newest build is not, from memory alone: for health checks, which must not
        wait for a load or read the disk."""
        served, problem = self._served, self._problem
        reason = str(problem) if problem else None if served else "the index has not been loaded yet"
        if served is None:
            return IndexStatus(build=None, problem=reason)
        return IndexStatus(build=served.directory.name, built=served.build_time, articles=len(served.catalog),
                           chunks=len(served.chunk_table), problem=reason)

    def watch(self, seconds: float = WATCH_SECONDS) -> None:
        """Also look for a new build every `seconds` in the background, so that a server loads it (or reports it
        damaged in its status) without waiting for a request. The thread ends when the pipeline is dropped."""
        if self._watcher is not None:
            return
        pipeline_ref, closed = weakref.ref(self), self._closed

        def run() -> None:
            while not closed.is_set() and (pipeline := pipeline_ref()) is not None:
                try:
                    with pipeline._lock:
                        pipeline._refresh()
                except Exception:  # never expected (_refresh catches load errors); the watcher must not die of it
                    log.exception("looking for a new index build failed")
                del pipeline
                closed.wait(seconds)

        self._watcher = threading.Thread(target=run, name="index-watcher", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        """Stop looking for new builds (a server shutting down). A watcher still asking an in-process Milvus Lite
        while the interpreter exits makes its gRPC server print a traceback."""
        self._closed.set()

    def warm_up(self) -> None:
        """Load the models, the word tables and the index now rather than on the first request."""
        embedding.embed_query("warm up")
        nlp.parse("Who warms up?")
        antonyms.opposites()
        senses.table()
        questions.noun_classes()
        places.load()
        try:
            self.index()
        except Exception:
            pass  # no index yet: requests say so until one is built

    def ask(self, question: str, history: list[Turn] | None = None, top_k: int | None = None,
            filters: Filters | None = None) -> Reply:
        """Answer `question` (a follow-up of `history`, earliest turn first) from the index's own words, or for
        "who wrote", "which outlet" and "when was it published" questions from the article's own fields."""
        started = time.perf_counter()
        index = self.index()
        history = history or []
        resolved = followups.resolve(question, history)
        if resolved != question:
            history = []  # the question now names what it refers to; the earlier turn would count twice
        asked = article_facts.asked_field(resolved)
        search = resolved
        if asked is not None:  # the articles that report the topic, among the outlets the question names
            field, topic = asked
            search = article_facts.outlet_question(resolved, topic)
            filters = article_facts.outlet_filters(resolved, (a.source for a in index.catalog), filters)
            history = []
        query_vector = embedding.embed_query(contextual_question(search, history))
        reply = answer_question(index, search, query_vector, top_k or self.settings.top_k, history, filters,
                                self.answer_settings)
        if asked is not None:
            reply = article_facts.field_answers(reply, field)
        reply.question = question
        reply.took_ms = round((time.perf_counter() - started) * 1000, 2)
        return reply

    def articles(self) -> list[Article]:
        """Every article's metadata, for listings; their `text` is empty (`article(id)` reads it)."""
        return list(self.index().catalog)

    def article(self, article_id: str) -> Article:
        index = self.index()
        if article_id not in index.article_index:
            raise ArticleNotFoundError(article_id)
        return index.article(article_id)
