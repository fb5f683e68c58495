"""The reader and its training data: windows, span decoding, labels, the loader that keeps test sets out."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rag import reader, train_reader
from rag.chunking import split_sentences
from rag.training_data import EVAL_DIR, TEST_FILES, TrainingQuestion, is_validation, load_training

HAVE_EVAL = (EVAL_DIR / "squad" / "train").is_dir()


def test_windows_are_every_pair_of_consecutive_sentences() -> None:
    sentences = [(0, 10), (11, 20), (21, 30)]
    assert reader.sentence_windows(sentences) == [(0, 20, 0), (11, 30, 1)]
    assert reader.sentence_windows(sentences[:1]) == [(0, 10, 0)]
    assert reader.sentence_windows([]) == []


def test_the_best_span_stays_inside_the_context_and_ends_after_it_starts() -> None:
    start = np.array([9.0, 1.0, 5.0, 0.0, 2.0])
    end = np.array([9.0, 0.0, 1.0, 4.0, 8.0])
    context = np.array([False, True, True, True, False])  # token 0 is "no answer", token 4 the question's
    first, last, score = reader.best_spans(start, end, context)
    assert (first, last, score) == (2, 3, 9.0)
    first, last, _ = reader.best_spans(start, end, context, max_tokens=1)
    assert first == last


def _question(context: str, answer: str | None) -> TrainingQuestion:
    answers = ((context.index(answer), answer),) if answer else ()
    return TrainingQuestion("q", "Where did the fleet anchor?", context, answers, "T", 0)


def test_an_answerable_question_gets_its_span_and_one_window_without_it(tokenizer) -> None:
    import random

    context = "The fleet sailed at dawn. It anchored off Malta. Storms followed. The crew rested."
    examples = train_reader.examples_for(_question(context, "off Malta"), random.Random(1))
    assert len(examples) == 2
    found, empty = examples
    assert found.text[found.answer[0]:found.answer[1]] == "off Malta"
    assert empty.answer is None and "Malta" not in empty.text
    rows = train_reader.tensors(tokenizer, examples)
    ids, _, (first, last) = rows[0]
    assert tokenizer.decode(ids[first:last + 1]).lower() == "off malta"
    assert rows[1][2] == (0, 0)


def test_an_unanswerable_question_is_labelled_no_answer_on_its_closest_window() -> None:
    import random

    context = "Bread rose in price. The fleet sailed at dawn. It anchored off Malta."
    (example,) = train_reader.examples_for(_question(context, None), random.Random(1))
    assert example.answer is None and "fleet" in example.text


@pytest.fixture(scope="module")
def tokenizer():
    return reader.base_model()[1]


@pytest.mark.skipif(not HAVE_EVAL, reason="../shared/eval is not here")
def test_the_training_questions_share_nothing_with_the_test_sets() -> None:
    questions = load_training()
    assert len(questions) > 17_000
    xquad = json.loads(TEST_FILES[0].read_text())["data"]
    squad_v2 = json.loads(TEST_FILES[1].read_text())["data"]
    test_contexts = {" ".join(p["context"].split()) for d in xquad + squad_v2 for p in d["paragraphs"]}
    assert not {" ".join(q.context.split()) for q in questions} & test_contexts
    assert not {q.title for q in questions} & {d["title"] for d in squad_v2}


@pytest.mark.skipif(not HAVE_EVAL, reason="../shared/eval is not here")
def test_the_validation_split_holds_whole_articles() -> None:
    train, validation = load_training(split="train"), load_training(split="validation")
    assert not {q.title for q in train} & {q.title for q in validation}
    assert all(is_validation(q.title) for q in validation)
    assert 0.05 < len(validation) / (len(train) + len(validation)) < 0.25


@pytest.mark.skipif(not HAVE_EVAL, reason="../shared/eval is not here")
def test_the_loader_refuses_a_training_file_holding_a_test_paragraph(tmp_path: Path) -> None:
    paragraph = json.loads(TEST_FILES[0].read_text())["data"][0]["paragraphs"][0]
    (tmp_path / "leak.json").write_text(json.dumps({"data": [{"title": "Anything", "paragraphs": [paragraph]}]}))
    with pytest.raises(ValueError, match="test set"):
        load_training(tmp_path)


@pytest.mark.skipif(not HAVE_EVAL, reason="../shared/eval is not here")
def test_the_loader_refuses_an_article_of_the_squad_v2_test_file(tmp_path: Path) -> None:
    title = json.loads(TEST_FILES[1].read_text())["data"][0]["title"]
    doc = {"title": title, "paragraphs": [{"context": "A new paragraph.", "qas": []}]}
    (tmp_path / "leak.json").write_text(json.dumps({"data": [doc]}))
    with pytest.raises(ValueError, match="test set"):
        load_training(tmp_path)


@pytest.mark.slow
def test_a_reader_trained_on_a_handful_of_questions_saves_loads_and_reads_inside_its_windows(tmp_path: Path) -> None:
    context = "The fleet sailed at dawn. It anchored off Malta. Storms followed. The crew rested."
    questions = [_question(context, "off Malta"), _question(context, None)] * 4
    model, windows = train_reader.train(questions, train_reader.TrainSettings(batch_size=4), log=lambda _: None)
    assert windows >= 8
    train_reader.save(model, tmp_path, {"settings": {}, "train_questions": 8, "train_windows": windows,
                                        "minutes": 0, "validation": {"questions": 0, "em": None, "f1": None,
                                                                     "no_answer_auc": None}})
    assert (tmp_path / "README.md").exists()
    assert (tmp_path / reader.WEIGHTS).stat().st_size < 50_000_000
    windows_read = [reader.Window(context[s:e], s, e) for s, e, _ in
                    reader.sentence_windows(split_sentences(context))]
    for reading in reader.read("Where did the fleet anchor?", windows_read, model_dir=tmp_path):
        assert reading.window.start <= reading.start < reading.end <= reading.window.end
    reader.get_reader.cache_clear()
