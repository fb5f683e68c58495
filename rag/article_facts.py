"""Questions about an article itself: who wrote it ("byline"), which outlet reported it ("source"), when it was
published ("published"). The articles are those the answerer finds reporting the question's topic; the reply
quotes their field instead of their text."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from rag.questions import without_outlet
from rag.types import ARTICLE_FIELDS, Answer, Filters, Reply

_ARTICLE = r"(?:article|story|report|piece|editorial|column|item)s?"
# (field, pattern): the group "what" is the phrase that names the article, or the reported fact itself.
_ASKED = [
    ("byline", re.compile(rf"^who (?:wrote|authored|penned) (?P<what>.*\b{_ARTICLE}\b.*)", re.I)),
    ("byline", re.compile(r"^who (?:is|was|are|were) the (?:author|writer)s? of (?P<what>.+)", re.I)),
    ("source", re.compile(r"^who (?:first )?reported (?P<what>.+)", re.I)),
    ("published", re.compile(rf"^(?:when|(?:on )?what (?:date|day)) (?:was|were|did) (?P<what>.*\b{_ARTICLE}\b.*?)"
                             r"\s+(?:published|posted|written|publish|post|run|appear|come out)\W*$", re.I)),
]
# "the Yomiuri article about Ishiba's plans": what the article is about.
_ABOUT = re.compile(rf"\b{_ARTICLE}\s+(?:about|on|regarding|concerning|covering|reporting|saying|that)\s+(.+)", re.I)


def asked_field(question: str) -> tuple[str, str] | None:
    """The article field a question asks for and the topic to find the article by: "Who wrote the article about
    the summit?" -> ("byline", "the summit"); None for a question about what the articles say."""
    question = " ".join(question.split())
    outlet_topic = without_outlet(question)
    if outlet_topic != question:
        return "source", _topic(outlet_topic)
    for field, pattern in _ASKED:
        match = pattern.match(question)
        if match:
            what = match.group("what")
            about = _ABOUT.search(what)
            return field, _topic(about.group(1) if about else what)
    return None


def _topic(text: str) -> str:
    """The words to search with: no question mark, no leading "that"."""
    text = re.sub(r"^that\s+", "", text.strip(), flags=re.I)
    return text.rstrip(" ?!.")


def outlet_question(question: str, topic: str) -> str:
    """What the answerer is asked for a field question: which outlet reported the topic. Its answers are the
    articles that report it, scored for how surely they do (rag.answering's OUTLET path), and it searches with
    the topic alone. A question already in that form is asked in the user's words."""
    return question if without_outlet(question) != question else f"Which outlet reported {topic}?"


def outlet_aliases(source: str) -> list[str]:
    """How a question may name an outlet: "Yomiuri Shimbun", "The Mainichi" or "Mainichi", "Jiji Press" or "Jiji"."""
    name = source[4:] if source.lower().startswith("the ") else source
    names = [source, name]
    first = name.split()[0] if name.split() else ""
    if len(name.split()) > 1 and len(first) >= 4:
        names.append(first)
    return [n for n in dict.fromkeys(names) if n.strip()]


def named_outlets(question: str, sources: Iterable[str]) -> tuple[str, ...]:
    """The outlets among `sources` that a question names ("Who wrote the Yomiuri article ..."), as the
    catalog spells them."""
    return tuple(sorted(source for source in set(sources)
                        if any(re.search(rf"\b{re.escape(n)}\b", question) for n in outlet_aliases(source))))


def outlet_filters(question: str, sources: Iterable[str], filters: Filters | None) -> Filters | None:
    """The request's filters, narrowed to the outlets the question names when the request names none."""
    named = named_outlets(question, sources)
    if not named or filters is not None and filters.sources:
        return filters
    return replace(filters or Filters(), sources=named)


def field_answers(reply: Reply, field: str) -> Reply:
    """The reply to the topic turned into answers that quote each answering article's `field`: one per article
    and value, best first, skipping articles without it; no answer when none has it."""
    if field not in ARTICLE_FIELDS:
        raise ValueError(f"field must be one of {', '.join(ARTICLE_FIELDS)}, got {field!r}")
    answers: list[Answer] = []
    for answer in reply.answers:
        value = getattr(answer.article, field) or ""
        if not value or any(a.article.id == answer.article.id or a.text == value for a in answers):
            continue
        answers.append(Answer(text=value, quote=value, score=answer.score, article=answer.article,
                              quote_start=None, quote_end=None, answer_start=None, answer_end=None,
                              weak=answer.weak, field=field))
    return Reply(question=reply.question, no_answer=not answers or answers[0].weak, answers=answers,
                 took_ms=reply.took_ms)
