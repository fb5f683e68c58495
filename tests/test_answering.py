"""The answerer on the seed corpus with the real models: verbatim quotes, corroboration, abstention, follow-ups."""
from __future__ import annotations

from pathlib import Path

import pytest

from rag import antonyms, embedding, places
from rag.answering import (DENSE_KNOT, AnswerSettings, find_candidates, same_answer, surface_evidence, text_terms,
                           topic_text)
from rag.retrieval import retrieve
from rag.questions import analyze_question, expected_labels, without_outlet
from rag.pipeline import Pipeline
from rag.types import Filters, Reply, Turn

pytestmark = pytest.mark.slow
QUESTIONS = [
    "Where are Ishiba and Lee scheduled to meet in mid-June?",
    "Who succeeded Yoon Suk Yeol as president of South Korea?",
    "Which country did Lee speak with before China?",
    "How many minutes did the phone talks last?",
    "When was Lee inaugurated?",
    "What did the Moon Jae-in administration prioritize?",
    "What is the GDP of South Korea?",
    "How long was the phone call between Ishiba and Lee?",
    "Who is Lee?", "?", "the", "<script>alert(1)</script>",
]


@pytest.fixture(scope="module")
def pipeline(seed_index_dir: Path) -> Pipeline:
    return Pipeline(index_dir=seed_index_dir)


def assert_verbatim(reply: Reply, pipeline: Pipeline) -> None:
    for answer in reply.answers:
        if answer.field != "text":  # an answer from the article's byline, source or date: no offsets
            assert answer.quote == answer.text == str(getattr(pipeline.article(answer.article.id), answer.field))
            assert answer.quote_start is answer.quote_end is answer.answer_start is answer.answer_end is None
            continue
        text = pipeline.article(answer.article.id).text
        assert text[answer.quote_start:answer.quote_end] == answer.quote
        assert text[answer.answer_start:answer.answer_end] == answer.text
        assert answer.quote_start <= answer.answer_start < answer.answer_end <= answer.quote_end
        assert 0.0 <= answer.score <= 1.0
        for other in answer.also_reported_by:
            assert pipeline.article(other.article.id).text[other.quote_start:other.quote_end] == other.quote


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_quote_and_span_is_a_verbatim_slice_of_its_article(pipeline: Pipeline, question: str) -> None:
    reply = pipeline.ask(question, top_k=10)
    assert_verbatim(reply, pipeline)
    scores = [a.score for a in reply.answers]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.xfail(reason="known gap of the reader-based answerer: for this wording the sentence that matches every "
                          "question word ('... after the phone call') outscores the 25-minute sentences", strict=False)
def test_call_length_is_25_minutes_citing_asahi_and_jiji(pipeline: Pipeline) -> None:
    reply = pipeline.ask("How long was the phone call between Ishiba and Lee?")
    assert not reply.no_answer
    best = reply.answers[0]
    assert "25" in best.text and "minute" in best.text
    cited = {best.article.source} | {o.article.source for o in best.also_reported_by}
    assert {"Asahi Shimbun", "Jiji Press"} <= cited
    assert all("25" not in a.text for a in reply.answers[1:]), "the same fact is one answer, not several"


def test_a_question_the_articles_do_not_answer_gets_no_answer(pipeline: Pipeline) -> None:
    reply = pipeline.ask("Who is the mayor of Osaka?")
    assert reply.no_answer
    assert all(a.weak for a in reply.answers)


def test_a_follow_up_is_answered_about_the_earlier_question(pipeline: Pipeline) -> None:
    history = [Turn("When did Ishiba and Lee first talk by phone?", "Monday")]
    reply = pipeline.ask("How long did it last?", history=history)
    assert not reply.no_answer
    assert "25" in reply.answers[0].text


@pytest.mark.xfail(reason="known gap: with one phone call in the corpus the reader answers '25 minutes' at a "
                          "score just over the threshold", strict=False)
