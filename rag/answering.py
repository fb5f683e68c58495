"""The extractive answerer: picks the sentence that answers, the shortest span in it, and whether to abstain.

Every quote and span is a pair of offsets into an article's text; nothing here writes text of its own.
Three small linear models do the judging, fitted on SQuAD v2 paragraphs that XQuAD does not contain
(bench/fit_answerer.py): one ranks the sentences, one the candidate spans inside a quote, and one turns the
evidence for the best quote into a score in [0, 1] that is compared with the abstention threshold. That last
one also learns from SQuAD v2's answerable questions asked of the corpus without their paragraph, the kind
of unanswerable question a news reader asks most (something the articles do not report).
"""
from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from rag import antonyms, lexical, nlp, places, senses
from rag.index import IndexData
from rag.questions import (DURATION, OUTLET, ROLES, TEMPORAL, QuestionAnalysis, analyze_question, is_follow_up,
                           without_outlet)
from rag.retrieval import FusionSettings, retrieve
from rag.types import Answer, Article, Corroboration, Filters, Passage, Reply, Span, Turn

_WORD = re.compile(r"\w+")
PRONOUNS = frozenset("""i me my we us our you your he him his she her it its they them their this that these those
which who whom whose what one ones something someone anything everything there here""".split())
NUMBER_LABELS = frozenset({"DATE", "TIME", "CARDINAL", "ORDINAL", "PERCENT", "MONEY", "QUANTITY"})
_WH = frozenset({"what", "which", "who", "whom", "whose", "when", "where", "why", "how"})
PREPOSITIONS = frozenset("by in at on from as to for with into than of about".split())
DEMONSTRATIVES = frozenset({"this", "these", "that", "those"})
ARTICLES = frozenset({"a", "an", "the"})
_JOINERS = frozenset({" and ", " or ", ", ", ", and ", ", or ", " of ", " and the ", " of the "})

SPAN_FEATURES = (
    "typed", "typed_first", "np_untyped", "entity_untyped", "number_untyped", "np_fallback",
    "after_anchor", "before_anchor", "between_anchors", "adjacent_after", "novelty", "log_words", "long",
    "has_head_noun", "after_preposition", "position", "joined", "partly_question", "window_left", "window_right",
    "head_in_question", "subject", "object", "prep_object", "appositive", "adjective",
    "prep_phrase", "adverbial", "clause", "manner_fit", "reason_fit", "action_fit",
    "same_slot", "same_role", "same_governor",
)
# rag.nlp's phrase candidates: these three only compete when a question asks how, why or what...do.
PHRASE_KINDS = (nlp.PREPOSITIONAL, nlp.ADVERBIAL, nlp.CLAUSE)
NOT_ENTITIES = frozenset({"NP", nlp.ADJECTIVE, *PHRASE_KINDS})
_AT = {name: i for i, name in enumerate(SPAN_FEATURES)}
SUBJECT_DEPS = frozenset(dep for dep, role in ROLES.items() if role == "subject")
OBJECT_DEPS = frozenset(dep for dep, role in ROLES.items() if role == "object") | {"acomp"}
WINDOW_WORDS = 6
EVIDENCE_FEATURES = (
    "dense", "overlap", "passage", "missing_rarest", "missing_in_passage", "typed", "expects_type",
    "span_score", "margin", "bigrams", "negation_missing", "name_missing", "number_missing",
    "name_missing_sentence", "number_missing_sentence", "missing_share", "question_words", "runner_up_overlap",
    "span_context", "span_in_slot", "turned_around", "paraphrased", "dense_excess",
)
# A close sentence says more than a linear weight on the cosine allows: the evidence model also reads how far
# the cosine exceeds its median over SQuAD v2's questions and their best sentences (0.64; a statistic of
# the cosines alone, not of the labels). Abstention AUC leave-one-article-out 0.699 -> 0.702.
DENSE_KNOT = 0.64
RANK_FEATURES = (
    "dense", "overlap", "passage", "typed", "span_score", "bigrams", "missing_rarest", "name_missing",
    "number_missing", "negation_missing", "sentence_words",
)
# What makes a DATE or TIME entity a duration ("25-minute", "three years"; not "Monday").
_DURATION_UNIT = re.compile(r"(?<![a-z])(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centur(?:y|ies)"
                            r"|nights?)\b", re.I)
# A span of time and nothing else ("six years", "a decade", "25-minute"): no answer to "when".
_TIME_SPAN = re.compile(r"(?:(?:about|around|nearly|almost|over|some|more than|less than|another)\s+)?"
                        r"(?:[\d.,]+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                        r"several|few|many)[\s-]+" + _DURATION_UNIT.pattern + r"(?:-long)?", re.I)
