"""Request and response models of the HTTP API (the only place pydantic meets the data types)."""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, StringConstraints,
                      field_validator, model_validator)
from pydantic_core import PydanticCustomError

from rag.types import Filters, Turn

MAX_HISTORY = 20  # earlier turns a request may carry
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INTEGER = re.compile(r"-?[0-9]+")
_WEB_ADDRESS = re.compile(r"https?://", re.I)


def _date_only(value: object) -> object:
    """A date is "YYYY-MM-DD" and nothing else (pydantic alone also takes 0, timestamps and midnight datetimes)."""
    if isinstance(value, str) and _ISO_DATE.fullmatch(value) or type(value) is dt.date:
        return value
    raise PydanticCustomError("date_format", "Input should be a date in the format YYYY-MM-DD")


def _digits_only(value: object) -> object:
    """A number in a query string is digits, after a minus at most (int() alone also takes "0.0", "1_000", "+5")."""
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise PydanticCustomError("int_digits", "Input should be a whole number written in digits")
    return value


def web_address(url: str | None) -> str | None:
    """The URL if it is a web address (http or https); anything else (`javascript:`...) is never handed on."""
    return url if url and _WEB_ADDRESS.match(url) else None


def _stripped(value: str) -> str:
    if not value.strip():  # Python's whitespace is wider than the pattern's (U+001C to U+001F)
        raise PydanticCustomError("string_blank", "String should not be blank")
    return value.strip()


def text(max_length: int) -> object:
    """Non-blank text of at most `max_length` characters as sent (so the schema says it truly), then stripped."""
    return Annotated[str, StringConstraints(min_length=1, max_length=max_length, pattern=r"\S"),
                     AfterValidator(_stripped)]


Question = text(500)
Source = text(200)
DateOnly = Annotated[dt.date, BeforeValidator(_date_only)]
Offset = Annotated[int, Field(ge=0), BeforeValidator(_digits_only)]  # the bound first, or the schema loses it


class HistoryTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    question: Annotated[str, StringConstraints(max_length=2000)]
    answer: Annotated[str, StringConstraints(max_length=5000)] = ""


class FiltersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sources: list[Source] = Field(default_factory=list, max_length=50)
    since: DateOnly | None = None
    until: DateOnly | None = None

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
    top_k: StrictInt = Field(3, ge=1, le=10)
    filters: FiltersIn | None = None

    def turns(self) -> list[Turn]:
        return [Turn(t.question, t.answer) for t in self.history]


class ArticleMeta(BaseModel):
    id: str
    title: str
    source: str
    published: str | None
    url: str | None = Field(description="The article's web address (http or https); null when it has none.")
    duplicate_of: str | None = Field(description=(
        "The id of the earliest article this one is a near-duplicate of: the same story (a wire copy) with small "
        "edits, as another outlet carries it. Null when it is nobody's copy."))

    @field_validator("url", mode="before")
    @classmethod
    def _only_web_addresses(cls, url: str | None) -> str | None:
        return web_address(url)


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
    also_reported_by: list[Corroboration] = Field(description=(
        "Other outlets' own reports of the same fact: independent confirmation. One article per outlet; a "
        "second article of the answer's outlet, or of one listed, is not counted."))
    carried_by: list[Corroboration] = Field(description=(
        "Other outlets carrying the same report: near-duplicates (one wire copy with small edits, see "
        "`duplicate_of`) of the answer's article or of an article in `also_reported_by`. They repeat a report, "
        "so they do not confirm it independently."))


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


class FieldError(BaseModel):
    field: str = Field(description="Where in the request: a dotted path (`question`, `filters.since`, "
                                   "`history.0.question`, `start`) or `body` for the body as a whole.")
    message: str


class InvalidRequest(BaseModel):
    """A request refused before it was answered: what is wrong, field by field."""

    detail: str = Field(description="Every error on one line: `field: message; field: message`.")
    errors: list[FieldError]


class ErrorMessage(BaseModel):
    """An error about the request as a whole: no such article, no index to answer from."""

    detail: str


# Adding articles (POST /articles) and following the rebuild that makes them answerable (GET /rebuilds/{number}).
WebAddress = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://\S")]
RebuildNumber = Annotated[int, Field(ge=1), BeforeValidator(_digits_only)]
Title = text(500)
Byline = text(500)
Section = text(200)
ArticleText = Annotated[str, StringConstraints(min_length=1, pattern=r"\S")]


class ArticleIn(BaseModel):
    """One article as JSON, with the fields of an article file (Markdown front matter) and its text."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": "Harbour town opens a glass footbridge", "source": "Coastal Courier", "published": "2025-06-12",
        "byline": "Ada Lind", "url": "https://courier.example/news/glass-footbridge",
        "text": "The town of Marrowby opened a glass footbridge across its harbour on Thursday."}]})
    title: Title
    source: Source | None = Field(None, description="The outlet; \"Unknown\" when left out.")
    published: DateOnly | None = Field(None, description="YYYY-MM-DD.")
    byline: Byline | None = None
    section: Section | None = None
    url: WebAddress | None = Field(None, description="The article's own http(s) address. An article whose URL is "
                                                     "already in the corpus replaces that one, keeping its id.")
    text: ArticleText = Field(description="The article's text; paragraphs separated by blank lines.")

    def fields(self) -> dict:
        """The article as a dict of the usual fields, for rag.corpus_writer.save_articles."""
        values = self.model_dump()
        values["published"] = self.published.isoformat() if self.published else None
        return values


class AddedArticle(BaseModel):
    id: str = Field(description="The article's id: `GET /articles/{id}` serves it once the rebuild is done.")
    change: Literal["added", "updated", "unchanged"] = Field(description=(
        "\"added\": a new article. \"updated\": a newer version of an article with the same URL, which keeps its "
        "id. \"unchanged\": the corpus holds it already, as sent."))
    article_url: str = Field(description="Where the article is served: `/articles/{id}`.")


class SkippedItem(BaseModel):
    item: str = Field(description="What was skipped: the upload, a feed entry, or an article's URL or title.")
    reason: str


class RebuildStatus(BaseModel):
    """An incremental rebuild of the index, started by POST /articles."""

    number: int
    state: Literal["queued", "running", "done", "failed"] = Field(description=(
        "\"queued\": waits for the build before it. \"running\": building. \"done\": the server serves the build, "
        "so every article added before this rebuild was requested is answerable. \"failed\": see `error`; the "
        "articles stay in the corpus for the next build."))
    requested: str
    started: str | None
    finished: str | None
    summary: str | None = Field(description="What the build did: \"1 added, 0 changed, 0 removed, 5 unchanged\".")
    build: str | None = Field(description="The build served once done.")
    skipped: list[str] = Field(description="Corpus files the build skipped, each with the reason.")
    error: str | None
    status_url: str = Field(description="Where to follow it: `/rebuilds/{number}`.")


class ArticlesAdded(BaseModel):
    """What POST /articles wrote into the corpus and skipped, and the rebuild that makes it answerable."""

    detail: str = Field(description="All of it on one line.")
    added: list[AddedArticle]
    skipped: list[SkippedItem]
    rebuild: RebuildStatus = Field(description="The rebuild that makes the articles answerable.")


class NothingAdded(BaseModel):
    """POST /articles when nothing sent could be added: why, item by item; no rebuild was queued."""

    detail: str = Field(description="All of it on one line.")
    skipped: list[SkippedItem]
