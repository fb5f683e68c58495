"""Word senses: a question that says the opposite of its sentence's words, or paraphrases them."""
from __future__ import annotations

import pytest

from rag import nlp, senses
from rag.answering import surface_evidence


def clues(question: str, sentence: str) -> tuple[bool, bool]:
    asked, said = senses.question_lemmas(nlp.parse(question)), senses.text_lemmas(sentence)
    return senses.says_opposite(asked, said), senses.paraphrases(asked, said)


def test_a_sentence_word_is_read_as_every_lemma_it_can_be() -> None:
    lemmas = senses.text_lemmas("The company lost most of its smaller customers.")
    assert {("lose", "v"), ("small", "a"), ("customer", "n")} <= lemmas
    assert not any(lemma == "company" for lemma, _ in senses.text_lemmas("Sky Company lost."))  # names stay out


@pytest.mark.parametrize("question, sentence", [
    ("What is harder to analyze?", "Such problems are easy to analyze."),  # a comparative, through its lemma
    ("How many subscribers were lost in two months?", "It gained 100,000 subscribers in two months."),
    ("What impact did the Normans have on modern Europe?", "The Normans shaped medieval Europe."),  # via a head
    ("When did Sky target men?", "Sky's campaign targeted women."),
])
def test_a_sentence_that_says_the_opposite_is_noticed(question: str, sentence: str) -> None:
    assert clues(question, sentence)[0]
    question_lemmas = senses.question_lemmas(nlp.parse(question))
    assert surface_evidence(question, sentence, set(), "", question_lemmas)["turned_around"] == 1.0


@pytest.mark.parametrize("question, sentence", [
    ("What is harder to analyze?", "Such problems are harder to analyze."),  # the same word
    ("What is easy or hard to analyze?", "Such problems are easy to analyze."),  # the question says both
    ("What is the upper house called?", "The upper and lower houses met."),  # the sentence says both
    ("When did the talks begin?", "The talks started on Monday."),  # a paraphrase is no opposite
])
def test_no_opposite_where_the_sentence_says_what_the_question_says(question: str, sentence: str) -> None:
    assert not clues(question, sentence)[0]


@pytest.mark.parametrize("question, sentence, paraphrased", [
    ("What is the model utilized in complexity theory?", "Turing machines are used in complexity theory.", True),
    ("How many dairy cows are there?", "It is home to 3 million dairy cattle.", True),  # a hypernym
    ("When did the talks begin?", "The talks started on Monday.", True),
    ("When did the talks begin?", "The talks began on Monday.", False),  # the same word is no paraphrase
    ("What did the surfer win?", "The skateboarder won a medal.", False),  # siblings are not the same thing
])
def test_a_question_that_paraphrases_the_sentence_is_noticed(question: str, sentence: str,
                                                             paraphrased: bool) -> None:
    assert clues(question, sentence)[1] is paraphrased
    question_lemmas = senses.question_lemmas(nlp.parse(question))
    assert surface_evidence(question, sentence, set(), "", question_lemmas)["paraphrased"] == float(paraphrased)
