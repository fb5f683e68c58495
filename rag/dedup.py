"""Near-duplicate articles: the same wire copy carried by several outlets with small edits.

Each text becomes a MinHash of its word shingles (datasketch); MinHash LSH finds the pairs whose estimated
Jaccard similarity may clear the threshold, and the estimate itself decides. Both articles stay in the index;
the later one (by published date, then id) records `duplicate_of`: the earliest article it is a near-duplicate
of. The threshold and shingle size were measured with bench/near_duplicates.py (see the README).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from datasketch import MinHash, MinHashLSH

from rag.types import Article

_WORD = re.compile(r"\w+")
NUM_PERM = 128  # hash functions per MinHash: a Jaccard estimate within about +-0.09 (two standard errors)
SCHEME = "affine32"  # datasketch's permutation scheme; sketches of two schemes cannot be compared


@dataclass(frozen=True)
class NearDuplicateSettings:
    """When two texts count as one story: estimated Jaccard similarity of their sets of `shingle_words`-word
    shingles at or above `threshold` (the defaults and their measurement are in rag/settings.py)."""

    threshold: float
    shingle_words: int

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.shingle_words < 1:
            raise ValueError(f"shingle_words must be >= 1, got {self.shingle_words}")

    def identity(self) -> dict:
        """What a build records, so that changing any of it recomputes `duplicate_of`."""
        return {"threshold": self.threshold, "shingle_words": self.shingle_words, "num_perm": NUM_PERM,
                "scheme": SCHEME}


def shingles(text: str, size: int) -> set[str]:
    """The text's runs of `size` consecutive lower-cased words (a text shorter than that is one shingle)."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + size]) for i in range(len(words) - size + 1)}


def signature(text: str, shingle_words: int) -> MinHash | None:
    """The MinHash of the text's shingles; None for a text without words."""
    found = shingles(text, shingle_words)
    if not found:
        return None
    minhash = MinHash(num_perm=NUM_PERM, scheme=SCHEME)
    minhash.update_batch([s.encode("utf-8") for s in found])
    return minhash


def similarity(a: str, b: str, shingle_words: int) -> float:
    """Estimated Jaccard similarity of two texts' shingles (0 when either has no words)."""
    sa, sb = signature(a, shingle_words), signature(b, shingle_words)
    return 0.0 if sa is None or sb is None else float(sa.jaccard(sb))


def _order(article: Article) -> tuple:
    """Earlier first: by published date (undated ones last), then id."""
    return article.published is None, article.published or "", article.id


def near_duplicates(articles: Iterable[Article], settings: NearDuplicateSettings) -> dict[str, str]:
    """Article id -> id of the earliest article it is a near-duplicate of, for every article that has one."""
    ordered = sorted(articles, key=_order)
    signatures = {a.id: signature(a.text, settings.shingle_words) for a in ordered}
    lsh = MinHashLSH(threshold=settings.threshold, num_perm=NUM_PERM)
    rank = {a.id: i for i, a in enumerate(ordered)}
    found: dict[str, str] = {}
    for article in ordered:
        minhash = signatures[article.id]
        if minhash is None:
            continue
        earlier = [other for other in lsh.query(minhash)
                   if signatures[other].jaccard(minhash) >= settings.threshold]
        if earlier:
            found[article.id] = min(earlier, key=rank.__getitem__)
        lsh.insert(article.id, minhash)
    return found


def mark_near_duplicates(articles: list[Article], settings: NearDuplicateSettings) -> list[Article]:
    """The articles, in the same order, each with `duplicate_of` set from this corpus (None when it has none)."""
    found = near_duplicates(articles, settings)
    return [a if a.duplicate_of == found.get(a.id) else replace(a, duplicate_of=found.get(a.id)) for a in articles]


def duplicate_group(article_id: str, duplicate_of: Callable[[str], str | None]) -> str:
    """The first article of the chain of near-duplicates `article_id` belongs to (itself when it is nobody's
    copy), following `duplicate_of(id)`: two articles of one group carry one report."""
    seen = {article_id}
    while (earlier := duplicate_of(article_id)) and earlier not in seen:
        seen.add(earlier)
        article_id = earlier
    return article_id
