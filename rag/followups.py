"""Follow-up questions made to stand alone: "he", "it" and a bare "the dates" are replaced by what the earlier
turns named, so that the question retrieved and analysed says whom and what it is about."""
from __future__ import annotations

from functools import lru_cache

from rag import nlp
from rag.questions import is_follow_up, noun_classes
from rag.types import Turn

LOOKBACK = 3  # earlier turns a pronoun may point into, most recent first
PERSON, THING, GROUP = "person", "thing", "group"
_PRONOUNS = {"he": PERSON, "him": PERSON, "his": PERSON, "she": PERSON, "her": PERSON,
             "it": THING, "its": THING, "they": GROUP, "them": GROUP, "their": GROUP}
_THING_LABELS = ("ORG", "GPE", "NORP")
_CLAUSES = ("ccomp", "csubj", "xcomp")
_BE = frozenset({"is", "are", "was", "were", "be", "'s", "'re"})


@lru_cache(maxsize=256)
def _parse(text: str):
    return nlp.parse(text)


def resolve(question: str, history: list[Turn]) -> str:
    """The question with its pronouns and bare definite references replaced from the earlier turns, most recent
    first; unchanged when it is no follow-up or nothing resolves (the answerer then searches with the last turn)."""
    turns = history[::-1][:LOOKBACK]
    if not turns:
        return question
    doc = _parse(question)
    bare = _bare_reference(doc)
    if bare is None and not is_follow_up(question):
        return question
    replacements = []
    for token in doc:
        kind = _PRONOUNS.get(token.lower_)
        if kind is None or _is_expletive(token):
            continue
        referent = next((r for turn in turns if (r := _referent(kind, turn))), None)
        if referent is None:
            continue
        if token.tag_ == "PRP$" or token.lower_ in ("his", "its", "their"):
            referent += "'s"
        if token.i == 0:
            referent = referent[0].upper() + referent[1:]
        replacements.append((token.idx, token.idx + len(token), referent))
    for start, end, text in reversed(replacements):
        question = question[:start] + text + question[end:]
    if replacements or bare is None:
        return question
    event = next((e for turn in turns if (e := _event(turn))), None)
    if event is None or event.lower().endswith(bare.root.lower_):
        return question
    return f"{question[:bare.end_char]} of {event}{question[bare.end_char:]}"


def _is_expletive(token) -> bool:
    """"it" that stands for a clause, not a thing: "Is it true that ...", "It is said that ..."."""
    if token.lower_ != "it":
        return False
    if token.dep_ == "expl":
        return True
    head = token.head
    return any(c.dep_ in _CLAUSES or c.dep_ in ("acomp", "attr") and any(g.dep_ in _CLAUSES for g in c.children)
               for c in head.children)


def _is_person_noun(token) -> bool:
    return noun_classes().get(nlp.token_lemma(token).lower()) == "person"


def _phrase(token) -> str:
    """A noun's whole phrase ("the Group of Seven summit", "Ishiba and Lee") with a prepositional phrase right
    after it ("wrote the article about the talks", where spaCy hangs "about" on the verb), and a leading "The"
    lower-cased since it goes mid-sentence."""
    doc = token.doc
    end = token.right_edge.i + 1
    if end < len(doc) and doc[end].dep_ == "prep" and doc[end].head == token.head:
        end = doc[end].right_edge.i + 1
    phrase = doc[token.left_edge.i:end]
    while len(phrase) > 1 and phrase[-1].is_punct:
        phrase = phrase[:-1]
    text = phrase.text
    return "the" + text[3:] if phrase[0].lower_ == "the" else text


def _noun_phrases(doc):
    """The question's subject, then its object: noun heads that name something (no pronouns or wh-words)."""
    heads = [t for t in doc if t.dep_ in ("nsubj", "nsubjpass")] + [t for t in doc if t.dep_ == "dobj"]
    return [t for t in heads if t.pos_ in ("NOUN", "PROPN")
            and not any(w.tag_ in ("WDT", "WP", "WP$") for w in t.subtree)]


