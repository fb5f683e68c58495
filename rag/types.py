"""Plain data types shared by every layer: ingest, index, retrieval, answering, web and CLI."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Article:
    """One news article. Every offset in the system indexes into `text`."""

    id: str
    title: str
    source: str
    text: str
    published: str | None = None  # YYYY-MM-DD
    section: str | None = None
    byline: str | None = None
    url: str | None = None
    path: str | None = None  # file it came from, relative to the corpus
    # The earliest article of the corpus this one is a near-duplicate of (the same wire copy with small edits),
    # found when the index is built (rag/dedup.py); None when it has none.
    duplicate_of: str | None = None

    def meta(self) -> dict:
        """Citation fields: everything but the text."""
        return {
            "id": self.id,
            "title": self.title,
            "source": self.source,
            "published": self.published,
            "url": self.url,
            "duplicate_of": self.duplicate_of,
        }


@dataclass(frozen=True)
class Span:
    """A labelled character span inside an article (an entity or noun phrase), with its syntactic role:
    the dependency label of its root word and the offsets of the word it depends on."""

    start: int
    end: int
    label: str
    dep: str = ""
    head_start: int = -1
    head_end: int = -1


@dataclass(frozen=True)
class Sentence:
    """A sentence with its offsets: `article.text[start:end] == text`."""

    article_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Chunk:
    """A run of whole sentences: `article.text[start:end] == text`."""

    article_id: str
    start: int
    end: int
    text: str
    sentence_ids: tuple[int, ...] = ()  # rows in the index's sentence table


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its fused retrieval score (higher is better)."""

    chunk_id: int
    chunk: Chunk
    score: float
    dense_score: float = 0.0
    lexical_score: float = 0.0


@dataclass(frozen=True)
class Filters:
    """Restricts retrieval before ranking."""

    sources: tuple[str, ...] = ()
    since: str | None = None  # YYYY-MM-DD, inclusive
    until: str | None = None  # YYYY-MM-DD, inclusive

    def admits(self, article: Article) -> bool:
        if self.sources and article.source.casefold() not in {s.casefold() for s in self.sources}:
            return False
        if self.since and (article.published is None or article.published < self.since):
            return False
        if self.until and (article.published is None or article.published > self.until):
            return False
        return True


@dataclass(frozen=True)
class Corroboration:
    """The same fact in another article."""

    article: Article
    quote: str
    quote_start: int
    quote_end: int


CONFIDENCE_LEVELS = ("high", "low")
ARTICLE_FIELDS = ("byline", "source", "published")  # metadata an answer may quote instead of the text


@dataclass(frozen=True)
class Answer:
    """An extractive answer. From the text (`field == "text"`): `quote` and `text` are slices of
    `article.text` at the offsets. From a metadata field ("byline", "source", "published"): both are that
    field's value, and the offsets are None."""

    text: str
    quote: str
    score: float
    article: Article
    quote_start: int | None
    quote_end: int | None
    answer_start: int | None
    answer_end: int | None
    weak: bool = False  # the score falls short of the threshold: a possible answer, not a confident one
    also_reported_by: tuple[Corroboration, ...] = ()  # other outlets' own reports of the same fact
    field: str = "text"
    # Other outlets carrying the same report: near-duplicates (one wire copy) of the answer's article or of an
    # article in `also_reported_by`, which are not independent confirmation.
    carried_by: tuple[Corroboration, ...] = ()

    @property
    def confidence(self) -> str:
        """"high" when the score clears the no-answer threshold, "low" when it falls short."""
        return "low" if self.weak else "high"


@dataclass(frozen=True)
class Turn:
    """An earlier question and answer of the conversation."""

    question: str
    answer: str = ""


@dataclass
class Reply:
    """What the system says to one question."""

    question: str
    no_answer: bool
    answers: list[Answer] = field(default_factory=list)
    took_ms: float = 0.0


@dataclass(frozen=True)
class IndexStatus:
    """What a pipeline serves, as health checks report it: the build loaded (None until one loads) and, when the
    build CURRENT names is not the one served, why."""

    build: str | None
    built: str | None = None
    articles: int = 0
    chunks: int = 0
    problem: str | None = None

    @property
    def state(self) -> str:
        """"ok"; "degraded" when an older build serves because the newest cannot; "unavailable" with none to serve."""
        return "unavailable" if self.build is None else "degraded" if self.problem else "ok"
