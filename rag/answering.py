"""The extractive answerer: picks the sentence that answers, the shortest span in it, and whether to abstain.

Every quote and span is a pair of offsets into an article's text; nothing here writes text of its own.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from rag import lexical
from rag.index import IndexData
from rag.questions import NUMERIC, QuestionAnalysis, analyze_question, is_follow_up
from rag.retrieval import FusionSettings, retrieve
from rag.types import Answer, Article, Corroboration, Filters, Passage, Reply, Span, Turn


@dataclass(frozen=True)
class AnswerSettings:
    """Weights of the sentence score and the abstention threshold (fitted by bench/answer_quality.py)."""

    passages: int = 8  # retrieved chunks whose sentences compete for the quote
    candidates: int = 50  # per retriever, before fusion
    weight_dense: float = 0.55
    weight_overlap: float = 0.35
    weight_passage: float = 0.10
    weight_type: float = 0.05  # the sentence holds a span of the expected type
    calibration_scale: float = 12.0  # logistic slope turning the weighted sum into a score in [0, 1]
    calibration_shift: float = 0.55  # weighted sum that maps to a score of 0.5
    no_answer_threshold: float = 0.5
    same_fact_similarity: float = 0.8  # sentence cosine above which two outlets report one fact
    fusion: FusionSettings = FusionSettings()


@dataclass
class _Candidate:
    sentence_id: int
    article: Article
    start: int
    end: int
    dense: float
    overlap: float
    passage: float
    typed: bool
    span: tuple[int, int]
    score: float = 0.0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def contextual_question(question: str, history: list[Turn]) -> str:
    """The text to search with: a follow-up question carries the earlier question it refers to."""
    if history and is_follow_up(question):
        return f"{history[-1].question} {question}"
    return question


def overlap_score(index: IndexData, question_tokens: tuple[str, ...], sentence_tokens: set[str]) -> float:
    """Share of the question's words (weighted by rarity) that the sentence contains."""
    weights = [index.idf(t) for t in question_tokens]
    total = sum(weights)
    if total == 0:
        return 0.0
    return sum(w for t, w in zip(question_tokens, weights) if t in sentence_tokens) / total


_WORD = re.compile(r"\w+")
PRONOUNS = frozenset("""i me my we us our you your he him his she her it its they them their this that these those
which who whom whose what one ones something someone anything everything there here""".split())
NUMBER_LABELS = frozenset({"DATE", "TIME", "CARDINAL", "ORDINAL", "PERCENT", "MONEY", "QUANTITY"})
_JOINERS = frozenset({" and ", " or ", ", ", ", and ", ", or ", " of ", " and the ", " of the "})


def _span_words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def candidate_spans(text: str, spans: list[Span]) -> list[Span]:
    """The stored entities and noun phrases, plus noun phrases joined by "and", "or", "," or "of"
    ("increased settlement and deforestation"), which spaCy's base noun chunks split apart."""
    phrases = sorted((s for s in spans if s.label == "NP"), key=lambda s: s.start)
    joined = []
    for i, first in enumerate(phrases):
        end = first.end
        for nxt in phrases[i + 1:i + 6]:
            if text[end:nxt.start] not in _JOINERS:
                break
            end = nxt.end
            joined.append(Span(first.start, end, "NP"))
    return spans + joined


def pick_span(text: str, quote_start: int, quote_end: int, spans: list[Span], question: QuestionAnalysis
              ) -> tuple[tuple[int, int], bool]:
    """The shortest span inside the quote that answers: of the expected type, new to the question,
    next to the words the quote shares with the question. Returns the span and whether it was typed."""
    quote = text[quote_start:quote_end]
    anchors = [(m.start() + quote_start, m.end() + quote_start) for m in _WORD.finditer(quote)
               if m.group().lower() in question.words and m.group().lower() not in PRONOUNS and len(m.group()) > 2]
    best, best_score, best_typed = (quote_start, quote_end), -math.inf, False
    for span in candidate_spans(text, spans):
        if span.start < quote_start or span.end > quote_end:
            continue
        words = _span_words(text[span.start:span.end])
        new_words = [w for w in words if w not in question.words and w not in PRONOUNS]
        if not new_words:
            continue
        typed = span.label in question.expected
        if question.expected and not typed and span.label != "NP":
            continue
        if not question.expected and span.label in NUMBER_LABELS:
            continue
        after = min((span.start - e for _, e in anchors if e <= span.start), default=None)
        before = min((s - span.end for s, _ in anchors if s >= span.end), default=None)
        gaps = [g for g in (after, None if before is None else 1.5 * before) if g is not None]
        distance = min(gaps, default=len(quote))
        score = (
            (2.0 - 0.1 * question.expected.index(span.label) if typed else 0.0)
            + 1.0 / (1.0 + distance / 25)
            + len(new_words) / len(words)
            - 0.04 * len(words)
        )
        if score > best_score:
            best, best_score, best_typed = (span.start, span.end), score, typed
    return best, best_typed


