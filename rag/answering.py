"""The extractive answerer: finds the sentences that may answer, reads them for the answer span, and says how sure.

Every quote and span is a pair of offsets into an article's text; nothing here writes text of its own.
Three learned parts do the judging, all fitted on the training questions only (`rag/training_data.py`):
a linear rank over clues picks the sentences worth reading; the reader (`rag/reader.py`, MiniLM fine-tuned
on SQuAD) finds the span in a window of two sentences; and the answer model (`rag/confidence.py`) turns the
reader's logits and the clues into the probability that the quote answers, which is compared with the
threshold fitted beside it. The clues also learn from answerable questions asked of a corpus without their
paragraph, the kind of unanswerable question a news reader asks most (something the articles do not report).
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from rag import antonyms, confidence, lexical, places, reader, senses
from rag.dedup import duplicate_group
from rag.index import IndexData
from rag.questions import (DURATION, OUTLET, TEMPORAL, QuestionAnalysis, analyze_question, is_follow_up,
                           without_outlet)
from rag.retrieval import FusionSettings, retrieve
from rag.types import Answer, Article, Corroboration, Filters, Passage, Reply, Turn

_WORD = re.compile(r"\w+")
_WH = frozenset({"what", "which", "who", "whom", "whose", "when", "where", "why", "how"})
NUMBER_LABELS = frozenset({"DATE", "TIME", "CARDINAL", "ORDINAL", "PERCENT", "MONEY", "QUANTITY"})
# A close sentence says more than a linear weight on the cosine allows: the clues also read how far the
# cosine exceeds 0.64, the median over SQuAD v2's questions and their best sentences (a statistic of the
# cosines alone, not of any label).
DENSE_KNOT = 0.64
# What makes a DATE or TIME entity a duration ("25-minute", "three years"; not "Monday").
_DURATION_UNIT = re.compile(r"(?<![a-z])(?:seconds?|minutes?|hours?|days?|weeks?|months?|years?|decades?|centur(?:y|ies)"
                            r"|nights?)\b", re.I)
# A span of time and nothing else ("six years", "a decade", "25-minute"): no answer to "when".
_TIME_SPAN = re.compile(r"(?:(?:about|around|nearly|almost|over|some|more than|less than|another)\s+)?"
                        r"(?:[\d.,]+|a|an|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                        r"several|few|many)[\s-]+" + _DURATION_UNIT.pattern + r"(?:-long)?", re.I)
NEGATIONS = frozenset({"not", "never", "no", "nor", "without", "t", "cannot", "unable", "impossible", "neither", "none",
                       "fail", "fails", "failed"})
# A capitalised word not at the start of a sentence, acronyms and inner capitals too ("NP", "BSkyB").
_NAME = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][A-Za-z0-9]*")
_NAME_RUN = re.compile(r"\b(?!(?:The|A|An)\b)[A-Z][a-z]+(?:\s+[A-Z][a-z]+)+")
# A number as written, with its scale: "8.7" is not "8" and "7", "$20 million" is not "$20 billion".
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*(?:\s+(?:hundred|thousand|million|billion|trillion)\b)?", re.I)


@dataclass(frozen=True)
class AnswerSettings:
    """How much the answerer reads; the fitted weights live in rag/models/answerer/ (see rag/confidence.py)."""

    passages: int = 8  # retrieved chunks whose sentences compete for the quote
    candidates: int = 200  # per retriever, before fusion (bench/retrieval.py: best mean nDCG@10 of the sweep)
    reader_sentences: int = 4  # top-ranked sentences whose windows the reader reads
    reader_threads: int = 2  # p50 on the dev questions in-process: 141 ms with 1 thread, 91 ms with 2
    no_answer_threshold: float | None = None  # None: the threshold fitted with the answer model
    same_fact_similarity: float = 0.8  # sentence cosine above which two outlets report one fact
    # Sentence cosine above which a sentence of a near-duplicate article (rag/dedup.py) is a copy of one the reader
    # reads anyway: the copy is read too, without taking a place among the `reader_sentences`.
    copy_similarity: float = 0.95
    model_dir: Path = confidence.MODEL_DIR
    reader_dir: Path = reader.MODEL_DIR
    fusion: FusionSettings = field(default_factory=FusionSettings)

    def __post_init__(self) -> None:
        if self.reader_sentences < 1:
            raise ValueError(f"reader_sentences must be >= 1, got {self.reader_sentences}")

    def threshold(self) -> float:
        if self.no_answer_threshold is not None:
            return self.no_answer_threshold
        return confidence.load(self.model_dir).threshold


@dataclass
class Candidate:
    """A quote that may answer, with the evidence for it; exposed for the fitting script."""

    sentence_id: int
    article: Article
    start: int
    end: int
    span: tuple[int, int]
    typed: bool
    evidence: dict[str, float]
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


def _has_type(expected: tuple[str, ...], label: str, text: str, start: int, end: int) -> bool:
    """Whether a span is of the type a question expects: a duration needs its unit ("25-minute"), and a
    bare span of time ("six years") does not say when (pure)."""
    if label not in expected:
        return False
    if expected == DURATION:
        return bool(_DURATION_UNIT.search(text, start, end))
    return expected != TEMPORAL or not _TIME_SPAN.fullmatch(text, start, end)


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



def sentence_evidence(index: IndexData, passages: list[Passage], question: QuestionAnalysis,
                      query_vector: np.ndarray) -> dict[int, dict[str, float]]:
    """The clues of every sentence of the retrieved passages, by sentence id: how close it is to the question,
    which of the question's words it holds, and whether the question says something it does not."""
    passage_of: dict[int, Passage] = {}
    for p in passages:
        for sid in p.chunk.sentence_ids:
            if sid not in passage_of or p.score > passage_of[sid].score:
                passage_of[sid] = p
    ids = sorted(passage_of)
    if not ids:
        return {}
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
    # is about South Korea.
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
    evidence = {}
    for sid, sentence, names, cosine, tokens in zip(ids, sentences, sentence_names, dense, sentence_tokens):
        passage = passage_of[sid]
        article_id = passage.chunk.article_id
        found, missing = overlap_score(index, question.tokens, set(tokens) | topic_tokens[article_id])
        evidence[sid] = {
            "dense": float(cosine), "dense_excess": max(0.0, float(cosine) - DENSE_KNOT), "overlap": found,
            "passage": passage.score, "missing_rarest": missing,
            "missing_in_passage": missing_in_passage[passage.chunk_id], "missing_share": 1.0 - found,
            "expects_type": float(bool(question.expected)),
            # It holds an entity of the type asked for (a duration for "how long", a person for "who").
            "typed_sentence": float(bool(question.expected) and any(
                _has_type(question.expected, span.label, index.sentence_article(sid).text, span.start, span.end)
                for span in index.spans(sid))),
            **surface_evidence(question.text, sentence.text, article_words[article_id], names, question.lemmas,
                               topic_words[article_id])}
    return evidence


