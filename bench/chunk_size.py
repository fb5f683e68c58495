"""Retrieval quality on TIME by chunk size: the measurement behind the default `chunk_max_chars`.

TIME's articles are long (3,580 characters on average), so the chunk size decides how much of each the
model sees at once. Each size is a separate cached index (the 600 one is bench/retrieval.py's).

Usage: .venv/bin/python bench/chunk_size.py [--sizes 300,600,1000] [--json PATH]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import beir
from corpora import markdown_table
from retrieval import K, label, prepare, score, top

from rag.answering import AnswerSettings  # noqa: E402
from rag.retrieval import fuse  # noqa: E402
from rag.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="300,600,1000", help="comma-separated chunk_max_chars values")
    parser.add_argument("--json", type=Path, help="save the results here")
    args = parser.parse_args()
    dataset = beir.load("time_news_1963")
    defaults = AnswerSettings()
    n, fusion = defaults.candidates, defaults.fusion
    rows = []
    for size in (int(part) for part in args.sizes.split(",")):
        name = "time_news_1963" if size == Settings().chunk_max_chars else f"time_news_1963-chunks{size}"
        qs = prepare("time_news_1963", dataset, name, n, Settings(chunk_max_chars=size))
        for method, rank in (("dense", lambda d, s: list(top(d, n))), ("bm25", lambda d, s: list(top(s, n))),
                             (label(fusion), lambda d, s: [i for i, _ in fuse(top(d, n), top(s, n), fusion)])):
            rows.append({"chunk_max_chars": size, "chunks": len(qs.index.chunk_table), "method": method,
                         **score(qs, rank)})
    print(f"## Chunk size on TIME ({len(dataset.docs)} articles), nDCG@{K} and recall@{K}\n")
    print(markdown_table(["chunk_max_chars", "chunks", "method", f"nDCG@{K}", f"recall@{K}"],
                         [[r["chunk_max_chars"], r["chunks"], r["method"], r[f"ndcg@{K}"], r[f"recall@{K}"]]
                          for r in rows]))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
