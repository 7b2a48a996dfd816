"""QC measures: seam and flicker ratios against the source, and per-frame loudness."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np

from lipdub.eval.qc import (
    BORDER_HIGH,
    BORDER_LOW,
    INSIDE,
    _SeamFlicker,
    mask_zones,
    opening_warning,
)
from lipdub.media.audio import loudness_per_frame


def _scene(n: int = 6):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:64, 0:64]
    base = np.stack([x * 3, y * 3, np.full_like(x, 120)], -1).astype(np.uint8)
    frames = [
        np.clip(base + rng.integers(-2, 3, base.shape), 0, 255).astype(np.uint8) for _ in range(n)
    ]
    r = np.hypot(x - 32, y - 36) / 18
    mask = np.clip((1.3 - r) / 0.6, 0, 1).astype(np.float32)
    return frames, mask_zones(mask)


def test_an_untouched_output_scores_one_and_a_pasted_box_shows_a_seam():
    frames, mask = _scene()
    silent = np.array([True] * 3 + [False] * 3)  # Flicker on 0-2, detail on 3-5.
    same = _SeamFlicker(silent)
    boxed = _SeamFlicker(silent)
    for i, f in enumerate(frames):
        same.add(i, f, f, mask)
        pasted = f.copy()
        pasted[mask > 0] = 200  # A flat patch with a hard edge, changing nothing over time.
        boxed.add(i, f, pasted, mask)
    assert same.ratios() == (1.0, 1.0, 1.0)
    seam, flicker, detail = boxed.ratios()
    assert seam > 3 and flicker < 0.5
    assert detail < 0.5  # The flat patch lost the texture inside the mask.


def test_a_blurred_mouth_lowers_the_detail_ratio():
    frames, mask = _scene()
    y, x = np.mgrid[0:64, 0:64]
    texture = (40 * (np.sin(x * 1.3) * np.sin(y * 1.1))).astype(int)[..., None]
    q = _SeamFlicker(np.zeros(6, bool))
    for i, f in enumerate(frames):
        src = np.clip(f.astype(int) + texture, 0, 255).astype(np.uint8)
        soft = cv2.GaussianBlur(src, (0, 0), 3)
        m = (mask / 3.0).astype(np.float32)[..., None]
        out = (m * soft + (1 - m) * src).round().astype(np.uint8)
        q.add(i, src, out, mask)
    detail = q.ratios()[2]
    assert detail is not None and detail < 0.4


def test_quivering_lips_on_silence_raise_the_flicker_ratio():
    frames, mask = _scene()
    silent = np.array([True] * 6)
    q = _SeamFlicker(silent)
    for i, f in enumerate(frames):
        out = f.astype(int)
        out[mask >= 2] += 25 if i % 2 else -25  # Flicker inside the mouth region.
        q.add(i, f, np.clip(out, 0, 255).astype(np.uint8), mask)
    assert q.ratios()[1] > 5


def test_loudness_per_frame_follows_the_audio():
    audio = np.zeros(16_000, np.float32)
    audio[8000:] = 0.5 * np.sin(np.arange(8000) / 5)
    loud = loudness_per_frame(audio, 25, Fraction(25))
    assert (loud[:12] < -100).all() and (loud[13:] > -12).all()


def test_a_mouth_more_open_on_silence_than_on_speech_is_a_warning():
    loud = np.array([-80.0] * 5 + [-10.0] * 5)  # Silent, then speech.
    backwards = np.array([0.3] * 5 + [0.05] * 5)
    assert "more open on the dub's silent frames" in opening_warning(backwards, loud, None)
    assert opening_warning(backwards[::-1].copy(), loud, None) is None  # Follows the dub.
    # Silent frames that show the actor's own mouth (kept or rested) say nothing of the render.
    own = np.array([True] * 5 + [False] * 5)
    assert opening_warning(backwards, loud, own) is None
    unmeasured = backwards.copy()
    unmeasured[5:] = np.nan
    assert opening_warning(unmeasured, loud, None) is None


def test_a_mouth_still_speaking_in_the_gap_between_two_words_is_no_warning():
    # Speech with two 2-frame gaps where the mouth stays open (as the default driver keeps it
    # between words), then a 6-frame pause with the mouth open: only the pause counts.
    loud = np.array([-10.0] * 4 + [-80.0] * 2 + [-10.0] * 4 + [-80.0] * 2 + [-10.0] * 4)
    opening = np.where(loud < -40, 0.25, 0.12)
    assert opening_warning(opening, loud, None) is not None  # Every silent frame counted.
    assert opening_warning(opening, loud, None, min_run=5) is None  # Gaps are not pauses.
    paused = np.concatenate([loud, [-80.0] * 6])
    assert opening_warning(np.where(paused < -40, 0.25, 0.12), paused, None, min_run=5)


def test_mask_zones_keep_what_qc_reads_of_a_mask():
    mask = np.array([[0.0, BORDER_LOW, 0.06, INSIDE - 1e-6], [INSIDE, 0.9, BORDER_HIGH, 1.0]])
    zones = mask_zones(mask.astype(np.float32))
    assert zones.dtype == np.uint8
    assert zones.tolist() == [[0, 0, 1, 1], [2, 2, 3, 3]]
    band = (zones == 1) | (zones == 2)
    assert np.array_equal(band, (mask > BORDER_LOW) & (mask < BORDER_HIGH))
    assert np.array_equal(zones >= 2, mask >= INSIDE)