def ranked_sentences(index: IndexData, passages: list[Passage], question: QuestionAnalysis,
                     query_vector: np.ndarray, model: confidence.AnswerModel) -> list[tuple[int, float, dict]]:
    """(sentence id, rank score, clues) of the passages' sentences, best first."""
    evidence = sentence_evidence(index, passages, question, query_vector)
    ids = list(evidence)
    ranks = model.rank([evidence[sid] for sid in ids])
    return sorted(((sid, float(r), evidence[sid]) for sid, r in zip(ids, ranks)), key=lambda t: (-t[1], t[0]))


def window_around(index: IndexData, sentence_id: int) -> tuple[int, int]:
    """The first and last sentence of the two-sentence window the reader reads for a sentence: it and the next
    one of its article, or the one before when it is the last."""
    article = int(index.sentence_table[sentence_id, 0])
    for first, last in ((sentence_id, sentence_id + 1), (sentence_id - 1, sentence_id)):
        if 0 <= first and last < len(index.sentence_table) and int(index.sentence_table[first, 0]) == article \
                and int(index.sentence_table[last, 0]) == article:
            return first, last
    return sentence_id, sentence_id


def _covering(index: IndexData, first: int, last: int, position: int) -> int:
    """The sentence of first..last that holds a character position (the last one past all starts)."""
    for sid in range(first, last + 1):
        if position < int(index.sentence_table[sid, 2]):
            return sid
    return last