def test_without_history_the_same_follow_up_is_not_about_the_call(pipeline: Pipeline) -> None:
    reply = pipeline.ask("How long did it last?")
    assert reply.no_answer or "25" not in reply.answers[0].text


def test_source_filter_restricts_answers_to_that_outlet(pipeline: Pipeline) -> None:
    reply = pipeline.ask("How long was the phone call between Ishiba and Lee?", filters=Filters(sources=("Asahi Shimbun",)))
    assert reply.answers
    assert {a.article.source for a in reply.answers} == {"Asahi Shimbun"}
    assert all(o.article.source == "Asahi Shimbun" for a in reply.answers for o in a.also_reported_by)


def test_date_filter_is_applied_before_ranking(pipeline: Pipeline) -> None:
    reply = pipeline.ask("What did Ishiba say about a summit?", top_k=10,
                         filters=Filters(since="2025-06-06", until="2025-06-10"))
    assert reply.answers
    assert all("2025-06-06" <= a.article.published <= "2025-06-10" for a in reply.answers)
    nothing = pipeline.ask("What did Ishiba say about a summit?", filters=Filters(since="2030-01-01"))
    assert nothing.no_answer and nothing.answers == []


@pytest.mark.parametrize("a, b, same", [
    ("about 25 minutes from noon", "25-minute", True),
    ("25 minutes", "30 minutes", False),
    ("the Democratic Party", "Democratic Party", True),
    ("Canada", "the Netherlands", False),
])
def test_answers_stating_one_value_are_recognised(a: str, b: str, same: bool) -> None:
    assert same_answer(a, b) is same


@pytest.mark.parametrize("question, first_label", [
    ("Who founded McKinsey & Company?", "PERSON"),
    ("When did the talks start?", "DATE"),
    ("How long did the call last?", "TIME"),
    ("How many years did the party rule?", "TIME"),  # a span of time: "three years" is a DATE, not a number
    ("How many parties ruled?", "CARDINAL"),
    ("What is the name of the first Doctor Who serial?", None),  # "Who" inside a name asks nothing
    ("The paintings were by artists of which nationality?", "NORP"),
    ("What is the percentage of gas stations that ran dry?", "PERCENT"),
])
def test_the_expected_answer_type_is_read_from_the_question_words(question: str, first_label) -> None:
    assert (expected_labels(question) or (None,))[0] == first_label


@pytest.mark.parametrize("question, first_label", [
    ("What German poet was descended from Huguenots?", "PERSON"),  # a poet is a person (WordNet)
    ("Which players were criticized for not jumping on the ball?", "PERSON"),  # plurals too
    ("What is the name of the spiritual teacher in Hinduism?", "PERSON"),  # the name of a person
    ("Which neighborhood lies west of the freeway?", "GPE"),
    ("What was the population of Warsaw in 1901?", "CARDINAL"),  # a measure asks for a number
    ("What ranking does the airport have?", "ORDINAL"),
    ("What is the name of the first Doctor Who serial?", None),  # "Doctor" is part of a name here
    ("What kind of region is it?", None),  # "kind" is not the plural of "kin"
    ("What satellite was used at the launch?", None),  # a thing: any noun phrase
    ("What did the administration prioritize?", None),  # no noun asked for
])
def test_the_noun_a_question_asks_for_gives_the_answer_type(question: str, first_label) -> None:
    assert expected_labels(question) == ()  # the question words alone do not type these
    assert (analyze_question(question).expected or (None,))[0] == first_label


def test_a_close_sentence_counts_by_how_far_its_cosine_exceeds_the_median(pipeline: Pipeline) -> None:
    question = "Where are Ishiba and Lee scheduled to meet in mid-June?"
    settings, index, vector = AnswerSettings(), pipeline.index(), embedding.embed_query(question)
    passages = retrieve(index, question, vector, settings.passages, None, settings.candidates, settings.fusion)
    candidates = find_candidates(index, passages, analyze_question(question), vector, settings)
    for c in candidates:
        assert c.evidence["dense_excess"] == pytest.approx(max(0.0, c.evidence["dense"] - DENSE_KNOT))
    assert candidates[0].evidence["dense_excess"] > 0.05  # "The two leaders could potentially meet at ..."
    assert any(c.evidence["dense_excess"] == 0 for c in candidates)


