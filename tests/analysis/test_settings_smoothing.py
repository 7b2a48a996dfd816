"""Settings (cache key, options) and One Euro smoothing on synthetic landmark tracks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lipdub.analysis.settings import AnalysisSettings
from lipdub.analysis.smoothing import (
    inter_ocular,
    jitter,
    one_euro,
    one_euro_zero_phase,
    shake,
    smooth_landmarks,
)


def face(cx: float = 100.0, cy: float = 100.0, scale: float = 1.0) -> np.ndarray:
    """A plausible 68-point face (iBUG order), IOD = 60 px at scale 1."""
    rng = np.random.default_rng(0)
    lm = rng.uniform(-40, 40, (68, 2))
    lm[36:42] = np.array([-30.0, -20.0]) + rng.normal(0, 3, (6, 2))
    lm[42:48] = np.array([30.0, -20.0]) + rng.normal(0, 3, (6, 2))
    lm[36:42] -= lm[36:42].mean(0) - [-30, -20]
    lm[42:48] -= lm[42:48].mean(0) - [30, -20]
    return (lm * scale + [cx, cy]).astype(np.float32)


def test_key_is_stable_and_tracks_what_changes_the_stored_analysis():
    base = AnalysisSettings()
    assert base.key() == AnalysisSettings().key()
    assert AnalysisSettings(detect_every=3).key() != base.key()
    assert AnalysisSettings(smooth_beta=2.0).key() != base.key()
    # Identity and masks are re-derived from stored data: they do not invalidate the cache.
    assert AnalysisSettings(identity_threshold=0.5).key() == base.key()
    assert AnalysisSettings(mask_chin_margin=0.5).key() == base.key()


def test_from_options_takes_fields_and_ignores_stage_options():
    s = AnalysisSettings.from_options({"detect_every": 2, "shot_method": "content"})
    assert s.detect_every == 2
    assert set(s.as_options()) == {f.name for f in dataclasses.fields(AnalysisSettings)}


@pytest.mark.parametrize("field,value", [("detect_every", 0), ("iou_threshold", 0.0)])
def test_bad_values_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        AnalysisSettings(**{field: value})


def test_one_euro_steadies_a_still_face():
    rng = np.random.default_rng(1)
    still = np.repeat(face()[None], 120, 0) + rng.normal(0, 1.0, (120, 68, 2))
    smooth = smooth_landmarks(still, 25.0, 1.0, 1.5, 1.0, 6.0)
    assert np.median(jitter(smooth)) < 0.25 * np.median(jitter(still))


def test_zero_phase_one_euro_does_not_lag_a_moving_face():
    t = np.arange(100)
    track = np.stack([face(cx=100 + 3.0 * i) for i in t])  # 3 px/frame pan, IOD 60.
    smooth = smooth_landmarks(track, 25.0, 1.0, 1.5, 1.0, 6.0)
    lag = np.abs(smooth[5:-5, :, 0] - track[5:-5, :, 0]).max()
    assert lag < 0.5  # Forward alone lags by several pixels.
    fwd = one_euro(track / 60.0, 25.0, 1.0, 1.5, 1.0) * 60.0
    assert np.abs(fwd[20:-5, :, 0] - track[20:-5, :, 0]).mean() > lag


def test_one_euro_passes_a_constant_through():
    x = np.ones((10, 3))
    assert np.allclose(one_euro_zero_phase(x, 30.0, 1.0, 0.0, 1.0), 1.0)


def test_jitter_and_shake_are_in_percent_of_iod():
    a = face()
    b = a + np.array([0.6, 0.0])  # 1% of a 60 px IOD.
    assert inter_ocular(a) == pytest.approx(60.0, rel=1e-3)
    assert jitter(np.stack([a, b]))[0] == pytest.approx(1.0, rel=1e-3)
    steady = np.stack([a + np.array([0.6 * i, 0.0]) for i in range(5)])
    assert np.allclose(shake(steady), 0.0, atol=1e-6)
