"""A memory-mapped bank lets its pages go as it is cut and read, so a long shot's render does not
hold its whole bank resident (issue 26: peak RSS +64% from 250 to 2,500 frames at 1080p); the
data stays whole."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lipdub.exemplar import bank as bank_module
from lipdub.exemplar.bank import RELEASE_EVERY, BankPart, release_pages

PAGE = 4096


def _resident_pages() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_released_pages_leave_the_resident_set_and_the_data_stays(tmp_path: Path):
    size = 64 * 2**20
    arr = np.lib.format.open_memmap(tmp_path / "p.npy", "w+", np.uint8, (size,))
    arr[:] = np.arange(size, dtype=np.uint64).astype(np.uint8)  # Touches every page.
    before = _resident_pages()
    release_pages(arr)
    after = _resident_pages()
    assert before - after > 0.5 * size / PAGE  # At least half the array left the resident set.
    assert np.array_equal(arr[::4097], np.arange(0, size, 4097, dtype=np.uint64).astype(np.uint8))
    reread = np.load(tmp_path / "p.npy", mmap_mode="r")
    assert int(reread[size - 1]) == (size - 1) % 256  # Written through to the file.


def test_an_in_memory_array_is_left_alone():
    arr = np.ones(10, np.uint8)
    release_pages(arr)  # No mapping: nothing to do, and no error.
    assert arr.sum() == 10


def test_reading_patches_lets_the_pages_go_every_release_every_reads(tmp_path, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(bank_module, "release_pages", lambda a: calls.append(1))
    n = 4
    patches = np.lib.format.open_memmap(tmp_path / "p.npy", "w+", np.uint8, (n, 8, 8, 3))
    patches[:] = np.arange(n, dtype=np.uint8)[:, None, None, None]
    part = BankPart(
        source="x",
        frames=np.arange(n),
        landmarks=np.zeros((n, 68, 2), np.float32),
        origins=np.zeros((n, 2), np.int32),
        sizes=np.full((n, 2), 8, np.int32),
        patches=patches,
        usable=np.ones(n, bool),
        light=np.zeros((n, 3), np.float32),
        sharp=np.ones(n, np.float32),
    )
    for k in range(2 * RELEASE_EVERY + 1):
        assert int(part.patch(k % n)[0, 0, 0]) == k % n
    assert len(calls) == 2
