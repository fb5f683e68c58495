"""BM25 scoring from the saved postings, read with pread, gives bm25s's own scores."""
from __future__ import annotations

from pathlib import Path

import bm25s
import numpy as np

from rag import lexical

DOCS = [
    "Ishiba and Lee held their first phone talks, which lasted about 25 minutes.",
    "The leaders agreed to develop stable relations between Japan and South Korea.",
    "Lee Jae-myung won the presidential election after the impeachment of Yoon Suk Yeol.",
    "The Group of Seven summit in Canada takes place in mid-June.",
]


def test_postings_score_every_document_as_bm25s_does(tmp_path: Path) -> None:
    tokens = lexical.tokenize(DOCS)
    lexical.save_bm25(lexical.build_bm25(tokens), tmp_path / "bm25")
    reference = bm25s.BM25.load(str(tmp_path / "bm25"), show_progress=False)
    postings = lexical.load_bm25(tmp_path / "bm25")
    for query in ["How long were the phone talks?", "summit in Canada", "Lee Lee election", "unknown words only"]:
        query_tokens = lexical.tokenize([query])[0]
        ours = postings.get_scores(query_tokens)
        assert ours.shape == (len(DOCS),)
        assert np.allclose(ours, reference.get_scores(query_tokens), atol=1e-5)
    best = lexical.bm25_scores(postings, "How long were the phone talks?", len(DOCS))
    assert int(np.argmax(best)) == 0


def test_a_mask_zeroes_the_documents_it_excludes(tmp_path: Path) -> None:
    lexical.save_bm25(lexical.build_bm25(lexical.tokenize(DOCS)), tmp_path / "bm25")
    mask = np.array([0, 1, 1, 1], dtype=np.float32)
    scores = lexical.bm25_scores(lexical.load_bm25(tmp_path / "bm25"), "phone talks Lee", len(DOCS), mask)
    assert scores[0] == 0 and scores[2] > 0
