"""The whole question-answering system behind one object, shared by the CLI and the web app.

It serves the current index build and switches to a newer one when `rag index` replaces it, without
failing the requests in flight: each request keeps the `IndexData` it started with.
"""
from __future__ import annotations

import threading
from dataclasses import replace
import time
from pathlib import Path

from rag import antonyms, article_facts, embedding, followups, nlp, places, questions, senses
from rag.answering import AnswerSettings, answer_question, contextual_question
from rag.errors import ArticleNotFoundError
from rag.index import IndexData, current_build, load_index
from rag.settings import Settings, get_settings
from rag.types import Article, Filters, Reply, Turn


class Pipeline:
    def __init__(self, settings: Settings | None = None, index_dir: Path | None = None,
                 answer_settings: AnswerSettings | None = None) -> None:
        self.settings = settings or get_settings()
        self.index_dir = Path(index_dir or self.settings.index_dir)
        self.answer_settings = answer_settings or AnswerSettings()
        if self.settings.no_answer_threshold is not None:
            self.answer_settings = replace(self.answer_settings, no_answer_threshold=self.settings.no_answer_threshold)
        self._index: IndexData | None = None
        self._lock = threading.Lock()

    def index(self) -> IndexData:
        """The served build, reloaded when CURRENT names a newer one (a small file read per call)."""
        build = current_build(self.index_dir)
        loaded = self._index
        if loaded is not None and build == loaded.directory:
            return loaded
        with self._lock:
            if self._index is None or current_build(self.index_dir) != self._index.directory:
                self._index = load_index(self.index_dir)
            return self._index

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
