"""Row reads from a build's files: the same values a full load gives, without mapping the file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rag.storage import RowFile, TextFile, write_texts


@pytest.fixture
def table(tmp_path: Path) -> tuple[np.ndarray, RowFile]:
    array = np.arange(40 * 3, dtype=np.int32).reshape(40, 3)
    np.save(tmp_path / "table.npy", array)
    return array, RowFile(tmp_path / "table.npy")


def test_rows_read_by_index_slice_and_list_equal_the_loaded_array(table) -> None:
    array, rows = table
    assert len(rows) == 40 and rows.shape == (40, 3) and rows.dtype == np.int32
    assert np.array_equal(rows[7], array[7])
    assert np.array_equal(rows[-1], array[-1])
    assert np.array_equal(rows[5:9], array[5:9])
    assert np.array_equal(rows[:], array)
    assert rows[9:5].shape == (0, 3)
    ids = [3, 4, 5, 20, 2, 2, 39]  # runs, a step back, a repeat
    assert np.array_equal(rows[ids], array[ids])
    assert rows[[]].shape == (0, 3)


def test_rows_out_of_range_raise(table) -> None:
    _, rows = table
    with pytest.raises(IndexError):
        rows[40]
    with pytest.raises(IndexError):
        rows[[1, 40]]


def test_vectors_read_as_float32_rows(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).standard_normal((10, 384)).astype(np.float32)
    np.save(tmp_path / "v.npy", vectors)
    rows = RowFile(tmp_path / "v.npy")
    assert np.array_equal(rows[[8, 9, 0]], vectors[[8, 9, 0]])
    assert float(rows[3] @ vectors[3]) == pytest.approx(float(vectors[3] @ vectors[3]))


def test_texts_round_trip_with_any_characters(tmp_path: Path) -> None:
    texts = ["Ishiba and Lee", "", "李在明 met 石破茂 — “25 minutes”", "emoji 🇯🇵 and accents é"]
    write_texts(tmp_path, iter(texts))
    stored = TextFile(tmp_path)
    assert len(stored) == 4
    assert [stored[i] for i in range(4)] == texts


def test_one_dimensional_files_read_as_values(tmp_path: Path) -> None:
    values = np.linspace(0, 1, 25, dtype=np.float32)
    np.save(tmp_path / "v.npy", values)
    rows = RowFile(tmp_path / "v.npy")
    assert rows[3] == values[3]
    assert np.array_equal(rows[4:9], values[4:9])
    assert np.array_equal(rows[[1, 2, 24]], values[[1, 2, 24]])