def _person(doc):
    """The person a question names: a PERSON entity (the subject's first), or a subject like "South Korea's
    president"."""
    people = [e for e in doc.ents if e.label_ == "PERSON"]
    people.sort(key=lambda e: e.root.dep_ not in ("nsubj", "nsubjpass"))
    if people:
        return people[0].text
    noun = next((t for t in _noun_phrases(doc) if t.pos_ == "NOUN" and _is_person_noun(t)), None)
    return _phrase(noun) if noun is not None else None


def _thing(doc, group: bool):
    """What "it" (or with `group`, "they") stands for: for "they" a coordinated or plural phrase ("Ishiba and
    Lee"); an event; the subject or object phrase unless it names a person; an organisation or place."""
    if group:
        many = next((t for t in _noun_phrases(doc) if _coordinated(t) or t.tag_ in ("NNS", "NNPS")), None)
        if many is not None:
            return _phrase(many)
    events = [e.text for e in doc.ents if e.label_ == "EVENT"]
    if events:
        return events[0]
    people = {t.i for e in doc.ents if e.label_ == "PERSON" for t in e}
    noun = next((t for t in _noun_phrases(doc) if t.i not in people and not _is_person_noun(t)
                 and not _coordinated(t)), None)
    if noun is not None:
        return _phrase(noun)
    return next((e.text for e in doc.ents if e.label_ in _THING_LABELS and not _coordinated(e.root)), None)


def _coordinated(token) -> bool:
    """Part of "Ishiba and Lee": not what a singular "it" means."""
    return token.dep_ == "conj" or any(c.dep_ == "conj" for c in token.children)


def _referent(kind: str, turn: Turn) -> str | None:
    """Whom or what a pronoun of `kind` points at in one earlier turn. After a "who" question the person is
    its answer ("Who succeeded Yoon?" "Lee Jae-myung." "When did he take office?")."""
    question = _parse(turn.question)
    if kind == PERSON:
        if turn.answer and any(t.lower_ in ("who", "whom") for t in question):
            answer = _parse(turn.answer)
            person = next((e.text for e in answer.ents if e.label_ == "PERSON"), None)
            if person:
                return person
        return _person(question)
    return _thing(question, group=kind == GROUP)


def _bare_reference(doc):
    """The noun chunk of a question that only asks for "the" something, saying nothing of what it belongs to
    ("What were the dates?", "Where was the venue?"); None for any other question ("Who won the election?")."""
    chunks = [c for c in doc.noun_chunks if c.root.pos_ in ("NOUN", "PROPN")]
    if doc.ents or len(chunks) != 1:
        return None
    chunk = chunks[0]
    root = chunk.root
    if len(chunk) != 2 or chunk[0].lower_ != "the" or root.dep_ not in ("nsubj", "attr") or root.head.dep_ != "ROOT":
        return None
    if any(c.dep_ == "prep" for c in root.children) or root.head.lower_ not in _BE:
        return None
    return chunk


def _event(turn: Turn) -> str | None:
    """The event an earlier turn is about: an EVENT its answer or question names; else its answer when that is
    a thing, not a date or a person ("the Group of Seven summit in Canada"); else its question's subject or
    object, likewise ("When will the summit be held?")."""
    for text in (turn.answer, turn.question):
        if text:
            event = next((e.text for e in _parse(text).ents if e.label_ == "EVENT"), None)
            if event:
                return event
    nouns = [t for t in _parse(turn.answer) if t.dep_ == "ROOT"] if turn.answer else []
    nouns += _noun_phrases(_parse(turn.question))
    noun = next((t for t in nouns if t.pos_ == "NOUN" and not t.ent_type_ and not _is_person_noun(t)), None)
    return _phrase(noun) if noun is not None else None
