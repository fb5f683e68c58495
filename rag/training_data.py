"""The training questions: SQuAD-format files in `../shared/eval/squad/train/`, split by article.

XQuAD and the 5-article SQuAD v2 file are test sets: `load_training` refuses any paragraph of the first
and any article of the second, so nothing learned can have seen them.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

EVAL_DIR = Path(__file__).resolve().parents[2] / "shared" / "eval"
TRAIN_DIR = EVAL_DIR / "squad" / "train"
TEST_FILES = (EVAL_DIR / "squad" / "xquad.en.json", EVAL_DIR / "squad" / "squad_v2_dev_5articles.json")
VALIDATION_SHARE = 0.12  # of the articles, chosen by a hash of the title (stable across runs and machines)


@dataclass(frozen=True)
class TrainingQuestion:
    id: str
    question: str
    context: str
    answers: tuple[tuple[int, str], ...]  # (start, text) in `context`; empty: unanswerable
    title: str  # the Wikipedia article: the unit of the validation split
    paragraph: int  # the paragraph's number within its file's article


def is_validation(title: str) -> bool:
    """Whether an article belongs to the validation split (about VALIDATION_SHARE of them)."""
    digest = hashlib.sha256(title.encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < VALIDATION_SHARE


def _test_fingerprints(test_files: tuple[Path, ...]) -> tuple[set[str], set[str]]:
    """The test sets' paragraph texts (XQuAD shares article titles with the training files, never a
    paragraph) and the titles of the SQuAD v2 test articles (never shared at all)."""
    contexts, titles = set(), set()
    for path in test_files:
        data = json.loads(path.read_text())["data"]
        for doc in data:
            if "v2" in path.name:
                titles.add(doc["title"])
            contexts.update(" ".join(p["context"].split()) for p in doc["paragraphs"])
    return contexts, titles


def load_training(train_dir: Path = TRAIN_DIR, test_files: tuple[Path, ...] = TEST_FILES,
                  split: str | None = None) -> list[TrainingQuestion]:
    """Every training question (or only `split`: "train" or "validation"), never one of a test set."""
    if split not in (None, "train", "validation"):
        raise ValueError(f"split must be 'train', 'validation' or None, got {split!r}")
    files = sorted(train_dir.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"no SQuAD-format .json files in {train_dir}")
    test_contexts, test_titles = _test_fingerprints(test_files)
    questions = []
    for path in files:
        for doc in json.loads(path.read_text())["data"]:
            title = doc["title"]
            if title in test_titles:
                raise ValueError(f"{path.name}: article {title!r} is in a test set")
            if split is not None and is_validation(title) != (split == "validation"):
                continue
            for number, paragraph in enumerate(doc["paragraphs"]):
                context = paragraph["context"]
                if " ".join(context.split()) in test_contexts:
                    raise ValueError(f"{path.name}: a paragraph of {title!r} is in a test set")
                for qa in paragraph["qas"]:
                    answers = () if qa.get("is_impossible") or not qa["answers"] else tuple(
                        (a["answer_start"], a["text"]) for a in qa["answers"])
                    questions.append(TrainingQuestion(qa["id"], qa["question"], context, answers, title, number))
    return questions
