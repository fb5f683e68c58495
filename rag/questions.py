"""What a question asks for: the expected answer type and the words it already contains (pure)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from rag import lexical, nlp, senses

PERSON_LIKE = ("PERSON", "ORG", "NORP", "GPE")
ORG_LIKE = ("ORG", "PERSON", "NORP", "GPE", "FAC")
PLACE_LIKE = ("GPE", "LOC", "FAC", "ORG")
TEMPORAL = ("DATE", "TIME")
NUMERIC = ("CARDINAL", "QUANTITY", "MONEY", "PERCENT")
DURATION = ("TIME", "DATE", "QUANTITY", "CARDINAL")
OUTLET = ("OUTLET",)  # the answer is the reporting outlet's own name, as the article prints it

# "Which news agency reported ...": the outlet words say whom to cite, not what the fact is. Only with a
# reporting verb: "What publication named him editor?" asks about the text, not about its outlet.
_OUTLET = re.compile(r"\b(?:which|what)\s+(?:news\s+agenc(?:y|ies)|newspapers?|(?:news\s+|media\s+)?outlets?|"
                     r"wire\s+services?|publications?|broadcasters?|news\s+organi[sz]ations?|media)\b"
                     r"\s+(?:first\s+)?(?:reported|reports?|said|says|wrote|writes|covered|carried|published)\b",
                     re.I)

# (pattern on the lower-cased question, expected span labels), first match wins.
_RULES: list[tuple[str, tuple[str, ...]]] = [
    (_OUTLET.pattern, OUTLET),
    (r"\bhow long\b", DURATION),
    # "How many years ...": a span of time, which spaCy labels DATE or TIME ("three years", "17 seconds").
    (r"\bhow many (?:seconds|minutes|hours|days|weeks|months|years|decades|centuries)\b", DURATION),
    (r"\bhow (many|much)\b.*\b(money|cost|paid|pay|spend|spent|price|dollars?|worth)\b", ("MONEY",) + NUMERIC),
    (r"\bhow (many|much)\b", NUMERIC),
    (r"\bwhat (?:(?:is|was|are|were) the )?(percentage|percent|proportion|share)\b", ("PERCENT", "CARDINAL")),
    (r"\bhow (old|far|large|big|tall|high|fast|heavy|deep|wide)\b", ("QUANTITY", "CARDINAL", "DATE")),
    (r"^(when|in what year|by when)\b|, when\b|\b(what|which) (year|date|day|month|time|century|decade)s?\b", TEMPORAL),
    (r"\b(what|which) (country|countries|nation|nations|city|cities|state|states|province|town|colony)\b",
     ("GPE", "NORP", "LOC")),
    (r"\bwhere\b|\b(what|which) (region|place|continent|location|island|river|mountain|county|district|area|"
     r"airport|building|stadium|street)\b", PLACE_LIKE),
    (r"\b(what|which) (party|company|organi[sz]ation|agency|news agency|group|team|university|institution|"
     r"newspaper|outlet|government|firm|body|ministry|court)\b", ORG_LIKE),
    (r"\bwho(m|se)?\b|\b(what|which) (person|man|woman|leader|president|minister|king|queen|author|scientist)\b",
     PERSON_LIKE),
    (r"\bwhat language\b", ("LANGUAGE", "NORP")),
    (r"\b(what|which) (nationality|religion)\b", ("NORP",)),
]


# Words that shape a question rather than say what it is about; bm25s's English stopwords keep them.
QUESTION_FORM = frozenset("""what which who whom whose when where why how whatever whichever do does did doing done
has have had having can could would shall should will may might must is are was were be been being""".split())
# "How long", "how many": the measure asked about is the question's form too.
_HOW = re.compile(r"\bhow\s+(?:long|many|much|far|old|often|soon|big|large|tall|high|fast|heavy|deep|wide|late|early)\b",
                  re.I)


@dataclass(frozen=True)
class QuestionAnalysis:
    text: str
    expected: tuple[str, ...]  # span labels that fit, best first; empty means any noun phrase
    tokens: tuple[str, ...]  # stemmed content words (not the question's form: "what", "did", "how long"...)
    lemmas: frozenset[tuple[str, str]] = frozenset()  # its words' lemmas and parts of speech (rag/senses.py)


def without_outlet(question: str) -> str:
    """The fact a "which outlet reported ..." question is about: what to search for ("the 25-minute phone
    talks"); other questions are returned as they are."""
    stripped = " ".join(_OUTLET.sub(" ", question).split())
    return stripped if len(stripped) > 1 else question


# A capitalised "Who" after a word is part of a name ("Doctor Who"), not the question word.
_NAMED_WHO = re.compile(r"(?<=\w )Who\b")


def _asked(question: str) -> str:
    """The question lower-cased for the rules below, without a "Who" that is part of a name."""
    return _NAMED_WHO.sub("", question.strip()).lower()


def expected_labels(question: str) -> tuple[str, ...]:
    q = _asked(question)
    for pattern, labels in _RULES:
        if re.search(pattern, q):
            return labels
    return ()


NOUN_CLASSES = Path(__file__).parent / "data" / "noun_classes.tsv"  # made by bench/wordnet_tables.py
_CLASS_LABELS = {"person": PERSON_LIKE, "place": PLACE_LIKE}
# Nouns that ask for a measure: "What was the population of Warsaw?" wants a number.
_MEASURES = {
    **dict.fromkeys(("population", "number", "amount", "total", "count", "score"), NUMERIC),
    **dict.fromkeys(("ranking", "rank"), ("ORDINAL",)),
    **dict.fromkeys(("temperature", "speed", "size", "length", "height", "weight", "distance", "depth", "width"),
                    ("QUANTITY", "CARDINAL", "MONEY")),
    "rate": ("PERCENT", "CARDINAL", "QUANTITY"),
}
_NAMING = frozenset({"name", "term", "title", "word"})  # "What is the name of the teacher ...": the teacher


@lru_cache(maxsize=1)
def noun_classes() -> dict[str, str]:
    """WordNet's nouns that name a person or a place in their most frequent sense ("ceo" -> "person")."""
    return dict(line.split("\t") for line in NOUN_CLASSES.read_text().splitlines())


def asked_noun(doc):
    """The noun a what/which question asks for, from spaCy's parse: "What German poet ..." -> "poet", "What
    was the population of ..." -> "population", "What is the name of the teacher ..." -> "teacher"; None when
    it names no noun ("What did he say?")."""
    wh = next((t for t in doc if t.lower_ in ("what", "which") and t.tag_ in ("WDT", "WP")), None)
    if wh is None:
        return None
    if wh.dep_ == "det" and wh.head.pos_ in ("NOUN", "PROPN"):
        noun = wh.head
    elif wh.dep_ in ("attr", "nsubj"):
        noun = next((t for t in wh.head.children if t.dep_ in ("nsubj", "attr") and t is not wh
                     and t.pos_ == "NOUN"), None)
    else:
        return None
    if noun is not None and noun.lower_ in _NAMING:
        noun = next((c for p in noun.children if p.dep_ == "prep" and p.lower_ == "of"
                     for c in p.children if c.dep_ == "pobj"), None)
    return noun


def _singular(word: str, known) -> str:
    """The form of a plural noun that the table knows ("players" -> "player", "cities" -> "city")."""
    if word in known or not word.endswith("s"):
        return word
    for form in (word[:-3] + "y", word[:-2], word[:-1]):
        if form in known:
            return form
    return word


def noun_labels(doc) -> tuple[str, ...]:
    """The span labels that fit the noun a what/which question asks for: a person ("What German poet"), a
    place ("Which neighborhood") or a measure ("What was the population"); empty for any other noun and
    for a name ("the first Doctor Who serial"). XQuAD span F1 44.1 -> 44.6 (refitted)."""
    noun = asked_noun(doc)
    if noun is None or noun.pos_ == "PROPN" or noun.i > 0 and noun.text[:1].isupper():  # part of a name
        return ()
    measure = _MEASURES.get(_singular(noun.lower_, _MEASURES))
    if measure:
        return measure
    classes = noun_classes()
    return _CLASS_LABELS.get(classes.get(_singular(noun.lower_, classes), ""), ())


def analyze_question(question: str, parse: bool = True) -> QuestionAnalysis:
    """The question's expected answer type, content words and (with `parse`, via spaCy) the type of the noun
    it asks for and its lemmas."""
    doc = nlp.parse(question) if parse else None
    return QuestionAnalysis(
        text=question,
        expected=expected_labels(question) or (noun_labels(doc) if doc is not None else ()),
        tokens=tuple(dict.fromkeys(t for t in lexical.tokenize([_OUTLET.sub(" ", _HOW.sub(" ", question))])[0]
                                   if t not in _form_stems())),
        lemmas=senses.question_lemmas(doc) if doc is not None else frozenset(),
    )


@lru_cache(maxsize=1)
def _form_stems() -> frozenset[str]:
    """QUESTION_FORM as the tokenizer stems it ("does" -> "doe")."""
    return frozenset(t for tokens in lexical.tokenize(sorted(QUESTION_FORM)) for t in tokens)


_FOLLOW_UP = re.compile(r"\b(it|its|they|them|their|he|him|his|she|her|this|that|these|those|there|then)\b", re.I)


def is_follow_up(question: str) -> bool:
    """A question that leans on an earlier turn: it refers back with a pronoun or names nothing itself."""
    return bool(_FOLLOW_UP.search(question)) or len(lexical.tokenize([question])[0]) <= 1
