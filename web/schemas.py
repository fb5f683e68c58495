"""Request and response models of the HTTP API (the only place pydantic meets the data types)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated

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


class AnswerOut(BaseModel):
    text: str
    quote: str
    score: float = Field(ge=0, le=1)
    weak: bool
    article: ArticleMeta
    quote_start: int
    quote_end: int
    answer_start: int
    answer_end: int
    also_reported_by: list[Corroboration]


class AskResponse(BaseModel):
    question: str
    no_answer: bool
    took_ms: float
    answers: list[AnswerOut]


class Health(BaseModel):
    status: str
    articles: int
    chunks: int
    built: str | None
    message: str | None = None
