"""The lip-sync papers' metrics: PSNR, SSIM, LMD, LSE-D / LSE-C, AV offset and CSIM.

- PSNR and SSIM on the aligned face crops (uint8 RGB; SSIM from ``skimage.metrics`` with its
  defaults: 7×7 uniform window, per channel, data range 255).
- LMD (Chen et al. 2018): mean Euclidean distance between the 20 mouth landmarks (dlib 68-point
  indices 48–67) of generated and ground-truth frames, in crop pixels.
- LSE-D / LSE-C (Prajwal et al. 2020, computed as ``syncnet_python`` does): for every offset
  o ∈ [−15, 15] frames, the mean over frames t of the distance between the visual embedding of
  frames t−2..t+2 and the audio embedding at frame t + o; LSE-D = min_o d(o),
  LSE-C = median_o d(o) − min_o d(o), AV offset = argmin_o d(o) (positive: the audio lags).
  Here the embeddings come from lipdub's own SyncNet (unit vectors, so d ∈ [0, 2]); the numbers
  are therefore *not* comparable to the papers' values, which use the pretrained syncnet_python.
- Opening (lipdub's own, beside LMD): the inner-lip gap (dlib 61–63 to 67–65, crop pixels) of
  generated against real frames: ``gap-bias`` = mean(gap_gen − gap_real), negative for a mouth
  that opens too little, and ``gap-r`` = their Pearson correlation over time, near 1 when the
  mouth opens where the real one does and near 0 when it ignores the speech. LMD alone cannot
  tell a mouth that moves wrongly from one that hardly moves.
- CSIM: cosine similarity of identity embeddings (dlib's 128-d face descriptor here, ArcFace in
  the papers) of generated and ground-truth frames.
- Lip detail (lipdub's own, for sharpness at the source's resolution): the Laplacian energy
  (mean squared response of the 3×3 Laplacian on the grey image, the classic focus measure) in a
  tight box around the lips (:func:`lips_box`), output against source.
- The SyncNet side of LSE-D / LSE-C (the scorer and :func:`~lipdub.eval.sync_scoring.av_sync`)
  is in :mod:`lipdub.eval.sync_scoring`: it needs torch, which nothing else here does, so a render
  whose QC uses no SyncNet never imports it.
- Lagged correlation: the Pearson r of two per-frame signals (a mouth opening, a loudness) at the
  best of a few frame lags, for sync without a SyncNet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from skimage.metrics import structural_similarity

from lipdub.analysis.masks import lip_gap
from lipdub.analysis.records import MOUTH

VSHIFT = 15  # syncnet_python's offset search range, ±frames.
SYNC_WINDOW = 5  # Frames per visual embedding.
LANDMARK_UPSCALE = 2  # Crops are enlarged this much before dlib fits landmarks / descriptors.
LIPS_PAD = 0.15  # lips_box margin on each side, as a fraction of the lips' larger extent.


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """PSNR = 10·log10(R² / MSE) in dB; ``inf`` for identical images."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two (H, W, 3) uint8 images (skimage defaults, per channel, range 255)."""
    return float(structural_similarity(a, b, channel_axis=-1, data_range=255))