def _typed(index: IndexData, sentence_id: int, span: tuple[int, int], expected: tuple[str, ...], text: str) -> bool:
    """Whether the reader's span overlaps an entity of the type the question expects ("25 minutes" and spaCy's
    "about 25 minutes")."""
    return bool(expected) and any(
        _has_type(expected, s.label, text, s.start, s.end) and s.start < span[1] and span[0] < s.end
        for s in index.spans(sentence_id))


def find_candidates(index: IndexData, passages: list[Passage], question: QuestionAnalysis,
                    query_vector: np.ndarray, settings: AnswerSettings,
                    model: confidence.AnswerModel | None = None) -> list[Candidate]:
    """The answers the reader finds in the best-ranked sentences' windows, with their evidence and
    probability, most probable first (`model`: the fitted one unless given, as the fitting script does)."""
    model = model or confidence.load(settings.model_dir)
    ranked = ranked_sentences(index, passages, question, query_vector, model)
    windows, seen = [], set()
    chosen: list[tuple[int, str, str]] = []  # (sentence id, article id, near-duplicate group) chosen to read
    for sid, rank, _ in ranked:
        # A copy of a chosen sentence in another carrier of the same wire story is read at the original's place:
        # copies never crowd another report out of the reader's budget.
        article = index.sentence_article(sid)
        group = group_of(index, article)
        position = next((p for p, (other, other_article, other_group) in enumerate(chosen)
                         if other_group == group and other_article != article.id
                         and float(np.dot(index.sentence_vectors[sid], index.sentence_vectors[other]))
                         >= settings.copy_similarity), None)
        if position is None:
            if len(chosen) == settings.reader_sentences:
                continue
            position = len(chosen)
            chosen.append((sid, article.id, group))
        first, last = window_around(index, sid)
        if (first, last) in seen:
            continue
        seen.add((first, last))
        article = index.sentence_article(first)
        start, end = int(index.sentence_table[first, 1]), int(index.sentence_table[last, 2])
        windows.append(reader.Window(article.text[start:end], start, end, (first, last, rank, position)))
    readings = reader.read(question.text, windows, threads=settings.reader_threads, model_dir=settings.reader_dir)
    evidence_of = {sid: e for sid, _, e in ranked}
    best_reading = max((r.score for r in readings), default=0.0)
    candidates: dict[tuple[str, tuple[int, int]], Candidate] = {}
    for reading in readings:
        first, last, rank, position = reading.window.key
        article = index.sentence_article(first)
        span = (reading.start, reading.end)
        sid = _covering(index, first, last, span[0])
        end_sid = _covering(index, first, last, max(span[0], span[1] - 1))
        quote = int(index.sentence_table[sid, 1]), int(index.sentence_table[end_sid, 2])
        typed = _typed(index, sid, span, question.expected, article.text)
        if question.expected == OUTLET:
            named = outlet_quote(index, sid, article)  # else the answer is the citation: quote the sentence
            quote, span = (named[:2], named[2]) if named else (quote, quote)
            typed = named is not None
        others = [r.score for r in readings if r.window.key[3] != position]  # copies of this window aside
        clues = evidence_of.get(sid) or evidence_of[next(s for s in range(first, last + 1) if s in evidence_of)]
        evidence = {**clues, "rank": rank, "rank_position": float(position), "typed": float(typed),
                    "reader_score": reading.score, "reader_span": reading.span_logit, "reader_null": reading.null_logit,
                    "reader_gap": reading.score - max(others, default=reading.score - 10.0),
                    "reader_best": float(reading.score >= best_reading),
                    "span_words": math.log1p(len(_WORD.findall(article.text, *span)))}
        key = (article.id, span)
        if key not in candidates or candidates[key].evidence["reader_score"] < reading.score:
            candidates[key] = Candidate(sid, article, quote[0], quote[1], span, typed, evidence)
    found = list(candidates.values())
    for c, p in zip(found, model.probability([c.evidence for c in found])):
        c.score = float(p)
    found.sort(key=lambda c: (-c.score, c.sentence_id))
    return found


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


