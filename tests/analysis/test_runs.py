"""Runs of True frames, the one helper the rest plan, the viseme table and QC's opening check
share."""

from __future__ import annotations

import numpy as np

from lipdub.analysis.runs import long_runs, true_runs


def test_runs_are_found_at_the_edges_and_inside():
    flags = np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], bool)
    assert true_runs(flags) == [(0, 2), (3, 4), (6, 9)]
    assert true_runs(np.zeros(3, bool)) == []


def test_short_runs_are_cleared_and_long_ones_kept():
    flags = np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], bool)
    assert long_runs(flags, 2).tolist() == [1, 1, 0, 0, 0, 0, 1, 1, 1]
    assert long_runs(flags, 3).tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert np.array_equal(long_runs(flags, 1), flags)