def lmd(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean distance between mouth landmarks (indices 48–67) of (..., 68, 2) landmark sets."""
    p = np.asarray(pred, np.float64)[..., MOUTH, :]
    t = np.asarray(target, np.float64)[..., MOUTH, :]
    return float(np.linalg.norm(p - t, axis=-1).mean())


def opening(pred: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(gap-bias, gap-r) of (T, 68, 2) landmark tracks; gap-r is NaN when either gap is constant."""
    gp, gt = lip_gap(pred), lip_gap(target)
    bias = float((gp - gt).mean())
    if len(gp) < 2 or gp.std() < 1e-9 or gt.std() < 1e-9:
        return bias, math.nan
    return bias, float(np.corrcoef(gp, gt)[0, 1])


def csim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine similarity of (N, D) identity embeddings, row by row."""
    a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12
    return float((num / den).mean())


def lips_box(
    landmarks: np.ndarray, shape: tuple[int, ...], pad: float = LIPS_PAD
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) integer box around the lips (68-point indices 48–67), padded by ``pad``
    times their larger extent on each side and clipped to an image of ``shape`` (H, W, ...)."""
    lm = np.asarray(landmarks, np.float64)[MOUTH]
    (x0, y0), (x1, y1) = lm.min(axis=0), lm.max(axis=0)
    m = pad * max(x1 - x0, y1 - y0)
    h, w = shape[:2]
    box = (
        max(0, math.floor(x0 - m)),
        max(0, math.floor(y0 - m)),
        min(w, math.ceil(x1 + m)),
        min(h, math.ceil(y1 + m)),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError(f"the lips lie outside a {w}×{h} image")
    return box


def laplacian_energy(image: np.ndarray) -> float:
    """Mean squared 3×3 Laplacian of an (H, W) grey or (H, W, 3) RGB uint8 image (0 when flat)."""
    img = np.asarray(image)
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    lap = cv2.Laplacian(gray.astype(np.float32), cv2.CV_32F, ksize=1)
    return float(np.mean(np.square(lap, dtype=np.float64)))


def lagged_correlation(a: np.ndarray, b: np.ndarray, max_lag: int, min_pairs: int = 10) -> float:
    """max over lags ℓ ∈ [−max_lag, max_lag] of the Pearson r of a[t] and b[t + ℓ].

    NaN entries (frames without a measurement) drop out pair by pair; a lag with fewer than
    ``min_pairs`` pairs, or with a constant side, is skipped; NaN when every lag is.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    n = min(len(a), len(b))
    best = math.nan
    for lag in range(-max_lag, max_lag + 1):
        x = a[max(0, -lag) : n - max(0, lag)]
        y = b[max(0, lag) : n + min(0, lag)]
        ok = np.isfinite(x) & np.isfinite(y)
        if ok.sum() < min_pairs or x[ok].std() < 1e-12 or y[ok].std() < 1e-12:
            continue
        r = float(np.corrcoef(x[ok], y[ok])[0, 1])
        best = r if math.isnan(best) else max(best, r)
    return best


@dataclass(frozen=True)
class SyncResult:
    """The outcome of the ±:data:`VSHIFT` offset search."""

    offset: int  # argmin_o d(o): frames the audio lags the video by.
    lse_d: float  # min_o d(o).
    lse_c: float  # median_o d(o) − min_o d(o).
    curve: np.ndarray  # d(o) for o = −VSHIFT..VSHIFT.


def sync_from_curve(curve: np.ndarray, vshift: int = VSHIFT) -> SyncResult:
    """Offset, LSE-D and LSE-C from a mean-distance curve d(o), o = −vshift..vshift.

    This is syncnet_python's ``minval, minidx = min(mdist); offset = vshift − minidx`` with the
    curve ordered by the audio's shift relative to the video, and ``conf = median − minval``.
    """
    curve = np.asarray(curve, np.float64)
    if curve.shape != (2 * vshift + 1,):
        raise ValueError(f"distance curve must have {2 * vshift + 1} values, got {curve.shape}")
    i = int(np.argmin(curve))
    return SyncResult(i - vshift, float(curve[i]), float(np.median(curve) - curve[i]), curve)


def _upscaled(crop: np.ndarray) -> np.ndarray:
    s = crop.shape[0] * LANDMARK_UPSCALE
    return cv2.resize(crop, (s, s), interpolation=cv2.INTER_CUBIC)


def _box_from(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, np.float64)
    (x0, y0), (x1, y1) = lm.min(axis=0), lm.max(axis=0)
    pad = 0.1 * max(x1 - x0, y1 - y0)
    return np.array([x0 - pad, y0 - pad, x1 + pad, y1 + pad])


def crop_landmarks(detector, crops: np.ndarray, boxes_from: np.ndarray) -> np.ndarray:
    """(N, 68, 2) dlib landmarks of crops, fitted in boxes around ``boxes_from`` landmarks.

    The same boxes (from the ground truth's landmarks) are used for generated and real crops, so
    LMD measures the mouth, not the box. Crops are enlarged by :data:`LANDMARK_UPSCALE` first.
    """
    out = np.zeros((len(crops), 68, 2), np.float32)
    for i, (crop, ref) in enumerate(zip(crops, boxes_from, strict=True)):
        box = _box_from(ref) * LANDMARK_UPSCALE
        out[i] = detector.landmarks(_upscaled(crop), [box])[0] / LANDMARK_UPSCALE
    return out


def crop_descriptors(detector, crops: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """(N, 128) dlib face descriptors of crops with the given crop-pixel landmarks."""
    return np.concatenate(
        [
            detector.descriptors(_upscaled(c), [np.asarray(lm) * LANDMARK_UPSCALE])
            for c, lm in zip(crops, landmarks, strict=True)
        ]
    )