_YEAR = re.compile(r"\d{3,4}s?")
NEGATIONS = frozenset({"not", "never", "no", "nor", "without", "t", "cannot", "unable", "impossible", "neither", "none",
                       "fail", "fails", "failed"})
# A capitalised word not at the start of a sentence, acronyms and inner capitals too ("NP", "BSkyB").
_NAME = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][A-Za-z0-9]*")
_NAME_RUN = re.compile(r"\b(?!(?:The|A|An)\b)[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+")
# A number as written, with its scale: "8.7" is not "8" and "7", "$20 million" is not "$20 billion".
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*(?:\s+(?:hundred|thousand|million|billion|trillion)\b)?", re.I)


@dataclass(frozen=True)
class AnswerSettings:
    """Weights of the answerer; the fitted ones come from bench/fit_answerer.py."""

    passages: int = 8  # retrieved chunks whose sentences compete for the quote
    candidates: int = 200  # per retriever, before fusion (bench/retrieval.py: best mean nDCG@10 of the sweep)
    span_sentences: int = 8  # sentences whose answer span is picked (XQuAD: as good as all ~26, 3x faster)
    rank_weights: tuple[float, ...] = (
        3.092, 2.575, 2.408, 1.019, 0.988, 2.445, -0.965, -1.001, -0.324, -0.272, 0.012)
    span_weights: tuple[float, ...] = (
        0.0, 0.494, 0.109, 0.437, -0.092, -0.095, 0.586, 0.84, -0.159, -0.261, 0.239, 0.713, -0.593, 1.151,
        0.122, 0.304, -1.23, -0.101, 1.129, 0.874, 0.534, 0.472, 0.198, 0.198, 0.171, 0.09, -0.521, 0.073,
        -0.125, 0.186, 0.129, -0.085, 0.192, 0.439, 0.391)
    # Two models read the same evidence, and the score is the lower of their probabilities: "support"
    # (evidence_*), fitted on SQuAD v2's own questions, tells what the sentence says from what the question
    # twists (its unanswerable questions are written against the paragraph); "relevance" (relevance_*),
    # fitted on the answerable questions against the same questions asked without their paragraph, tells
    # whether the articles report the matter at all. One model fitted on both kinds did worse on each.
    # Support may not count a question's fit to its sentence against it (bench/fit_answerer.py FIT_CLUES).
    evidence_weights: tuple[float, ...] = (
        1.763, -0.591, 0.723, -0.76, 0.171, -0.26, 0.269, 0.088, 0.0, 0.0, -2.839, -0.216, -2.987, -0.658,
        -0.867, 0.591, 0.765, -0.025, -0.04, 0.0, -1.805, 0.559, 2.253)
    evidence_bias: float = -2.882
    relevance_weights: tuple[float, ...] = (
        2.879, 1.263, 1.885, 0.475, -0.439, -0.109, 0.045, 0.019, 0.401, 1.25, -0.144, -0.488, -3.053, -0.502,
        0.755, -1.263, 0.111, 0.43, -0.717, 0.391, -0.169, 0.107, 7.042)
    relevance_bias: float = -4.405
    no_answer_threshold: float = 0.427
    same_fact_similarity: float = 0.8  # sentence cosine above which two outlets report one fact
    fusion: FusionSettings = field(default_factory=FusionSettings)

    def __post_init__(self) -> None:
        for name, features in (("rank_weights", RANK_FEATURES), ("span_weights", SPAN_FEATURES),
                               ("evidence_weights", EVIDENCE_FEATURES),
                               ("relevance_weights", EVIDENCE_FEATURES)):
            if len(getattr(self, name)) != len(features):
                raise ValueError(f"{name} needs {len(features)} weights ({', '.join(features)}), "
                                 f"got {len(getattr(self, name))}")


@dataclass
class Candidate:
    """A sentence that may answer, with the evidence for it; exposed for the fitting script."""

    sentence_id: int
    article: Article
    start: int
    end: int
    span: tuple[int, int]
    span_score: float
    typed: bool
    evidence: dict[str, float]
    rank: float = 0.0
    score: float = 0.0