@pytest.mark.parametrize("question, sentence, turned", [
    ("What is the least critical resource?", "Time is the most critical resource.", True),
    ("How can graphs be encoded indirectly?", "Graphs can be encoded directly as matrices.", True),
    ("What is the most critical resource?", "Time is the most critical resource.", False),
    ("What worries Japan and South Korea?", "Concerns include North Korea.", False),  # names are not opposites
    ("Who was Emma's brother?", "Her brother was Richard and her sister was Anne.", False),  # the word is there too
])
def test_a_sentence_that_says_the_opposite_of_the_question_is_noticed(question: str, sentence: str,
                                                                     turned: bool) -> None:
    assert antonyms.turned_around(antonyms.stems(question), antonyms.stems(sentence)) is turned
    assert surface_evidence(question, sentence, set())["turned_around"] == float(turned)


@pytest.mark.parametrize("question, sentence, missing", [
    ("Which country did not attend the summit?", "Japan attended the summit.", True),
    ("Who never signed the treaty?", "Korea didn't sign the treaty.", False),  # the sentence negates too
    ("Who signed the treaty?", "Korea did not sign the treaty.", False),  # a sentence's "not" is no clue
    ("What problems cannot be solved in theory?", "Problems that can be solved in theory are tractable.", True),
])
def test_a_negation_the_sentence_lacks_is_noticed(question: str, sentence: str, missing: bool) -> None:
    assert surface_evidence(question, sentence, set())["negation_missing"] == float(missing)


@pytest.mark.parametrize("question, sentence, missing", [
    ("What earthquake caused $20 million in damage?", "It caused damage estimated at over $20 billion.", True),
    ("What fault can produce a magnitude 8.7 event?", "Faults produce magnitude 6.7+ quakes, some 8.0 events.", True),
    ("How many campuses did it have in 2014?", "From 2005 to 2014 it had two campuses.", False),
    ("Who paid 1,600 dollars?", "He paid 1600 dollars.", False),
])
def test_a_number_is_read_as_written(question: str, sentence: str, missing: bool) -> None:
    assert surface_evidence(question, sentence, set())["number_missing_sentence"] == float(missing)


@pytest.mark.parametrize("question, sentence, missing", [
    ("Who showed that if P=NQ then some problems are hard?", "Ladner showed that if P = NP then some are.", True),
    ("When did BSkyB launch its HD service?", "BSkyB's HD service launched in 2006.", False),
    ("How many original EU treaties protected rights?", "None of the European Union's treaties did.", False),
    ("Which MLS teams played in 2014?", "Two Major League Soccer teams played in 2014.", False),
])
def test_an_acronym_is_a_name_and_a_name_of_several_words_is_also_its_initials(question: str, sentence: str,
                                                                                missing: bool) -> None:
    assert surface_evidence(question, sentence, set())["name_missing_sentence"] == float(missing)


def test_a_name_said_another_way_is_not_missing_from_the_sentence() -> None:
    question, sentence = "How does Japan hope to stabilize relations?", "Tokyo is looking to stabilize relations."
    assert surface_evidence(question, sentence, set())["name_missing_sentence"] == 1.0
    others = places.other_names(sentence)
    assert surface_evidence(question, sentence, set(), others)["name_missing_sentence"] == 0.0