def analyze_in_context(question: str, history: list[Turn]) -> tuple[str, QuestionAnalysis]:
    """The search text and the analysis: type from the question itself, words also from the turn it follows."""
    search_text = contextual_question(question, history)
    analysis = analyze_question(question)
    if search_text != question:
        analysis = replace(analysis, tokens=analyze_question(search_text, parse=False).tokens)
    return search_text, analysis


@dataclass
class Fact:
    """One fact of a reply: the candidate that states it best, the other outlets' own reports of it, and the
    outlets carrying a copy (a near-duplicate) of one of those reports."""

    leader: Candidate
    reports: list[Candidate] = field(default_factory=list)
    carriers: list[Candidate] = field(default_factory=list)

    def outlets(self) -> set[str]:
        return {c.article.source.casefold() for c in (self.leader, *self.reports, *self.carriers)}


def group_of(index: IndexData, article: Article) -> str:
    """The near-duplicate group of an indexed article: the first article of its chain of `duplicate_of`."""
    def earlier(article_id: str) -> str | None:
        row = index.article_index.get(article_id)
        return None if row is None else index.catalog[row].duplicate_of

    return duplicate_group(article.id, earlier)


def corroborate(fact: Fact, c: Candidate, group: Callable[[Article], str]) -> None:
    """Count another article stating the fact (pure): another outlet's own report, or, when it is in the
    near-duplicate `group` of a report already counted, a copy that carries it (one wire story in three papers
    is one report). A second article of an outlet already counted is neither."""
    if c.article.source.casefold() in fact.outlets():
        return
    counted = {group(o.article) for o in (fact.leader, *fact.reports)}
    (fact.carriers if group(c.article) in counted else fact.reports).append(c)


def _corroboration(c: Candidate) -> Corroboration:
    return Corroboration(c.article, c.article.text[c.start:c.end], c.start, c.end)


def _to_answer(fact: Fact, weak: bool) -> Answer:
    c = fact.leader
    text = c.article.text
    return Answer(
        text=text[c.span[0]:c.span[1]], quote=text[c.start:c.end], score=c.score, article=c.article,
        quote_start=c.start, quote_end=c.end, answer_start=c.span[0], answer_end=c.span[1], weak=weak,
        also_reported_by=tuple(_corroboration(o) for o in fact.reports),
        carried_by=tuple(_corroboration(o) for o in fact.carriers),
    )


def answer_question(index: IndexData, question: str, query_vector: np.ndarray, top_k: int = 3,
                    history: list[Turn] | None = None, filters: Filters | None = None,
                    settings: AnswerSettings = AnswerSettings()) -> Reply:
    """Answer from the index's own words; `query_vector` embeds `contextual_question(question, history)`.

    The reply's answers are the `top_k` most probable distinct facts; each says "high" confidence when its
    probability clears the threshold. When none does, the reply says no answer and still shows the best
    of them, marked "low"."""
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    search_text, analysis = analyze_in_context(question, history or [])
    passages = retrieve(index, search_text, query_vector, settings.passages, filters, settings.candidates,
                        settings.fusion)
    candidates = find_candidates(index, passages, analysis, query_vector, settings)
    facts: list[Fact] = []
    for c in candidates:
        if any(f.leader.article.id == c.article.id and f.leader.span == c.span for f in facts):
            continue  # the same words again
        fact = next((f for f in facts if _same_fact(f.leader, c, index, settings)), None)
        if fact is not None:
            corroborate(fact, c, partial(group_of, index))
        elif len(facts) < top_k:
            facts.append(Fact(c))
    threshold = settings.threshold()
    for fact in facts:  # the score a reply shows is the one compared with the threshold
        fact.leader.score = round(fact.leader.score, 4)
    no_answer = not facts or facts[0].leader.score < threshold
    answers = [_to_answer(fact, fact.leader.score < threshold) for fact in facts]
    return Reply(question=question, no_answer=no_answer, answers=answers)
