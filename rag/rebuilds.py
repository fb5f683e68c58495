"""Incremental index builds in the background, for articles added through the API (POST /articles).

One build runs at a time, in one thread. A request while none is queued queues one; a request while one is queued
(not yet started) shares it, because a build reads the corpus as it is when it starts. So an article written before
its request is in the build that request's ticket names, and a burst of additions costs two builds at most: the one
running and the one queued behind it. A ticket goes queued -> running -> done, once the pipeline serves that build
(or a newer one), so its articles are answerable; or failed, with the reason. The corpus keeps what was written
either way, and the next build (of any kind) indexes it.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from rag.errors import IndexBusyError, RagError
from rag.index import BuildReport, build_index
from rag.pipeline import Pipeline
from rag.settings import Settings

log = logging.getLogger(__name__)
BUSY_RETRY_SECONDS = 2.0  # another build (rag index, rag watch) holds the index: try again after this long
SERVE_TIMEOUT_SECONDS = 60.0  # how long a written build may take to be loaded by the pipeline
KEEP_TICKETS = 100  # finished tickets remembered for GET /rebuilds/{number}

State = Literal["queued", "running", "done", "failed"]


def index_store(settings: Settings) -> object | None:
    """Where a build goes: Milvus when RAG_MILVUS_URI is set (rag/milvus.py), else None, the build directories of
    the index directory (build_index's default)."""
    if not settings.milvus_uri:
        return None
    from rag.milvus import Milvus, MilvusStore

    return MilvusStore(Milvus.from_settings(settings))


def index_location(settings: Settings, index_dir: Path | None = None) -> str:
    """Where builds go, as messages name it: "Milvus at URI", or the index directory."""
    return f"Milvus at {settings.milvus_uri}" if settings.milvus_uri else str(index_dir or settings.index_dir)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class Rebuild:
    """One queued build and what became of it."""

    number: int
    state: State
    requested: str
    started: str | None = None
    finished: str | None = None
    summary: str | None = None  # "1 added, 0 changed, 0 removed, 5 unchanged"
    build: str | None = None  # the build served once it was done
    skipped: list[str] = field(default_factory=list)  # corpus files the build skipped: "path: reason"
    error: str | None = None


class Rebuilder:
    """Queues incremental builds of `pipeline`'s index from `corpus_dir` and runs them in a background thread."""

    def __init__(self, corpus_dir: Path, pipeline: Pipeline, *, busy_retry_s: float = BUSY_RETRY_SECONDS,
                 serve_timeout_s: float = SERVE_TIMEOUT_SECONDS) -> None:
        if busy_retry_s <= 0 or serve_timeout_s <= 0:
            raise ValueError(f"busy_retry_s and serve_timeout_s must be > 0, got {busy_retry_s}, {serve_timeout_s}")
        self.corpus_dir = Path(corpus_dir)
        self.pipeline = pipeline
        self.busy_retry_s = busy_retry_s
        self.serve_timeout_s = serve_timeout_s
        self._tickets: OrderedDict[int, Rebuild] = OrderedDict()
        self._queued: Rebuild | None = None
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def request(self) -> Rebuild:
        """A build that will read the corpus as it is now: the one queued, or a new one. Returns a copy of its
        ticket."""
        with self._changed:
            if self._closing.is_set():
                raise RuntimeError("the server is stopping: no more builds are started")
            if self._queued is None:
                number = (next(reversed(self._tickets)) + 1) if self._tickets else 1
                self._queued = self._tickets[number] = Rebuild(number, "queued", _now())
                self._forget_old()
                self._changed.notify_all()
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="index-rebuilder", daemon=True)
                self._thread.start()
            return replace(self._queued)

    def get(self, number: int) -> Rebuild | None:
        """A copy of ticket `number`, or None when there is no such ticket (or it was forgotten)."""
        with self._changed:
            ticket = self._tickets.get(number)
            return replace(ticket) if ticket else None

    def wait(self, number: int, timeout: float) -> Rebuild | None:
        """Ticket `number` once it is done or failed, or as it is after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while (ticket := self._tickets.get(number)) is not None and ticket.state in ("queued", "running"):
                if not self._changed.wait(max(0.0, deadline - time.monotonic())):
                    break
            return replace(ticket) if ticket else None

    def close(self, timeout: float | None = None) -> None:
        """Start no more builds: a queued one fails with the reason, a running one is waited for (up to `timeout`
        seconds) so that it finishes its switch rather than being cut off by the process's exit."""
        with self._changed:
            self._closing.set()
            if self._queued is not None:
                self._finish(self._queued, "failed", error="the server stopped before this build started; the "
                                                           "articles are in the corpus for the next build")
                self._queued = None
            self._changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("the index build in progress did not finish within %s s of shutdown", timeout)

    def _forget_old(self) -> None:
        while len(self._tickets) > KEEP_TICKETS:
            oldest = next(iter(self._tickets))
            if self._tickets[oldest].state in ("queued", "running"):
                break
            del self._tickets[oldest]

    def _finish(self, ticket: Rebuild, state: State, **outcome: object) -> None:
        for name, value in outcome.items():
            setattr(ticket, name, value)
        ticket.state, ticket.finished = state, _now()

    def _work(self) -> None:
        while True:
            with self._changed:
                while self._queued is None and not self._closing.is_set():
                    self._changed.wait()
                if self._closing.is_set():
                    return
                ticket, self._queued = self._queued, None
                ticket.state, ticket.started = "running", _now()
                self._changed.notify_all()
            try:
                report = self._build()
                served = self._served(report)
            except Exception as error:  # noqa: BLE001 - said in the ticket; the thread serves the next one
                log.warning("index build %d failed: %s", ticket.number, error)
                outcome = {"state": "failed", "error": str(error) or type(error).__name__}
            else:
                outcome = {"state": "done", "summary": report.summary(), "build": served,
                           "skipped": report.skipped()}
            with self._changed:
                self._finish(ticket, **outcome)  # type: ignore[arg-type]
                self._changed.notify_all()

    def _build(self) -> BuildReport:
        """An incremental build; while another process builds the index, wait for it and try again."""
        while True:
            try:
                return build_index(self.corpus_dir, self.pipeline.index_dir, self.pipeline.settings, progress=False,
                                   store=index_store(self.pipeline.settings))
            except IndexBusyError:
                if self._closing.wait(self.busy_retry_s):
                    raise RuntimeError("the server stopped while another build held the index") from None

    def _served(self, report: BuildReport) -> str:
        """The build the pipeline serves once it serves this report's build (or a newer one)."""
        deadline = time.monotonic() + self.serve_timeout_s
        while True:
            try:
                served = self.pipeline.index().directory.name
            except RagError:
                served = None
            if served is not None and (not report.build or served >= report.build):  # names sort by build time
                return served
            if time.monotonic() > deadline:
                problem = self.pipeline.status().problem
                raise RuntimeError(f"build {report.build} was written but is not served"
                                   + (f": {problem}" if problem else f" after {self.serve_timeout_s:g} s"))
            time.sleep(0.05)