def test_a_name_the_article_is_about_is_not_missing_from_any_of_its_sentences() -> None:
    question = "Which trade policies led to economic stagnation in South Korea?"
    sentence = "The high-tariff policies of the Trump administration have led to economic stagnation."
    title = "Editorial: New S. Korean president urged to stabilize politics"
    lede = "Lee Jae-myung, leader of South Korea's Democratic Party, has won the presidential election."
    assert surface_evidence(question, sentence, set())["name_missing_sentence"] == 1.0
    topic = text_terms(topic_text(title, lede))
    assert surface_evidence(question, sentence, set(), "", frozenset(), topic)["name_missing_sentence"] == 0.0
    assert surface_evidence(question.replace("South Korea", "Japan"), sentence, set(), "", frozenset(),
                            topic)["name_missing_sentence"] == 1.0


def test_a_headline_names_its_country_for_every_sentence_of_the_article() -> None:
    topic = text_terms(topic_text("Japan Looks to Boost Trust with S. Korea's President Lee", ""))
    assert {"seoul", "tokyo"} <= topic  # "S. Korea" is South Korea, whose capital a question may name


def test_a_sentence_that_leaves_the_articles_country_unsaid_still_answers(pipeline: Pipeline) -> None:
    reply = pipeline.ask("Which trade policies led to economic stagnation in South Korea?")
    assert not reply.no_answer
    top = reply.answers[0]
    assert "high-tariff" in top.text and top.article.source == "The Mainichi"  # which trade policies: high-tariff
    assert "Korea" not in top.quote
    assert_verbatim(reply, pipeline)


def test_the_summit_timing_is_quoted_as_said(pipeline: Pipeline) -> None:
    reply = pipeline.ask("What did Ishiba tell reporters a summit meeting should be held?")
    assert reply.answers[0].text == "as soon as possible"
    assert_verbatim(reply, pipeline)


def test_which_outlet_reported_a_fact_is_answered_from_the_articles_source(pipeline: Pipeline) -> None:
    reply = pipeline.ask("Which news agency reported the 25-minute phone talks?")
    top = reply.answers[0]
    assert top.text == top.quote == "Jiji Press" and top.article.source == "Jiji Press"
    assert top.field == "source" and top.quote_start is None and top.answer_start is None
    assert len({a.article.id for a in reply.answers}) == len(reply.answers)


@pytest.mark.parametrize("question, fact", [
    ("Which news agency reported the 25-minute phone talks?", "the 25-minute phone talks?"),
    ("What newspaper said Lee won?", "Lee won?"),
    ("Which agency handles visas?", "Which agency handles visas?"),  # a government agency, not an outlet
])
def test_an_outlet_question_searches_for_the_fact_it_is_about(question: str, fact: str) -> None:
    assert without_outlet(question) == fact


def _article(corpus: Path, name: str, source: str, title: str, text: str) -> None:
    corpus.mkdir(exist_ok=True)
    (corpus / f"{name}.md").write_text(f"---\ntitle: {title}\nsource: {source}\npublished: 2025-06-10\n---\n{text}\n")


def test_a_second_article_of_the_same_outlet_is_not_corroboration(tmp_path: Path) -> None:
    from rag.index import build_index
    from rag.settings import Settings

    fact = "The ferry service between Busan and Fukuoka will resume on July 1 after a two-year pause."
    corpus = tmp_path / "corpus"
    _article(corpus, "a", "Harbor Times", "Ferry to resume", f"{fact} Tickets go on sale next week.")
    _article(corpus, "b", "Harbor Times", "Ferry service back", f"Officials confirmed it. {fact}")
    _article(corpus, "c", "Coast Daily", "Busan ferry returns", f"{fact} The operator hired new crews.")
    build_index(corpus, tmp_path / "index", Settings(), progress=False)
    reply = Pipeline(index_dir=tmp_path / "index").ask("When will the ferry between Busan and Fukuoka resume?")
    top = reply.answers[0]
    outlets = [o.article.source for o in (*top.also_reported_by, *top.carried_by)]  # these near-duplicates carry it
    assert top.article.source not in outlets
    assert len(outlets) == len(set(outlets))
    assert outlets == [({"Harbor Times", "Coast Daily"} - {top.article.source}).pop()]