def contextual_question(question: str, history: list[Turn]) -> str:
    """The text to search with: a follow-up question carries the earlier turn it refers to (its question and
    answer, which names whom "he" or "it" means); a question about who reported a fact searches for the fact."""
    question = without_outlet(question)
    if history and is_follow_up(question):
        return " ".join(part for part in (history[-1].question, history[-1].answer, question) if part)
    return question


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _numbers(text: str) -> set[str]:
    return {" ".join(m.group().lower().replace(",", "").split()) for m in _NUMBER.finditer(text)}


def text_terms(text: str) -> set[str]:
    """A text's lower-cased words, its numbers as written and the initials of its names of several words
    ("European Union" is also "eu"; of any run of capitalised words, as a sentence's first word may join
    one), for the missing-name and missing-number checks."""
    initials = set()
    for run in _NAME_RUN.findall(text):
        letters = "".join(w[0] for w in run.split()).lower()
        initials.update(letters[i:j] for i in range(len(letters)) for j in range(i + 2, len(letters) + 1))
    return set(_words(text)) | _numbers(text) | initials


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
            joined.append(Span(first.start, end, "NP+", first.dep, first.head_start, first.head_end))
    return spans + joined


@dataclass(frozen=True)
class QuoteContext:
    """A quote's words with their offsets, and where the question's words fall in it (computed once per quote)."""

    text: str
    starts: list[int]
    ends: list[int]
    words: list[str]
    anchors: list[int]  # word positions of question words
    question: QuestionAnalysis
    content: frozenset[str]

    @classmethod
    def of(cls, text: str, quote_start: int, quote_end: int, question: QuestionAnalysis) -> "QuoteContext":
        matches = list(_WORD.finditer(text, quote_start, quote_end))
        words = [m.group().lower() for m in matches]
        anchors = [i for i, w in enumerate(words) if w in question.words and w not in PRONOUNS and len(w) > 2]
        content = frozenset(w for w in question.words if w not in PRONOUNS and w not in _WH and len(w) > 2)
        return cls(text, [m.start() for m in matches], [m.end() for m in matches], words, anchors, question,
                   content or frozenset({""}))


def _has_type(expected: tuple[str, ...], label: str, text: str, start: int, end: int) -> bool:
    """Whether a span is of the type a question expects: a duration needs its unit ("25-minute"), and a
    bare span of time ("six years") does not say when (pure)."""
    if label not in expected:
        return False
    if expected == DURATION:
        return bool(_DURATION_UNIT.search(text, start, end))
    return expected != TEMPORAL or not _TIME_SPAN.fullmatch(text, start, end)


def span_features(quote: QuoteContext, quote_start: int, quote_end: int, span: Span) -> np.ndarray | None:
    """Features of one candidate answer span, or None when it cannot be the answer (pure)."""
    if span.start < quote_start or span.end > quote_end:
        return None
    first = bisect.bisect_left(quote.starts, span.start)
    last = bisect.bisect_right(quote.ends, span.end)  # words first..last-1 lie inside the span
    words = quote.words[first:last]
    question = quote.question
    # An article is not news: "the economy" only repeats "what kind of economy".
    new_words = [w for w in words if w not in question.words and w not in PRONOUNS and w not in ARTICLES]
    if not new_words:
        return None
    if span.label in PHRASE_KINDS and not question.form:
        return None
    label = "NP" if span.label == "NP+" else span.label
    typed = _has_type(question.expected, label, quote.text, span.start, span.end)
    untyped = not question.expected
    after = min((first - a - 1 for a in quote.anchors if a < first), default=None)
    before = min((a - last for a in quote.anchors if a >= last), default=None)
    left = set(quote.words[max(0, first - WINDOW_WORDS):first])
    right = set(quote.words[last:last + WINDOW_WORDS])
    head = question.head
    governor = quote.text[span.head_start:span.head_end].lower() if span.head_start >= 0 else ""
    same_role = bool(question.wh_role) and ROLES.get(span.dep) == question.wh_role
    same_governor = bool(question.wh_governor) and governor[:4] == question.wh_governor[:4]
    return np.array([
        typed,
        bool(question.expected) and label == question.expected[0],
        untyped and label == "NP",
        untyped and label not in NUMBER_LABELS and label not in NOT_ENTITIES,
        untyped and label in NUMBER_LABELS,
        bool(question.expected) and not typed and label == "NP",
        1.0 / (1.0 + after) if after is not None else 0.0,
        1.0 / (1.0 + before) if before is not None else 0.0,
        after is not None and before is not None and after + before <= 10,
        after == 0,
        len(new_words) / len(words),
        math.log1p(len(words)),
        len(words) > 8,
        head is not None and any(w.startswith(head[:5]) for w in words),
        first > 0 and quote.words[first - 1] in PREPOSITIONS,
        (span.start - quote_start) / max(1, quote_end - quote_start),
        span.label == "NP+",
        len(new_words) < len(words),
        len(quote.content & left) / len(quote.content),
        len(quote.content & right) / len(quote.content),
        bool(governor) and any(governor[:5] == w[:5] for w in quote.content if len(w) > 3),
        span.dep in SUBJECT_DEPS,
        span.dep in OBJECT_DEPS,
        span.dep == "pobj",
        span.dep == "appos",
        span.label == nlp.ADJECTIVE,
        span.label == nlp.PREPOSITIONAL,
        span.label == nlp.ADVERBIAL,
        span.label == nlp.CLAUSE,
        question.form == "how" and span.label in PHRASE_KINDS,
        question.form == "why" and span.label in (nlp.PREPOSITIONAL, nlp.CLAUSE),
        question.form == "do" and span.label == nlp.CLAUSE,
        same_role and same_governor,
        same_role,
        same_governor,
    ], dtype=np.float64)


