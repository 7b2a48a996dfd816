"""The region store that hands QC the masks the paste computed: what goes in comes out, from
several writer threads, and the file goes on close."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from lipdub.render.region_store import RegionStore


def _mask(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.random((5 + i % 7, 9 + i % 5)).astype(np.float32)


def test_regions_come_back_as_put_from_many_threads(tmp_path: Path):
    with RegionStore(tmp_path / "regions.bin") as store:

        def put(i: int) -> None:
            mask = _mask(i)
            store.put(i, (i, i + 1, i + 9 + i % 5, i + 6 + i % 7), mask)
            mask[:] = -1  # The caller may change its mask afterwards.

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(put, range(200)))
        assert len(store) == 200
        for i in (0, 1, 57, 199):
            found = store.get(i)
            assert found is not None
            box, mask = found
            assert box == (i, i + 1, i + 9 + i % 5, i + 6 + i % 7)
            assert mask.dtype == np.float32 and np.array_equal(mask, _mask(i))
            mask[0, 0] = 2.0  # Writable, and a copy.
        assert store.get(200) is None
    assert not (tmp_path / "regions.bin").exists()
    assert store.get(0) is None


def test_a_region_is_a_2d_mask(tmp_path: Path):
    with RegionStore(tmp_path / "r.bin") as store, pytest.raises(ValueError, match=r"\(h, w\)"):
        store.put(0, (0, 0, 2, 2), np.zeros((2, 2, 3), np.float32))
