"""How sure the answerer is: the fitted models that rank sentences and score answers, read from rag/models/answerer/.

Two models, fitted by bench/fit_answerer.py on the training questions only (never on a test set):
- the sentence rank, linear over clues, picks the sentences whose windows the reader reads;
- the answer model turns an answer's evidence (the reader's logits, retrieval, word clues) into the
  probability that its quote answers the question. Gradient-boosted trees or a logistic regression,
  whichever won on the validation articles; the threshold below which an answer is "low" is stored with it.
Each model's feature names are stored beside its weights, so code and weights cannot drift apart.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

MODEL_DIR = Path(__file__).parent / "models" / "answerer"
MODEL_FILE = "answerer.json"


@dataclass(frozen=True)
class AnswerModel:
    rank_features: tuple[str, ...]
    rank_weights: np.ndarray
    features: tuple[str, ...]
    kind: str  # "logistic" or "trees"
    weights: np.ndarray | None  # logistic
    bias: float
    trees: Any  # a lightgbm.Booster
    threshold: float

    def rank(self, evidence: list[dict[str, float]]) -> np.ndarray:
        """Linear sentence-rank scores, one per evidence dict."""
        if not evidence:
            return np.zeros(0)
        return np.array([[e[n] for n in self.rank_features] for e in evidence]) @ self.rank_weights

    def probability(self, evidence: list[dict[str, float]]) -> np.ndarray:
        """The probability that each answer's quote answers the question."""
        if not evidence:
            return np.zeros(0)
        rows = np.array([[e[n] for n in self.features] for e in evidence], dtype=np.float64)
        if self.kind == "trees":
            return np.asarray(self.trees.predict(rows), dtype=np.float64)
        return 1 / (1 + np.exp(-np.clip(rows @ self.weights + self.bias, -50, 50)))


def from_dict(fit: dict) -> AnswerModel:
    answer = fit["answer"]
    trees = None
    if answer["kind"] == "trees":
        import lightgbm

        trees = lightgbm.Booster(model_str=answer["trees"])
    return AnswerModel(
        rank_features=tuple(fit["rank"]["features"]), rank_weights=np.asarray(fit["rank"]["weights"], dtype=np.float64),
        features=tuple(answer["features"]), kind=answer["kind"],
        weights=np.asarray(answer["weights"], dtype=np.float64) if answer.get("weights") is not None else None,
        bias=float(answer.get("bias", 0.0)), trees=trees, threshold=float(fit["threshold"]))


@lru_cache(maxsize=4)
def load(model_dir: Path = MODEL_DIR) -> AnswerModel:
    """The fitted models, read once per process."""
    path = model_dir / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(f"answer model missing: {path} (fit it with `make fit-answerer`)")
    return from_dict(json.loads(path.read_text()))
