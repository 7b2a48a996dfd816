"""Metrics against hand-computed values on constructed inputs."""

from __future__ import annotations

import math
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch

from lipdub.analysis.masks import lip_gap
from lipdub.eval import metrics, sync_scoring
from lipdub.eval.evaluate import SELF_METRICS, _mean, composite, format_table
from lipdub.model.config import MelConfig
from lipdub.model.mel import MelFrontend

FPS = 25
SPF = 16000 // FPS  # Audio samples per video frame (640 at 25 fps).
TONE_HALF = 100  # Half-width (samples) of the tone burst at the centre of an "open" frame.


def test_identical_frames() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert metrics.psnr(img, img) == math.inf
    assert metrics.ssim(img, img) == pytest.approx(1.0)
    lms = rng.random((4, 68, 2)) * 32
    assert metrics.lmd(lms, lms) == 0.0


def test_psnr_lmd_csim_hand_values() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100))
    lms = np.zeros((2, 68, 2))
    moved = lms.copy()
    moved[:, 48:68] += (3.0, 4.0)  # Mouth points moved by 5 px; others moved too (ignored).
    moved[:, :48] += 100.0
    assert metrics.lmd(moved, lms) == pytest.approx(5.0)
    assert metrics.csim(np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]])) == pytest.approx(1.0)
    assert metrics.csim(np.array([[1.0, 0.0]]), np.array([[0.0, 3.0]])) == pytest.approx(0.0)


def _mouth_opening_by(gaps: list[float]) -> np.ndarray:
    """(T, 68, 2) landmarks whose inner lips (61–63 over 67–65) are ``gaps[t]`` px apart."""
    lms = np.zeros((len(gaps), 68, 2))
    for t, g in enumerate(gaps):
        lms[t, [67, 66, 65], 1] = g
    return lms


def test_opening_bias_and_correlation_hand_values() -> None:
    real = _mouth_opening_by([0.0, 4.0, 8.0, 4.0])
    assert lip_gap(real) == pytest.approx([0.0, 4.0, 8.0, 4.0])
    half = _mouth_opening_by([0.0, 2.0, 4.0, 2.0])  # Opens where the real one does, half as far.
    bias, r = metrics.opening(half, real)
    assert bias == pytest.approx(-2.0) and r == pytest.approx(1.0)
    bias, r = metrics.opening(_mouth_opening_by([8.0, 4.0, 0.0, 4.0]), real)  # Opposite phase.
    assert bias == pytest.approx(0.0) and r == pytest.approx(-1.0)
    bias, r = metrics.opening(_mouth_opening_by([1.0] * 4), real)  # A mouth that never moves.
    assert bias == pytest.approx(-3.0) and math.isnan(r)


def test_lse_from_hand_made_curve() -> None:
    curve = np.ones(2 * metrics.VSHIFT + 1) * 9.0
    curve[metrics.VSHIFT + 5] = 6.5  # Minimum at offset +5.
    curve[0] = 10.0
    res = metrics.sync_from_curve(curve)
    assert res.offset == 5 and res.lse_d == 6.5
    assert res.lse_c == pytest.approx(9.0 - 6.5)  # median − min
    with pytest.raises(ValueError):
        metrics.sync_from_curve(np.ones(5))