class SpanChoice(NamedTuple):
    """The answer span picked inside a quote, with what the evidence model learns from it."""

    span: tuple[int, int]
    score: float
    typed: bool  # it has the type the question expects
    context: float  # share of the question's content words in the six words either side of it
    in_slot: bool  # it fills the question word's slot (same role, same governing word)


def pick_span(text: str, quote_start: int, quote_end: int, spans: list[Span], question: QuestionAnalysis,
              weights: tuple[float, ...]) -> SpanChoice:
    """The best answer span inside the quote (the quote itself when no candidate fits)."""
    quote = QuoteContext.of(text, quote_start, quote_end, question)
    w = np.asarray(weights)
    best, best_score, best_features = (quote_start, quote_end), -math.inf, None
    for span in candidate_spans(text, spans):
        features = span_features(quote, quote_start, quote_end, span)
        if features is None:
            continue
        score = float(features @ w)
        if best_features is None or (features[0], score) > (best_features[0], best_score):  # expected type first
            best, best_score, best_features = (span.start, span.end), score, features
    if best_features is None:
        return SpanChoice(best, 0.0, False, 0.0, False)
    best = balance_span(text, quote_end, extend_to_list(text, quote_end, trim_span(quote, best), spans,
                                                        question.items))
    fits_form = any(best_features[_AT[name]] for name in ("manner_fit", "reason_fit", "action_fit"))
    return SpanChoice(best, best_score, bool(best_features[0]) or fits_form,
                      float(best_features[_AT["window_left"]] + best_features[_AT["window_right"]]),
                      bool(best_features[_AT["same_slot"]]))


def trim_span(quote: QuoteContext, span: tuple[int, int]) -> tuple[int, int]:
    """The chosen phrase without the words at its edges that add nothing: a leading demonstrative ("this",
    "those"), which points back into the article; for a "what (kind of) X" or "how many X" question a
    trailing lower-case X ("a multi-cultural city" -> "multi-cultural", "17 seconds" -> "17"); a trailing
    possessive; "age" before the number a "how old" question asks for; and all but the year a "what year"
    question asks for ("25 February 2010" -> "2010").
    XQuAD: the first two EM +0.6, F1 +0.2 (stop 8); the rest EM +1.4, F1 +0.45 (stop 11)."""
    first, last = bisect.bisect_left(quote.starts, span[0]), bisect.bisect_right(quote.ends, span[1])
    lo, hi, words, question = first, last, quote.words, quote.question
    if question.kind_of:
        while hi - lo > 1 and words[hi - 1] in question.words and words[hi - 1] not in PRONOUNS:
            hi -= 1
    elif ((noun := question.head or question.counted) and hi - lo > 1 and words[hi - 1][:5] == noun[:5]
          and quote.text[quote.starts[hi - 1]].islower()):
        hi -= 1  # "What tribes ...?": "Pictish tribes" -> "Pictish"; "How many seconds?": "17 seconds" -> "17"
    # "William Tyndale's" -> "William Tyndale", unless the question asks whose
    if hi == last and hi - lo > 1 and words[hi - 1] == "s" and quote.text[quote.starts[hi - 1] - 1] in "'’" \
            and "whose" not in question.words:
        hi -= 1
    if hi - lo > 1 and words[lo] in ("age", "aged") and question.asks_age:
        lo += 1  # "How old was he?": "age 39" -> "39"
    if hi - lo > 1 and question.asks_year:  # "In what year ...?": "25 February 2010" -> "2010"
        year = next((i for i in range(lo, hi) if _YEAR.fullmatch(words[i])), None)
        if year is not None:
            lo, hi = year, year + 1
    # "a multi-cultural city" -> "multi-cultural": an article without its noun dangles
    while hi - lo > 1 and (words[lo] in DEMONSTRATIVES or hi < last and words[lo] in ARTICLES):
        lo += 1
    return (quote.starts[lo] if lo > first else span[0], quote.ends[hi - 1] if hi < last else span[1])


