"""Sentence splitting and chunking with character offsets (pure functions, no models)."""
from __future__ import annotations

import re

# Words that end with a period without ending a sentence in news prose ("Mr. Lee", "Jun. 9", "Gen. Park").
ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt ft gov sen rep gen lt col capt cmdr sgt adm maj pres supt rev hon
    jan feb mar apr jun jul aug sep sept oct nov dec no nos vs etc inc corp ltd co bros dept est approx
    fig vol op al e.g i.e a.m p.m v""".split()  # "v": "Brown v. Board of Education"
)
SPLITTER_VERSION = 2  # recorded in each index: when it changes, `rag index` re-embeds the articles it splits anew
# After a dotted acronym ("U.S."), these words start a new sentence; other capitalised words do not ("U.S. President").
SENTENCE_STARTERS = frozenset(
    """the a an he she it they we i you this that these those there but and or so yet however meanwhile
    in on at for as if when while after before his her its their our my some many most all both
    according still also then thus""".split()
)

_CANDIDATE = re.compile(r"[.!?]+['\"’”)\]]*(?=\s+['\"‘“(\[]?[A-Z0-9])|\n\s*\n")
_WORD_BEFORE = re.compile(r"([\w.]+)[.!?]+['\"’”)\]]*$")
_NEXT_WORD = re.compile(r"\s+['\"‘“(\[]?([\w]+)")


def _is_boundary(text: str, end: int) -> bool:
    """Decide whether a candidate at text[:end] really ends a sentence."""
    tail = text[max(0, end - 40):end]
    if tail.endswith(("!", "?")) or tail.rstrip("'\"’”)]").endswith(("!", "?")):
        return True
    match = _WORD_BEFORE.search(tail)
    if not match:
        return True
    word = match.group(1)
    bare = word.rstrip(".").lower()
    if bare in ABBREVIATIONS:
        return False
    if len(bare) == 1 and bare.isalpha() and word[0].isupper():
        return False  # an initial: "S. Korea", "Donald J. Trump"
    if "." in bare and all(len(part) <= 2 for part in bare.split(".")):
        # Dotted acronym such as "U.S." or "U.N.": ends a sentence only before a typical sentence opener.
        nxt = _NEXT_WORD.match(text, end)
        return bool(nxt) and nxt.group(1).lower() in SENTENCE_STARTERS
    return True


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Split text into sentences, returned as (start, end) offsets with surrounding whitespace trimmed."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _CANDIDATE.finditer(text):
        end = match.end()
        if match.group(0).strip() and not _is_boundary(text, end):
            continue
        spans.append((start, end))
        start = end
    spans.append((start, len(text)))
    return [trimmed for s, e in spans if (trimmed := _trim(text, s, e))]


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def chunk_sentences(
    sentences: list[tuple[int, int]], max_chars: int, overlap: int
) -> list[tuple[int, int, tuple[int, ...]]]:
    """Pack consecutive sentences into chunks of at most `max_chars` (a longer sentence stands alone).

    Returns (start, end, sentence positions) per chunk; consecutive chunks share `overlap` sentences
    so that a fact split across a chunk border is still seen whole by one chunk.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be >= 1, got {max_chars}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    chunks: list[tuple[int, int, tuple[int, ...]]] = []
    first = 0
    while first < len(sentences):
        last = first
        while last + 1 < len(sentences) and sentences[last + 1][1] - sentences[first][0] <= max_chars:
            last += 1
        chunks.append((sentences[first][0], sentences[last][1], tuple(range(first, last + 1))))
        if last + 1 >= len(sentences):
            break
        first = max(first + 1, last + 1 - overlap)
    return chunks
