"""Runs of consecutive True frames: where the dub is silent long enough to be a pause, where the
mouth rests. The rest plan, the viseme table and QC's opening check each ask it of a per-frame
flag."""

from __future__ import annotations

import numpy as np


def true_runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``[start, stop)`` of each run of True values."""
    padded = np.concatenate([[False], np.asarray(flags, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def long_runs(flags: np.ndarray, min_len: int) -> np.ndarray:
    """``flags`` (as bool) with every run of True shorter than ``min_len`` cleared."""
    out = np.zeros(len(flags), bool)
    for a, b in true_runs(flags):
        if b - a >= min_len:
            out[a:b] = True
    return out