_LIST_JOINERS = (", and ", ", or ", ", ", " and ", " or ")


def extend_to_list(text: str, quote_end: int, span: tuple[int, int], spans: list[Span],
                   items: int) -> tuple[int, int]:
    """For a question that asks for several things, the chosen phrase with the ones listed after it
    ("Fresno Street" -> "Fresno Street and Thorne Ave"): each the longest entity or phrase that follows a
    comma, "and" or "or", up to the number asked for and within the quote (pure)."""
    start, end = span
    for _ in range(items - 1):
        joiner = next((j for j in _LIST_JOINERS if text.startswith(j, end)), None)
        if joiner is None:
            break
        after = end + len(joiner)
        following = [s.end for s in spans if s.start == after and s.end <= quote_end
                     and s.label not in PHRASE_KINDS]
        if not following:
            break
        end = max(following)
    return start, end


_PAIRS = {"(": ")", "[": "]", "\u201c": "\u201d"}  # opening -> closing; a straight '"' closes itself
_CLOSERS = {close: open_ for open_, close in _PAIRS.items()}
QUOTE_REACH = 80  # characters a span may grow by to take in the rest of a quoted title


def balance_span(text: str, quote_end: int, span: tuple[int, int]) -> tuple[int, int]:
    """The span without a half of a bracket or quotation-mark pair: spaCy's phrases sometimes stop inside
    one ("a commune (gmina", 'an archetypal "mad scientist'). A quoted title is completed when its closing
    mark is near and in the quote; otherwise the span keeps the side of the lone mark with more words (pure)."""
    balanced = _balanced(text, quote_end, span)
    return balanced if _WORD.search(text, *balanced) else span


def _balanced(text: str, quote_end: int, span: tuple[int, int]) -> tuple[int, int]:
    start, end = span
    stack: list[tuple[str, int]] = []
    unopened = None
    for i in range(start, end):
        ch = text[i]
        if ch == '"' and stack and stack[-1][0] == '"':
            stack.pop()
        elif ch in _PAIRS or ch == '"':
            stack.append((ch, i))
        elif ch in _CLOSERS:
            if stack and stack[-1][0] == _CLOSERS[ch]:
                stack.pop()
            elif unopened is None:
                unopened = i
    if unopened is not None and text[unopened + 1:end].strip():
        start = unopened + 1  # "2 ft 6 in) narrow gauge lines" -> "narrow gauge lines"
    if stack:
        mark, at = stack[0]
        if at < start:
            return _strip(text, start, end)
        close = text.find(_PAIRS.get(mark, '"'), end, min(quote_end, end + QUOTE_REACH))
        if mark != "(" and close >= 0:
            end = close + 1
        elif len(_WORD.findall(text, start, at)) >= len(_WORD.findall(text, at, end)):
            end = at  # the side of the lone mark with more words: "a commune (gmina" -> "a commune"
        else:
            start = at + 1
    return _strip(text, start, end)


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """Offsets without surrounding spaces and commas."""
    while start < end and text[start] in " ,;":
        start += 1
    while end > start and text[end - 1] in " ,;":
        end -= 1
    return start, end


def outlet_names(source: str) -> list[str]:
    """How an outlet's name may appear in its own text: "The Mainichi" also as "Mainichi"."""
    names = [source]
    if source.lower().startswith("the "):
        names.append(source[4:])
    return [n for n in names if n.strip()]


def outlet_quote(index: IndexData, sentence_id: int, article: Article) -> tuple[int, int, tuple[int, int]] | None:
    """For "which outlet reported ...": the article's own outlet name in the sentence or the sentence next to it
    (a dateline, a credit line), as (quote start, quote end, name span); None when neither names it."""
    sentence = index.sentence(sentence_id)
    for neighbour in (sentence_id, sentence_id - 1, sentence_id + 1):
        if not 0 <= neighbour < len(index.sentence_table) or index.sentence_article(neighbour).id != article.id:
            continue
        other = index.sentence(neighbour)
        for name in outlet_names(article.source):
            at = article.text.find(name, other.start, other.end)
            if at >= 0:
                return min(sentence.start, other.start), max(sentence.end, other.end), (at, at + len(name))
    return None