def _normalise_fact(text: str) -> str:
    """A loose key for comparing answer spans: digits and word stems, no hyphens or articles."""
    words = [w.rstrip("s") for w in _span_words(text) if w not in {"a", "an", "the", "about", "some", "around"}]
    return " ".join(words)


def _candidates(index: IndexData, passages: list[Passage], question: QuestionAnalysis, query_vector: np.ndarray,
                settings: AnswerSettings) -> list[_Candidate]:
    passage_score: dict[int, float] = {}
    for p in passages:
        for sid in p.chunk.sentence_ids:
            passage_score[sid] = max(passage_score.get(sid, 0.0), p.score)
    ids = sorted(passage_score)
    if not ids:
        return []
    dense = np.asarray(index.sentence_vectors[ids]) @ query_vector
    texts = [index.sentence(sid) for sid in ids]
    tokens = lexical.tokenize([s.text for s in texts])
    candidates = []
    for sid, sentence, cosine, sentence_tokens in zip(ids, texts, dense, tokens):
        article = index.sentence_article(sid)
        span, typed = pick_span(article.text, sentence.start, sentence.end, index.spans(sid), question)
        candidates.append(_Candidate(
            sid, article, sentence.start, sentence.end, float(cosine),
            overlap_score(index, question.tokens, set(sentence_tokens)), passage_score[sid], typed, span))
    for c in candidates:
        raw = (settings.weight_dense * c.dense + settings.weight_overlap * c.overlap
               + settings.weight_passage * c.passage + settings.weight_type * c.typed)
        c.score = _sigmoid(settings.calibration_scale * (raw - settings.calibration_shift))
    return sorted(candidates, key=lambda c: (-c.score, c.sentence_id))


def _same_fact(a: _Candidate, b: _Candidate, index: IndexData, settings: AnswerSettings) -> bool:
    """Two sentences from different articles that report one fact: near-identical meaning, or the same answer."""
    if a.article.id == b.article.id:
        return False
    a_text = a.article.text[a.span[0]:a.span[1]]
    b_text = b.article.text[b.span[0]:b.span[1]]
    similarity = float(np.dot(index.sentence_vectors[a.sentence_id], index.sentence_vectors[b.sentence_id]))
    same_answer = (a.typed and b.typed and _normalise_fact(a_text) == _normalise_fact(b_text))
    return similarity >= settings.same_fact_similarity or (same_answer and similarity >= 0.5)


def _to_answer(c: _Candidate, weak: bool, corroborations: list[_Candidate]) -> Answer:
    text = c.article.text
    return Answer(
        text=text[c.span[0]:c.span[1]], quote=text[c.start:c.end], score=round(c.score, 4), article=c.article,
        quote_start=c.start, quote_end=c.end, answer_start=c.span[0], answer_end=c.span[1], weak=weak,
        also_reported_by=tuple(Corroboration(o.article, o.article.text[o.start:o.end], o.start, o.end)
                               for o in corroborations),
    )


def answer_question(index: IndexData, question: str, query_vector: np.ndarray, top_k: int = 3,
                    history: list[Turn] | None = None, filters: Filters | None = None,
                    settings: AnswerSettings = AnswerSettings()) -> Reply:
    """Answer from the index's own words; `query_vector` embeds `contextual_question(question, history)`."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    search_text = contextual_question(question, history or [])
    analysis = analyze_question(question)
    if search_text != question:
        analysis = replace(analysis, tokens=tuple(dict.fromkeys(analyze_question(search_text).tokens)))
    passages = retrieve(index, search_text, query_vector, settings.passages, filters, settings.candidates,
                        settings.fusion)
    candidates = _candidates(index, passages, analysis, query_vector, settings)
    groups: list[tuple[_Candidate, list[_Candidate]]] = []
    for c in candidates:
        leader = next((g for g in groups if _same_fact(g[0], c, index, settings)), None)
        if leader is not None:
            if all(o.article.id != c.article.id for o in leader[1]):
                leader[1].append(c)
        elif len(groups) < top_k:
            groups.append((c, []))
    no_answer = not groups or groups[0][0].score < settings.no_answer_threshold
    answers = [_to_answer(leader, no_answer or leader.score < settings.no_answer_threshold, others)
               for leader, others in groups]
    return Reply(question=question, no_answer=no_answer, answers=answers)
