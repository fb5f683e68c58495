"""Questions about an article itself (who wrote it, which outlet reported it, when it was published), answered
from the article's own byline, source and date."""
from __future__ import annotations

from pathlib import Path

import pytest

from rag.article_facts import asked_field, field_answers, named_outlets
from rag.pipeline import Pipeline
from rag.types import Answer, Article, Reply

ASAHI = "Asahi Shimbun"
SOURCES = ("Asahi Shimbun", "Jiji Press", "The Mainichi", "Yomiuri Shimbun", "The New York Times")


@pytest.mark.parametrize("question, asked", [
    ("Who wrote the Yomiuri article about Ishiba seeking an early summit?",
     ("byline", "Ishiba seeking an early summit")),
    ("Who is the author of the article about Lee's pragmatic diplomacy?", ("byline", "Lee's pragmatic diplomacy")),
    ("Which news agency reported that Ishiba and Lee agreed to develop stable ties?",
     ("source", "Ishiba and Lee agreed to develop stable ties")),
    ("What newspaper reported the 25-minute phone talks?", ("source", "the 25-minute phone talks")),
    ("Who reported that Lee spoke with Ishiba before China?", ("source", "Lee spoke with Ishiba before China")),
    ("When was the Jiji Press article about the phone talks published?", ("published", "the phone talks")),
    ("What date was the story on Lee's inauguration published?", ("published", "Lee's inauguration")),
])
def test_a_question_about_an_article_asks_for_its_field_and_names_its_topic(question: str,
                                                                            asked: tuple[str, str]) -> None:
    assert asked_field(question) == asked


@pytest.mark.parametrize("question", [
    "How long was the phone call between Ishiba and Lee?",
    "When was Lee inaugurated?",
    "Who wrote the letter?",  # a letter in the news, not the article
    "Which agency handles visas?",
])
def test_a_question_about_what_the_articles_say_asks_for_no_field(question: str) -> None:
    assert asked_field(question) is None


def test_a_question_names_an_outlet_by_its_short_name() -> None:
    assert named_outlets("Who wrote the Yomiuri article about the summit?", SOURCES) == ("Yomiuri Shimbun",)
    assert named_outlets("When did Mainichi publish it?", SOURCES) == ("The Mainichi",)
    assert named_outlets("New talks began: who reported them?", SOURCES) == ()  # "New" is too short a name


def _article(article_id: str, byline: str | None) -> Article:
    return Article(id=article_id, title="Talks", source=ASAHI, text="Talks resumed.", published="2025-06-10",
                   byline=byline)


def _text_answer(article: Article, score: float, weak: bool = False) -> Answer:
    return Answer(text="Talks", quote="Talks resumed.", score=score, article=article, quote_start=0, quote_end=14,
                  answer_start=0, answer_end=5, weak=weak)


def test_field_answers_quote_each_articles_field_once_and_skip_articles_without_it() -> None:
    first, unsigned, second = _article("a", "Kei Kobayashi"), _article("b", None), _article("c", "Akihiko Kaise")
    reply = Reply("Who wrote it?", False, [_text_answer(first, 0.9), _text_answer(first, 0.8),
                                            _text_answer(unsigned, 0.7), _text_answer(second, 0.3, weak=True)])
    answers = field_answers(reply, "byline").answers
    assert [(a.text, a.quote, a.article.id, a.score, a.confidence) for a in answers] == [
        ("Kei Kobayashi", "Kei Kobayashi", "a", 0.9, "high"), ("Akihiko Kaise", "Akihiko Kaise", "c", 0.3, "low")]
    assert all(a.field == "byline" and a.quote_start is a.answer_end is None and not a.also_reported_by
               for a in answers)


def test_no_article_with_the_field_is_no_answer() -> None:
    reply = field_answers(Reply("Who wrote it?", False, [_text_answer(_article("b", None), 0.9)]), "byline")
    assert reply.no_answer and reply.answers == []
    with pytest.raises(ValueError, match="url"):
        field_answers(reply, "url")


@pytest.fixture(scope="module")
def pipeline(seed_index_dir: Path) -> Pipeline:
    return Pipeline(index_dir=seed_index_dir)


@pytest.mark.slow
def test_who_wrote_an_article_is_its_byline(pipeline: Pipeline) -> None:
    question = "Who wrote the Asahi article about the first phone talks?"
    reply = pipeline.ask(question)
    assert reply.question == question
    top = reply.answers[0]
    assert (top.text, top.quote, top.field) == ("Kei Kobayashi, and correspondent Akihiko Kaise",) * 2 + ("byline",)
    assert top.article.source == ASAHI and top.article.byline == pipeline.article(top.article.id).byline
    assert (top.quote_start, top.quote_end, top.answer_start, top.answer_end) == (None, None, None, None)


@pytest.mark.slow
def test_who_wrote_an_article_without_a_byline_is_no_answer(pipeline: Pipeline) -> None:
    # No Yomiuri article is signed; Asahi's byline is not the answer, since the question names the Yomiuri.
    reply = pipeline.ask("Who wrote the Yomiuri article about Ishiba seeking an early summit?")
    assert reply.no_answer and reply.answers == []


@pytest.mark.slow
def test_when_an_article_was_published_is_its_date(pipeline: Pipeline) -> None:
    reply = pipeline.ask("When was the Jiji Press article about the phone talks published?")
    top = reply.answers[0]
    assert (top.text, top.quote, top.field) == ("2025-06-09", "2025-06-09", "published")
    assert top.article.source == "Jiji Press"
    assert (top.quote_start, top.quote_end, top.answer_start, top.answer_end) == (None, None, None, None)


@pytest.mark.slow
def test_which_outlet_reported_a_fact_is_the_reporting_articles_source(pipeline: Pipeline) -> None:
    reply = pipeline.ask("Which news agency reported that Ishiba and Lee agreed to develop stable ties?")
    top = reply.answers[0]
    assert (top.text, top.field, top.article.source) == ("Jiji Press", "source", "Jiji Press")
    assert top.quote_start is None and top.also_reported_by == ()
    assert len({a.text for a in reply.answers}) == len(reply.answers)