def overlap_score(index: IndexData, tokens: tuple[str, ...], present: set[str]) -> tuple[float, float]:
    """Share of the question's words (weighted by rarity) found, and the rarity of the rarest one missing
    relative to the rarest overall: a question about a detail the text lacks is likely unanswerable."""
    weights = [index.idf(t) for t in tokens]
    if not weights:
        return 0.0, 0.0
    found = sum(w for t, w in zip(tokens, weights) if t in present) / sum(weights)
    missing = max((w for t, w in zip(tokens, weights) if t not in present), default=0.0) / max(weights)
    return found, missing


def _bigrams(words: list[str]) -> set[tuple[str, str]]:
    return set(zip(words, words[1:]))


def surface_evidence(question: str, sentence: str, article_words: set[str], other_names: str = "",
                     question_lemmas: frozenset[tuple[str, str]] = frozenset(),
                     topic_words: set[str] = frozenset()) -> dict[str, float]:
    """Clues that a question recombines the text's words into something it does not say (SQuAD v2's
    unanswerable questions): its word pairs are absent, a negation or a name or number is missing, or the
    sentence says the opposite ("least" where it says "most"); and one that it was written from what the
    sentence says: it paraphrases the sentence's words. `other_names`: names the sentence's places also go
    by (`places.other_names`), which count as present; `question_lemmas`: the question's parsed lemmas
    (`QuestionAnalysis.lemmas`), for the clues that need word senses; `topic_words`: the words of the
    article's `topic_text`, whose names all its sentences speak under."""
    q_words = [w for w in _words(question) if w not in _WH]
    s_words = _words(sentence)
    sentence_words = text_terms(sentence) | set(_words(other_names))
    q_pairs = _bigrams(q_words)
    sentence_lemmas = senses.text_lemmas(sentence)
    names = {w.lower() for w in _NAME.findall(question)}
    numbers = _numbers(question)
    return {
        "bigrams": len(q_pairs & _bigrams(s_words)) / len(q_pairs) if q_pairs else 0.0,
        # The question asks what did not happen and the sentence negates nothing (11% of SQuAD v2's
        # unanswerable questions, 1% of its answerable ones). The other way round is no clue: a sentence's
        # "not" is as common under either. Counting both ways diluted it (abstention AUC 0.640 -> 0.672).
        "negation_missing": float(bool(NEGATIONS & set(q_words)) and not NEGATIONS & sentence_words),
        "name_missing": float(bool(names - article_words)),
        "number_missing": float(bool(numbers - article_words)),
        "name_missing_sentence": float(bool(names - sentence_words - topic_words)),
        "number_missing_sentence": float(bool(numbers - sentence_words)),
        "question_words": math.log1p(len(q_words)),
        "sentence_words": math.log1p(len(s_words)),  # long sentences share more words with any question
        # WordNet's antonym pairs by stem catch "least" against "most"; its senses by lemma also catch
        # "harder" against "easy" and "medieval" against "modern" (AUC leave-one-article-out +0.009).
        "turned_around": float(antonyms.turned_around(antonyms.stems(question), antonyms.stems(sentence))
                               or senses.says_opposite(question_lemmas, sentence_lemmas)),
        "paraphrased": float(senses.paraphrases(question_lemmas, sentence_lemmas)),
    }


def topic_text(title: str, lede: str) -> str:
    """What an article is about, which none of its sentences need repeat: its title and first sentence,
    with the other names of the countries they name (pure)."""
    text = f"{title} {lede}"
    return f"{text} {places.other_names(text)}"


def evidence_probability(x: np.ndarray, support: tuple[np.ndarray, float], relevance: tuple[np.ndarray, float]
                         ) -> np.ndarray:
    """The score of a quote's evidence (a row) or of many (a matrix): the lower of the two fitted models'
    probabilities (see `AnswerSettings`); bench/fit_answerer.py cross-validates with it."""
    return np.minimum(*(1 / (1 + np.exp(-np.clip(x @ w + b, -50, 50))) for w, b in (support, relevance)))


