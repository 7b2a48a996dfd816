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


def test_source_crops_come_back_beside_their_masks(tmp_path: Path):
    rng = np.random.default_rng(7)
    with RegionStore(tmp_path / "r.bin") as store:
        crops = {}
        for i in range(20):
            crops[i] = rng.integers(0, 256, (4 + i % 3, 6 + i % 4, 3), dtype=np.uint8)
            h, w = crops[i].shape[:2]
            store.put(i, (1, 1, 4, 3), _mask(i), crops[i], (i, 2 * i, i + w, 2 * i + h))
        store.put(20, (0, 0, 9, 5), _mask(20))  # A mask with no source crop.
        for i in (0, 7, 19):
            found = store.source(i)
            assert found is not None
            box, crop = found
            h, w = crops[i].shape[:2]
            assert box == (i, 2 * i, i + w, 2 * i + h)
            assert crop.dtype == np.uint8 and np.array_equal(crop, crops[i])
            got = store.get(i)
            assert got is not None and np.array_equal(got[1], _mask(i))
        assert store.source(20) is None and store.get(20) is not None
        assert store.source(21) is None
        with pytest.raises(ValueError, match="source crop of box"):
            store.put(22, (0, 0, 2, 2), _mask(0), crops[0], (0, 0, 1, 1))
