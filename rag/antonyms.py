"""Opposite words (WordNet 3.0's antonym pairs, rag/data/antonyms.tsv), to catch a question that turns its
source around: "What is the least critical resource?" of a sentence about the most critical one. SQuAD v2's
writers made a fifth of its unanswerable questions this way."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from rag import lexical

TABLE = Path(__file__).parent / "data" / "antonyms.tsv"
_WORD = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=1)
def opposites() -> dict[str, frozenset[str]]:
    """Stem -> stems of its antonyms, stemmed as BM25 stems ("directly" and "direct" are one word)."""
    table: dict[str, set[str]] = {}
    for line in TABLE.read_text().splitlines():
        a, b = lexical.stem_words(line.split("\t"))
        if a != b:
            table.setdefault(a, set()).add(b)
            table.setdefault(b, set()).add(a)
    return {word: frozenset(others) for word, others in table.items()}


@lru_cache(maxsize=4096)  # a corpus's sentences come back query after query
def stems(text: str) -> frozenset[str]:
    """The stems of a text's lower-case words, stopwords included ("more" and "less" are opposites too).
    Capitalised words are left out, since in a name an opposite is no contradiction ("South Korea" beside
    "North Korea"); a capitalised first word ("How", "More") counts as lower-case."""
    return frozenset(lexical.stem_words([w for w in _WORD.findall(text[:1].lower() + text[1:]) if w.islower()]))


def turned_around(question: frozenset[str], sentence: frozenset[str]) -> bool:
    """Whether the sentence holds the opposite of a question word in its place: the question's word is
    missing from it, its antonym is there, and the question does not hold that antonym itself (pure)."""
    table, only_in_sentence = opposites(), sentence - question
    return any(not only_in_sentence.isdisjoint(table.get(word, ())) for word in question - sentence)