def find_candidates(index: IndexData, passages: list[Passage], question: QuestionAnalysis,
                    query_vector: np.ndarray, settings: AnswerSettings) -> list[Candidate]:
    """The sentences of the retrieved passages with their evidence, best first.

    Every sentence is ranked first without its answer span; only the best `span_sentences` get their span
    picked and their rank completed, since picking spans is most of the answerer's time."""
    passage_of: dict[int, Passage] = {}
    for p in passages:
        for sid in p.chunk.sentence_ids:
            if sid not in passage_of or p.score > passage_of[sid].score:
                passage_of[sid] = p
    ids = sorted(passage_of)
    if not ids:
        return []
    dense = np.asarray(index.sentence_vectors[ids]) @ query_vector
    sentences = [index.sentence(sid) for sid in ids]
    # A text's words include the other names of the countries it names ("Tokyo" is also "Japan").
    sentence_names = [places.other_names(s.text) for s in sentences]
    passage_texts = [f"{p.chunk.text} {places.other_names(p.chunk.text)}" for p in passages]
    sentence_tokens = lexical.tokenize([f"{s.text} {names}" for s, names in zip(sentences, sentence_names)])
    # Per passage, once: how rare the rarest question word it lacks is.
    missing_in_passage = {p.chunk_id: overlap_score(index, question.tokens, set(t))[1]
                          for p, t in zip(passages, lexical.tokenize(passage_texts))}
    # Names and numbers are looked for in the whole article: its other passages set the scene. And a sentence
    # speaks under its article's topic: in an editorial on South Korea, "... have led to economic stagnation"
    # is about South Korea (XQuAD quote top-1 80.6% -> 83.3%; abstention AUC +0.003).
    article_words: dict[str, set[str]] = {}
    topic_words: dict[str, set[str]] = {}
    topic_tokens: dict[str, set[str]] = {}
    for p in passages:
        article_id = p.chunk.article_id
        if article_id not in article_words:
            article = index.article(article_id)
            article_words[article_id] = text_terms(f"{article.text} {places.other_names(article.text)}")
            topic = topic_text(article.title, index.first_sentence(article_id).text)
            topic_words[article_id] = text_terms(topic)
            topic_tokens[article_id] = set(lexical.tokenize([topic])[0])
    rank_weights = np.asarray(settings.rank_weights)
    span_dependent = np.array([name in ("typed", "span_score") for name in RANK_FEATURES])
    scored = []
    for sid, sentence, names, cosine, tokens in zip(ids, sentences, sentence_names, dense, sentence_tokens):
        passage = passage_of[sid]
        article_id = passage.chunk.article_id
        found, missing = overlap_score(index, question.tokens, set(tokens) | topic_tokens[article_id])
        evidence = {"dense": float(cosine), "dense_excess": max(0.0, float(cosine) - DENSE_KNOT),
                    "overlap": found, "passage": passage.score,
                    "missing_rarest": missing, "missing_in_passage": missing_in_passage[passage.chunk_id],
                    "missing_share": 1.0 - found, "expects_type": float(bool(question.expected)), "typed": 0.0,
                    "span_score": 0.0, "span_context": 0.0, "span_in_slot": 0.0,
                    **surface_evidence(question.text, sentence.text, article_words[article_id], names,
                                       question.lemmas, topic_words[article_id])}
        features = np.array([evidence[name] for name in RANK_FEATURES])
        scored.append((float(features[~span_dependent] @ rank_weights[~span_dependent]), sid, sentence, evidence))
    scored.sort(key=lambda item: (-item[0], item[1]))
    candidates = []
    for _, sid, sentence, evidence in scored[:settings.span_sentences]:
        article = index.sentence_article(sid)
        choice = pick_span(article.text, sentence.start, sentence.end, index.spans(sid), question,
                           settings.span_weights)
        span, span_score, typed = choice.span, choice.score, choice.typed
        start, end = sentence.start, sentence.end
        if question.expected == OUTLET:
            named = outlet_quote(index, sid, article)  # else the answer is the citation: quote the sentence
            start, end, span = named or (start, end, (start, end))
            typed = named is not None
        evidence.update(typed=float(typed), span_score=span_score, span_context=choice.context,
                        span_in_slot=float(choice.in_slot))
        rank = float(np.array([evidence[name] for name in RANK_FEATURES]) @ rank_weights)
        candidates.append(Candidate(sid, article, start, end, span, span_score, typed, evidence, rank))
    # For a number, date or duration, which spaCy finds reliably, a sentence holding one comes first.
    numeric = bool(question.expected) and set(question.expected) <= NUMBER_LABELS
    candidates.sort(key=lambda c: (-(numeric and c.typed), -c.rank, c.sentence_id))
    for c, following in zip(candidates, candidates[1:] + [None]):
        c.evidence["margin"] = c.rank - (following.rank if following else 0.0)
        c.evidence["runner_up_overlap"] = following.evidence["overlap"] if following else 0.0
        features = np.array([c.evidence[name] for name in EVIDENCE_FEATURES])
        c.score = float(evidence_probability(features, (np.asarray(settings.evidence_weights), settings.evidence_bias),
                                             (np.asarray(settings.relevance_weights), settings.relevance_bias)))
    return candidates


