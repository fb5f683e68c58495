"""Request and response models of the HTTP API (the only place pydantic meets the data types)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from rag.types import Filters, Turn

MAX_HISTORY = 20  # earlier turns a request may carry

Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: Annotated[str, StringConstraints(max_length=2000)]
    answer: Annotated[str, StringConstraints(max_length=5000)] = ""


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50)
    since: dt.date | None = None
    until: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "FiltersIn":
        if self.since and self.until and self.since > self.until:
            raise ValueError("since must not be after until")
        return self

    def to_filters(self) -> Filters:
        return Filters(tuple(self.sources), self.since.isoformat() if self.since else None,
                       self.until.isoformat() if self.until else None)


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": "How long was the phone call between Ishiba and Lee?", "top_k": 3}]})
    question: Question
    history: list[HistoryTurn] = Field(default_factory=list, max_length=MAX_HISTORY)
    top_k: int = Field(3, ge=1, le=10)
    filters: FiltersIn | None = None

    def turns(self) -> list[Turn]:
        return [Turn(t.question, t.answer) for t in self.history]


class ArticleMeta(BaseModel):
    id: str
    title: str
    source: str
    published: str | None
    url: str | None


class ArticleFull(ArticleMeta):
    section: str | None
    byline: str | None
    text: str


class Corroboration(BaseModel):
    article: ArticleMeta
    quote: str
    quote_start: int
    quote_end: int


NOT_TEXT = "Null when `field` is not \"text\"."


class AnswerOut(BaseModel):
    text: str = Field(description="The answer: a span of `quote`, or the metadata value when `field` is not \"text\".")
    quote: str = Field(description="The article's words that hold the answer (the field's value for a metadata "
                                   "answer).")
    score: float = Field(ge=0, le=1, description="How likely the quote answers the question, from 0 to 1.")
    confidence: Literal["high", "low"] = Field(description=(
        "How sure the answer is. \"high\": its score clears the no-answer threshold, so the quote is taken to "
        "answer the question. \"low\": a possible answer only; its score falls short, the articles may not "
        "answer the question, and the quote should be checked. When `no_answer` is true every answer is \"low\"."))
    weak: bool = Field(description="Kept for compatibility: true exactly when `confidence` is \"low\".")
    field: Literal["text", "byline", "source", "published"] = Field(description=(
        "What the answer quotes. \"text\": the article's text, and `quote` is `text[quote_start:quote_end]` of "
        "`GET /articles/{id}`. \"byline\", \"source\" or \"published\": that field of the cited article (who "
        "wrote it, the outlet, the date); `quote` and `text` are its value and the offsets are null."))
    article: ArticleMeta
    quote_start: int | None = Field(description="Where `quote` starts in the article's text. " + NOT_TEXT)
    quote_end: int | None = Field(description="Where `quote` ends in the article's text. " + NOT_TEXT)
    answer_start: int | None = Field(description="Where the answer span (`text`) starts in the article's text. "
                                                 + NOT_TEXT)
    answer_end: int | None = Field(description="Where the answer span (`text`) ends in the article's text. "
                                               + NOT_TEXT)
    also_reported_by: list[Corroboration] = Field(description="Other articles that carry the same fact.")


class AskResponse(BaseModel):
    question: str
    no_answer: bool = Field(description=(
        "True when no answer clears the threshold: the articles do not seem to answer. The closest possible "
        "answers may still follow in `answers`, each with confidence \"low\"."))
    took_ms: float
    answers: list[AnswerOut]


class Health(BaseModel):
    """`GET /healthz`: the process is alive (always 200), and what it serves."""

    status: Literal["ok", "degraded", "unavailable"] = Field(description=(
        "\"ok\": the build CURRENT names is served. \"degraded\": an older build serves because the newest "
        "cannot be loaded. \"unavailable\": no build to serve. `reason` says why."))
    build: str | None = Field(description="The build served (its directory under index/builds/), if any.")
    built: str | None = Field(description="When that build was made.")
    articles: int
    chunks: int
    reason: str | None = None


class Ready(BaseModel):
    """`GET /readyz`: 200 when an index is loaded and answering, 503 when none is."""

    status: Literal["ready", "unavailable"]
    build: str | None
    reason: str | None = Field(None, description="Why no index, or not the newest build, is served.")
