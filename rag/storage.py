"""Reading a build's large files by row, with `os.pread`, so that serving a big index costs little memory.

A memory map would be simpler, but every page it touches stays in the process's resident set, and this
kernel maps page cache in 2 MB pages: random row reads through a map made whole 2 MB pages resident,
and a 1M-chunk server grew by gigabytes with the variety of questions (bench/serve_memory.py). A pread
copies only the bytes asked for; the kernel's page cache still makes repeated reads cheap.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np


class DamagedFileError(ValueError):
    """A file whose size or header does not match what it must hold; the message starts with the file's name."""


class RowFile:
    """A .npy file (1-d or 2-d, C order) whose rows are read on demand: `rows[i]`, `rows[lo:hi]`, `rows[[i, ...]]`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = open(self.path, "rb")  # kept open: the build may be pruned while a request still reads it
        try:
            self._read_header()
        except BaseException:
            self._file.close()
            raise

    def _read_header(self) -> None:
        """Shape and dtype from the .npy header; the file's size must be exactly the header and every row."""
        version = np.lib.format.read_magic(self._file)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran_order, self.dtype = read_header(self._file)
        if fortran_order or len(shape) not in (1, 2):
            raise ValueError(f"{self.path}: expected a 1-d or 2-d C-order array, got shape {shape}")
        self.shape: tuple[int, ...] = shape
        self._row_shape = shape[1:]
        self._offset = self._file.tell()
        self._row_bytes = int(np.prod(self._row_shape, dtype=np.int64)) * self.dtype.itemsize
        size, expected = os.fstat(self._file.fileno()).st_size, self._offset + len(self) * self._row_bytes
        if size != expected:
            raise DamagedFileError(f"{self.path.name} holds {size} bytes, its {shape} array needs {expected}")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: int | slice | Iterable[int]) -> np.ndarray:
        if isinstance(key, (int, np.integer)):
            i = int(key) + (len(self) if key < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"row {key} out of range for {len(self)} rows")
            return self._read(i, i + 1)[0]
        if isinstance(key, slice):
            lo, hi, step = key.indices(len(self))
            if step != 1:
                raise ValueError("RowFile slices take no step")
            return self._read(lo, max(lo, hi))
        ids = np.asarray(key, dtype=np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self)):
            raise IndexError(f"rows out of range for {len(self)} rows")
        # One read per run of consecutive rows: a passage's sentences are neighbours.
        breaks = np.flatnonzero(np.diff(ids) != 1) + 1
        parts = [self._read(int(run[0]), int(run[-1]) + 1) for run in np.split(ids, breaks) if len(run)]
        return np.concatenate(parts) if parts else np.empty((0, *self._row_shape), self.dtype)

    def _read(self, lo: int, hi: int) -> np.ndarray:
        size = (hi - lo) * self._row_bytes
        data = os.pread(self._file.fileno(), size, self._offset + lo * self._row_bytes) if size else b""
        if len(data) != size:
            raise OSError(f"{self.path}: short read of rows {lo}:{hi}")
        return np.frombuffer(data, dtype=self.dtype).reshape(hi - lo, *self._row_shape)

    def close(self) -> None:
        self._file.close()


class TextFile:
    """Article texts stored one after another as UTF-8 (texts.bin), found by byte offsets (text_offsets.npy)."""

    def __init__(self, directory: Path) -> None:
        try:
            self._offsets = np.load(directory / "text_offsets.npy")
        except (OSError, ValueError) as error:
            raise DamagedFileError(f"text_offsets.npy: {error}") from None
        if self._offsets.ndim != 1 or not len(self._offsets) or self._offsets[0] != 0 or np.any(
                np.diff(self._offsets) < 0):
            raise DamagedFileError("text_offsets.npy holds no ascending offsets from 0")
        self._file = open(directory / "texts.bin", "rb")
        size = os.fstat(self._file.fileno()).st_size
        if size != int(self._offsets[-1]):
            self._file.close()
            raise DamagedFileError(f"texts.bin holds {size} bytes, text_offsets.npy says {int(self._offsets[-1])}")

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i: int) -> str:
        lo, hi = int(self._offsets[i]), int(self._offsets[i + 1])
        data = os.pread(self._file.fileno(), hi - lo, lo)
        if len(data) != hi - lo:
            raise OSError(f"{self._file.name}: short read of text {i}")
        return data.decode("utf-8")

    def close(self) -> None:
        self._file.close()


def write_texts(directory: Path, texts: Iterable[str]) -> None:
    """Write texts.bin and text_offsets.npy, the files TextFile reads."""
    offsets = [0]
    with open(directory / "texts.bin", "wb") as out:
        for text in texts:
            data = text.encode("utf-8")
            out.write(data)
            offsets.append(offsets[-1] + len(data))
    np.save(directory / "text_offsets.npy", np.array(offsets, dtype=np.int64))