class MouthLoudnessScorer:
    """A SyncNet-like scorer: 'mouth open' from the middle frame, 'speech' from the mel centre."""

    def embed_visual(self, faces: torch.Tensor) -> torch.Tensor:
        mid = faces[:, faces.shape[1] // 2]
        return (mid.mean(dim=(1, 2, 3)) > 0).float()[:, None]

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        w = mel.shape[-1]
        centre = mel[:, 0, :, w // 2 - 1 : w // 2 + 1]  # The two STFT frames around c_k.
        return (centre.amax(dim=(1, 2)) > -2.0).float()[:, None]


def _talking(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Crops bright when 'open', and audio with a tone burst at the centre of each open frame."""
    env = np.random.default_rng(seed).integers(0, 2, frames)
    crops = np.where(env[:, None, None, None] > 0, 230, 20).astype(np.uint8)
    crops = np.broadcast_to(crops, (frames, 8, 8, 3)).copy()
    audio = np.zeros(frames * SPF, np.float32)
    n = np.arange(2 * TONE_HALF)
    for k in np.flatnonzero(env):
        c = k * SPF + SPF // 2
        audio[c - TONE_HALF : c + TONE_HALF] = 0.5 * np.sin(2 * np.pi * 1000 * n / 16000)
    return crops, audio


@pytest.mark.parametrize("shift", [0, 3, -4])
def test_av_offset_of_a_known_shift(shift: int) -> None:
    crops, audio = _talking(80)
    if shift >= 0:  # The audio lags the picture by `shift` frames.
        audio = np.concatenate([np.zeros(shift * SPF, np.float32), audio])
    else:
        audio = audio[-shift * SPF :]
    res = sync_scoring.av_sync(
        MouthLoudnessScorer(), crops, audio, Fraction(FPS), np.arange(80), MelFrontend(MelConfig())
    )
    assert res.offset == shift
    assert res.lse_d < 0.05  # 0 but for the frames whose audio a negative shift cut off.
    assert res.lse_c > 0.3  # Random on/off: about half the frames disagree off the true offset.


def test_composite_and_table() -> None:
    gen = np.full((2, 4, 4, 3), 200, np.uint8)
    target = np.zeros((2, 4, 4, 3), np.uint8)
    masks = np.zeros((2, 4, 4), np.float32)
    masks[:, 2:] = 1.0
    out = composite(gen, target, masks)
    assert (out[:, 2:] == 200).all() and (out[:, :2] == 0).all()
    row = {k: 1.0 for k in SELF_METRICS}
    table = format_table({"mean": {"self": {"model": {**row, "clips": 2}}, "cross": {}}})
    cells = "1.00 | 1.000 | 1.000 | +1.00 | 1.00 | 1.0000 | 1.00000 | 1.0 | 1.000"
    assert f"| model | {cells} |" in table


def test_means_leave_out_nan_and_keep_inf() -> None:
    rows = [{"gap-r": math.nan, "PSNR": math.inf}, {"gap-r": 0.5, "PSNR": math.inf}]
    mean = _mean(rows, ("gap-r", "PSNR"))
    assert mean["gap-r"] == 0.5 and mean["PSNR"] == math.inf and mean["clips"] == 2
    assert math.isnan(_mean([{"gap-r": math.nan}], ("gap-r",))["gap-r"])


def test_lips_box_pads_and_clips() -> None:
    lms = np.zeros((68, 2))
    lms[48:68] = [[20.0, 30.0], [40.0, 40.0]] * 10  # Lips span 20 × 10 px.
    lms[:48] = 500.0  # Not the lips: ignored.
    assert metrics.lips_box(lms, (100, 100, 3), pad=0.1) == (18, 28, 42, 42)
    assert metrics.lips_box(lms, (35, 41), pad=0.5) == (10, 20, 41, 35)  # Clipped to the image.
    with pytest.raises(ValueError):
        metrics.lips_box(lms + 1000.0, (100, 100))


def test_laplacian_energy_falls_with_blur() -> None:
    assert metrics.laplacian_energy(np.full((16, 16, 3), 90, np.uint8)) == 0.0
    img = np.zeros((16, 16), np.uint8)
    img[8, 8] = 10  # One bright pixel: Laplacian −40 there, 10 at its 4 neighbours.
    assert metrics.laplacian_energy(img) == pytest.approx((40**2 + 4 * 10**2) / 256)
    rng = np.random.default_rng(1)
    sharp = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    soft = cv2.GaussianBlur(sharp, (0, 0), 1.5)
    assert metrics.laplacian_energy(soft) < 0.2 * metrics.laplacian_energy(sharp)


def test_lagged_correlation_finds_the_lag_and_skips_nan() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=60)
    late = np.concatenate([np.zeros(2), a[:-2]])  # b[t + 2] = a[t].
    assert metrics.lagged_correlation(a, late, 3) == pytest.approx(1.0)
    assert metrics.lagged_correlation(a, late, 1) < 0.5  # The true lag is out of range.
    assert metrics.lagged_correlation(a, -a, 0) == pytest.approx(-1.0)
    holes = a.copy()
    holes[::7] = np.nan
    assert metrics.lagged_correlation(holes, a, 0) == pytest.approx(1.0)
    assert math.isnan(metrics.lagged_correlation(a, np.ones(60), 3))  # Constant: no r.
