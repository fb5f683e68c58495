"""Sentence splitting and chunking: offsets are the source of truth."""
import pytest

from rag.chunking import chunk_sentences, split_sentences


def sentences_of(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.mark.parametrize("text, expected", [
    ("Japan Looks to Boost Trust with S. Korea's President Lee. He agreed.",
     ["Japan Looks to Boost Trust with S. Korea's President Lee.", "He agreed."]),
    ("It followed U.S. President Donald Trump on June 6. Ishiba spoke next.",
     ["It followed U.S. President Donald Trump on June 6.", "Ishiba spoke next."]),
    ("Ties with the U.S. The talks went well.", ["Ties with the U.S.", "The talks went well."]),
    ("News from Japan Jun. 9, 2025 16:21 (JST). Tokyo reacted.", ["News from Japan Jun. 9, 2025 16:21 (JST).",
                                                                   "Tokyo reacted."]),
    ("Mr. Lee met Dr. Kim in St. Louis. They talked.", ["Mr. Lee met Dr. Kim in St. Louis.", "They talked."]),
    ("'A summit should be held as soon as possible.' The two leaders could meet.",
     ["'A summit should be held as soon as possible.'", "The two leaders could meet."]),
    ('He said "we agree." Then he left.', ['He said "we agree."', "Then he left."]),
    ("Lee advocates 'pragmatic diplomacy' — prioritizing benefits. Is it real? Yes!",
     ["Lee advocates 'pragmatic diplomacy' — prioritizing benefits.", "Is it real?", "Yes!"]),
    ("Donald J. Trump spoke. Japan-U.S.-South Korea cooperation grew.",
     ["Donald J. Trump spoke.", "Japan-U.S.-South Korea cooperation grew."]),
    ("First paragraph without a stop\n\nSecond paragraph.", ["First paragraph without a stop", "Second paragraph."]),
    ("The case Brown v. Board of Education ended it. Roe v. Wade followed.",
     ["The case Brown v. Board of Education ended it.", "Roe v. Wade followed."]),
])
def test_splitter_copes_with_news_prose(text: str, expected: list[str]) -> None:
    assert sentences_of(text) == expected


def test_sentence_offsets_slice_the_text_without_surrounding_space() -> None:
    text = "  One sentence here.   Another one follows!\n\n  A third?  "
    for start, end in split_sentences(text):
        assert text[start:end] == text[start:end].strip() != ""


def test_chunks_are_runs_of_whole_sentences_within_the_size_limit() -> None:
    text = " ".join(f"Sentence number {i} is here." for i in range(30))
    sentences = split_sentences(text)
    chunks = chunk_sentences(sentences, max_chars=120, overlap=1)
    for start, end, ids in chunks:
        assert (start, end) == (sentences[ids[0]][0], sentences[ids[-1]][1])
        assert end - start <= 120
    covered = {i for _, _, ids in chunks for i in ids}
    assert covered == set(range(len(sentences)))


def test_consecutive_chunks_share_the_overlap_sentences() -> None:
    sentences = split_sentences(" ".join(f"Short sentence {i}." for i in range(12)))
    chunks = chunk_sentences(sentences, max_chars=60, overlap=1)
    for (_, _, first), (_, _, second) in zip(chunks, chunks[1:]):
        assert first[-1] == second[0]


def test_a_sentence_longer_than_the_limit_stands_alone() -> None:
    sentences = [(0, 500), (501, 520)]
    assert chunk_sentences(sentences, max_chars=100, overlap=0) == [(0, 500, (0,)), (501, 520, (1,))]


def test_chunk_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_chars must be >= 1, got 0"):
        chunk_sentences([(0, 1)], max_chars=0, overlap=0)