def same_answer(a: str, b: str) -> bool:
    """Whether two answer spans state one value: the same numbers ("about 25 minutes from noon" and
    "25-minute"), or, without numbers, the same words up to plurals, articles and hedges (pure)."""
    a_numbers, b_numbers = re.findall(r"\d+(?:[.,]\d+)?", a), re.findall(r"\d+(?:[.,]\d+)?", b)
    if a_numbers or b_numbers:
        return sorted(a_numbers) == sorted(b_numbers)

    def key(text: str) -> str:
        return " ".join(w.rstrip("s") for w in _words(text) if w not in {"a", "an", "the", "about", "some", "around"})

    a_key, b_key = key(a), key(b)
    return bool(a_key and b_key) and (a_key in b_key or b_key in a_key)


def _same_fact(a: Candidate, b: Candidate, index: IndexData, settings: AnswerSettings) -> bool:
    """Two sentences from different articles that report one fact: near-identical meaning,
    or related sentences giving the same typed answer."""
    if a.article.id == b.article.id:
        return False
    similarity = float(np.dot(index.sentence_vectors[a.sentence_id], index.sentence_vectors[b.sentence_id]))
    if similarity >= settings.same_fact_similarity:
        return True
    return (similarity >= 0.6 and a.typed and b.typed
            and same_answer(a.article.text[a.span[0]:a.span[1]], b.article.text[b.span[0]:b.span[1]]))


def _to_answer(c: Candidate, weak: bool, corroborations: list[Candidate]) -> Answer:
    text = c.article.text
    return Answer(
        text=text[c.span[0]:c.span[1]], quote=text[c.start:c.end], score=c.score, article=c.article,
        quote_start=c.start, quote_end=c.end, answer_start=c.span[0], answer_end=c.span[1], weak=weak,
        also_reported_by=tuple(Corroboration(o.article, o.article.text[o.start:o.end], o.start, o.end)
                               for o in corroborations),
    )


def analyze_in_context(question: str, history: list[Turn]) -> tuple[str, QuestionAnalysis]:
    """The search text and the analysis: type from the question itself, words also from the turn it follows."""
    search_text = contextual_question(question, history)
    analysis = analyze_question(question)
    if search_text != question:
        analysis = replace(analysis, tokens=analyze_question(search_text, parse=False).tokens)
    return search_text, analysis


def answer_question(index: IndexData, question: str, query_vector: np.ndarray, top_k: int = 3,
                    history: list[Turn] | None = None, filters: Filters | None = None,
                    settings: AnswerSettings = AnswerSettings()) -> Reply:
    """Answer from the index's own words; `query_vector` embeds `contextual_question(question, history)`."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    search_text, analysis = analyze_in_context(question, history or [])
    passages = retrieve(index, search_text, query_vector, settings.passages, filters, settings.candidates,
                        settings.fusion)
    candidates = find_candidates(index, passages, analysis, query_vector, settings)
    groups: list[tuple[Candidate, list[Candidate]]] = []
    for c in candidates:
        if any(g[0].article.id == c.article.id and g[0].span == c.span for g in groups):
            continue  # the same words again (two sentences quoting one outlet name)
        leader = next((g for g in groups if _same_fact(g[0], c, index, settings)), None)
        if leader is not None:
            if all(o.article.id != c.article.id for o in leader[1]):
                leader[1].append(c)
        elif len(groups) < top_k:
            groups.append((c, []))
    for leader, others in groups:  # outlets reporting one fact are separate evidence for it: a noisy-or
        leader.score = 1.0 - (1.0 - leader.score) * math.prod(1.0 - o.score for o in others)
    for (above, _), (below, _) in zip(groups, groups[1:]):
        below.score = min(below.score, above.score)  # answers are ranked best first; scores read the same way
    for leader, _ in groups:
        leader.score = round(leader.score, 4)  # the score a reply shows is the one compared with the threshold
    no_answer = not groups or groups[0][0].score < settings.no_answer_threshold
    answers = [_to_answer(leader, no_answer or leader.score < settings.no_answer_threshold, others)
               for leader, others in groups]
    return Reply(question=question, no_answer=no_answer, answers=answers)
