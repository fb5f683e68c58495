"""Near-duplicate detection: the measurement behind the default shingle size and Jaccard threshold.

Positives: each seed article against copies of itself edited the way a paper edits wire copy (a dateline of its
own, a few words changed, the last sentence cut, a sentence of its own added, and all of these at once).
Negatives: the seed articles against each other (four of the five report the same Ishiba-Lee phone call, two
are by one outlet) and every pair of TIME's 423 world-news articles of 1963 (many weeks on the same events).
For each shingle size it prints the lowest estimated Jaccard similarity of a positive pair and the highest of
a negative one; a threshold between them with room on both sides separates them.

Usage: .venv/bin/python bench/near_duplicates.py [--sizes 1,2,3,4,5] [--json PATH]
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import beir  # noqa: E402
from rag.chunking import split_sentences  # noqa: E402
from rag.dedup import near_duplicates, signature  # noqa: E402
from rag.index import near_duplicate_settings  # noqa: E402
from rag.ingest import scan_corpus  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.types import Article  # noqa: E402

DATELINE = "SEOUL, June 10 (Harbor Wire) -- "
OWN_SENTENCE = "The talks were watched closely in Busan, where local exporters hope for calmer relations with Japan."


def replace_words(text: str, count: int) -> str:
    """`count` words at evenly spaced places replaced by another word (what matters to shingles is only that
    the word differs)."""
    words = text.split(" ")
    for i in np.linspace(0, len(words) - 1, count + 2)[1:-1].round().astype(int):
        words[i] = "reportedly"
    return " ".join(words)


def drop_last_sentence(text: str) -> str:
    return text[:split_sentences(text)[-1][0]].rstrip()


def insert_sentence(text: str) -> str:
    end = split_sentences(text)[0][1]
    return f"{text[:end]} {OWN_SENTENCE}{text[end:]}"


EDITS: dict[str, Callable[[str], str]] = {
    "own dateline": lambda t: DATELINE + t,
    "3 words changed": lambda t: replace_words(t, 3),
    "10 words changed": lambda t: replace_words(t, 10),
    "last sentence cut": drop_last_sentence,
    "a sentence added": insert_sentence,
    "all at once (5 words)": lambda t: DATELINE + insert_sentence(drop_last_sentence(replace_words(t, 5))),
}


def jaccard(a: str, b: str, size: int) -> float:
    return float(signature(a, size).jaccard(signature(b, size)))


def measure(seed: list[Article], time_texts: list[str], size: int) -> dict:
    positives = {name: min(jaccard(a.text, edit(a.text), size) for a in seed) for name, edit in EDITS.items()}
    seed_pairs = {(a.id[:30], b.id[:30]): jaccard(a.text, b.text, size) for a, b in itertools.combinations(seed, 2)}
    started = time.perf_counter()
    signatures = [signature(t, size) for t in time_texts]
    seconds = time.perf_counter() - started
    values = np.array([s.hashvalues for s in signatures])
    time_max = max(float(np.mean(values[i] == values[i + 1:], axis=1).max()) for i in range(len(values) - 1))
    low, high = min(positives.values()), max(max(seed_pairs.values()), time_max)
    return {"shingle_words": size, "positives": positives, "lowest_positive": low,
            "seed_pairs": {f"{a} / {b}": v for (a, b), v in seed_pairs.items()},
            "highest_seed_pair": max(seed_pairs.values()), "highest_time_pair": time_max, "gap": low - high,
            "signature_ms_per_article": 1000 * seconds / len(time_texts)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,2,3,4,5", help="comma-separated shingle sizes in words")
    parser.add_argument("--json", type=Path, help="save the results here")
    args = parser.parse_args()
    seed = scan_corpus(ROOT / "corpus").articles
    time_texts = [d.text for d in beir.load("time_news_1963").docs]
    results = [measure(seed, time_texts, int(size)) for size in args.sizes.split(",")]
    print("| shingle words | " + " | ".join(EDITS) + " | lowest edited copy | highest seed pair | highest TIME pair "
          "| gap | MinHash ms/article |")
    print("|---" * (len(EDITS) + 6) + "|")
    for r in results:
        print(f"| {r['shingle_words']} | " + " | ".join(f"{v:.2f}" for v in r["positives"].values())
              + f" | {r['lowest_positive']:.2f} | {r['highest_seed_pair']:.2f} | {r['highest_time_pair']:.2f} "
                f"| {r['gap']:.2f} | {r['signature_ms_per_article']:.2f} |")
    defaults = near_duplicate_settings(Settings())
    copies = [Article(f"{a.id}-copy", a.title, a.source, EDITS["all at once (5 words)"](a.text), a.published)
              for a in seed]
    found = near_duplicates([*seed, *copies], defaults)
    print(f"\ndefaults {defaults}: {len(found)} of {len(copies)} edited copies found, "
          f"{sum(not k.endswith('-copy') for k in found)} seed articles marked")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
