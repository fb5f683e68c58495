"""Word senses from WordNet 3.0 (rag/data/word_senses.tsv, made by bench/wordnet_tables.py), to tell how a
question's words stand to its best sentence's. A question that paraphrases the sentence ("utilized" where
it says "used") was likely written from what it says; one that says the opposite of its words ("harder"
where it says "easy", "medieval" where it says "modern") likely asks what it does not say.

Words are compared as lemma and part of speech: the question's from its parse, the sentence's as every
reading spaCy's lemmatizer rules allow ("lost" is the verb "lose" or the adjective "lost"), so that
sentences need no parse at query time. Tagging the sentences instead measured no better."""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

from rag import nlp

TABLE = Path(__file__).parent / "data" / "word_senses.tsv"
PARTS = {"NOUN": "n", "PROPN": "n", "VERB": "v", "ADJ": "a", "ADV": "r"}
_PART_NAMES = {"n": "NOUN", "v": "VERB", "a": "ADJ", "r": "ADV"}
_WORD = re.compile(r"[A-Za-z]+")

Lemma = tuple[str, str]  # ("lose", "v")


class Senses(NamedTuple):
    sense: int | None  # the most frequent sense, for common words
    nearby: frozenset[int]  # its hypernyms (for an adjective satellite: its head)
    poles: frozenset[int]  # all its senses (and adjective heads), for words with an antonym
    opposites: frozenset[int]  # the antonyms of those


@lru_cache(maxsize=1)
def table() -> dict[Lemma, Senses]:
    def numbers(field: str) -> frozenset[int]:
        return frozenset(int(n) for n in field.split())

    out = {}
    for line in TABLE.read_text().splitlines():
        lemma, part, sense, nearby, poles, opposites = line.split("\t")
        out[lemma, part] = Senses(int(sense) if sense else None, numbers(nearby), numbers(poles), numbers(opposites))
    return out


def question_lemmas(doc) -> frozenset[Lemma]:
    """The lemmas of a parsed question's content words ("smallest" -> ("small", "a"))."""
    return frozenset((nlp.token_lemma(t).lower(), PARTS[t.pos_]) for t in doc if t.pos_ in PARTS and t.is_alpha)


@lru_cache(maxsize=65536)
def _readings(word: str) -> frozenset[Lemma]:
    return frozenset((lemma, part) for part, name in _PART_NAMES.items() for lemma in nlp.word_lemmas(word, name))


@lru_cache(maxsize=4096)  # a corpus's sentences come back query after query
def text_lemmas(text: str) -> frozenset[Lemma]:
    """Every lemma a text's lower-case words can be, by spaCy's rules. Capitalised words are left out, as
    names ("South Korea" beside "North Korea"); a capitalised first word counts as lower-case."""
    words = [w for w in _WORD.findall(text[:1].lower() + text[1:]) if w.islower()]
    return frozenset().union(*map(_readings, words))


@lru_cache(maxsize=4096)
def _known(lemmas: frozenset[Lemma]) -> tuple[frozenset[str], tuple[Lemma, ...]]:
    """A text's lemma strings, and its lemmas that WordNet's table has (once per sentence: text_lemmas
    returns the same set each time)."""
    known = table()
    return frozenset(lemma for lemma, _ in lemmas), tuple(lemma for lemma in lemmas if lemma in known)


def _new_words(question: frozenset[Lemma], sentence: frozenset[Lemma]) -> tuple[list[Lemma], list[Lemma]]:
    """The question's lemmas the sentence lacks, and the sentence's the question lacks (by lemma alone),
    that WordNet knows. Whether a word is there is decided before the table is looked at: "upper" is in
    a sentence whatever it means there."""
    (q_lemmas, q_known), (s_lemmas, s_known) = _known(question), _known(sentence)
    return [q for q in q_known if q[0] not in s_lemmas], [s for s in s_known if s[0] not in q_lemmas]


def says_opposite(question: frozenset[Lemma], sentence: frozenset[Lemma]) -> bool:
    """Whether the sentence has, instead of a question word, a word of the same part of speech from the
    opposite pole: an antonym of one of its senses, directly or through an adjective's head."""
    known = table()
    asked, said = _new_words(question, sentence)
    return any(q[1] == s[1] and known[q].opposites & known[s].poles and not known[q].poles & known[s].poles
               for q in asked if known[q].opposites for s in said)


def paraphrases(question: frozenset[Lemma], sentence: frozenset[Lemma]) -> bool:
    """Whether a question word the sentence lacks has, in the sentence, a word of the same part of speech
    whose most frequent sense is the same or next to it ("utilized" for "used", "cows" for "cattle")."""
    known, stop = table(), nlp.get_nlp().Defaults.stop_words
    asked, said = _new_words(question, sentence)
    said = [s for s in said if known[s].sense is not None and s[0] not in stop]
    for q in asked:
        a = known[q]
        if a.sense is None or q[0] in stop:
            continue
        for s in said:
            b = known[s]
            if q[1] == s[1] and (a.sense == b.sense or a.sense in b.nearby or b.sense in a.nearby):
                return True
    return False
