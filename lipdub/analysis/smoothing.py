"""Landmark smoothing over time: the One Euro filter, run forward and backward.

One Euro (Casiez, Roussel & Vogel, CHI 2012) is a first-order low-pass filter whose cutoff rises
with the signal's speed: ``fc = min_cutoff + beta * |dx/dt|``; a still face is filtered hard (no
jitter), a moving one lightly (little lag). The analysis is offline, so the filter is run forward
and backward and the two passes are averaged; their lags have opposite signs and cancel.

Coordinates are divided by the track's inter-ocular distance first, so ``beta`` is in units of
IOD/s and the same settings suit a 100 px face and a 1000 px one.
"""

from __future__ import annotations

import math

import numpy as np

from lipdub.analysis.records import EYE_CORNERS, JAW, LEFT_EYE, MOUTH, RIGHT_EYE


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """Smoothing factor of a first-order low-pass at ``cutoff`` Hz for a step of ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff))
    return 1.0 / (1.0 + tau / dt)


def one_euro(
    x: np.ndarray, fps: float, min_cutoff: np.ndarray | float, beta: float, d_cutoff: float
) -> np.ndarray:
    """Filter ``x`` (T, ...) along time with the One Euro filter (forward only).

    Arguments:
        x: samples, one per frame.
        fps: frame rate (Hz).
        min_cutoff: cutoff at rest (Hz); broadcastable to ``x[0]``.
        beta: speed coefficient.
        d_cutoff: cutoff of the speed estimate (Hz).
    """
    x = np.asarray(x, np.float64)
    if len(x) < 2:
        return x.copy()
    dt = 1.0 / fps
    out = np.empty_like(x)
    out[0] = x[0]
    dx_prev = np.zeros_like(x[0])
    a_d = _alpha(d_cutoff, dt)
    for t in range(1, len(x)):
        dx = (x[t] - out[t - 1]) / dt
        dx_hat = a_d * dx + (1 - a_d) * dx_prev
        speed = np.linalg.norm(dx_hat, axis=-1, keepdims=True) if x.ndim > 1 else np.abs(dx_hat)
        a = _alpha(min_cutoff + beta * speed, dt)
        out[t] = a * x[t] + (1 - a) * out[t - 1]
        dx_prev = dx_hat
    return out


def one_euro_zero_phase(
    x: np.ndarray, fps: float, min_cutoff: np.ndarray | float, beta: float, d_cutoff: float
) -> np.ndarray:
    """One Euro forward and backward, averaged: no lag on average, for offline use."""
    fwd = one_euro(x, fps, min_cutoff, beta, d_cutoff)
    bwd = one_euro(x[::-1], fps, min_cutoff, beta, d_cutoff)[::-1]
    return 0.5 * (fwd + bwd)


def inter_ocular(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the eye centres, (T,) for (T, 68, 2) landmarks (or a scalar)."""
    lm = np.asarray(landmarks, np.float64)
    d = lm[..., LEFT_EYE, :].mean(axis=-2) - lm[..., RIGHT_EYE, :].mean(axis=-2)
    return np.linalg.norm(d, axis=-1)


def smooth_landmarks(
    landmarks: np.ndarray,
    fps: float,
    min_cutoff: float,
    beta: float,
    d_cutoff: float,
    mouth_min_cutoff: float,
) -> np.ndarray:
    """Smooth a track's (T, 68, 2) landmarks; mouth and jaw points keep a higher cutoff.

    The eyes, brows and nose fix the alignment and must be steady; the mouth and jaw move with
    speech (syllables come at 4-8 Hz) and are only lightly filtered.
    """
    lm = np.asarray(landmarks, np.float64)
    if len(lm) < 3:
        return lm.astype(np.float32)
    scale = float(np.median(inter_ocular(lm))) or 1.0
    cutoff = np.full((68, 1), min_cutoff)
    cutoff[MOUTH] = mouth_min_cutoff
    cutoff[JAW] = mouth_min_cutoff
    out = one_euro_zero_phase(lm / scale, fps, cutoff, beta, d_cutoff) * scale
    return out.astype(np.float32)


def jitter(landmarks: np.ndarray) -> np.ndarray:
    """Frame-to-frame displacement of the eye corners in % of the inter-ocular distance, (T-1,)."""
    lm = np.asarray(landmarks, np.float64)
    if len(lm) < 2:
        return np.zeros(0)
    corners = lm[:, list(EYE_CORNERS)]
    step = np.linalg.norm(np.diff(corners, axis=0), axis=-1).mean(axis=-1)
    iod = 0.5 * (inter_ocular(lm[1:]) + inter_ocular(lm[:-1]))
    return 100.0 * step / np.maximum(iod, 1e-6)


def shake(landmarks: np.ndarray) -> np.ndarray:
    """Second difference of the eye corners in % of the inter-ocular distance, (T-2,).

    Steady motion (a pan, a slow turn) has no second difference, so this measures the
    frame-to-frame wobble that :func:`jitter` mixes with real movement.
    """
    lm = np.asarray(landmarks, np.float64)
    if len(lm) < 3:
        return np.zeros(0)
    corners = lm[:, list(EYE_CORNERS)]
    acc = np.linalg.norm(corners[2:] - 2 * corners[1:-1] + corners[:-2], axis=-1).mean(axis=-1)
    return 100.0 * acc / np.maximum(inter_ocular(lm[1:-1]), 1e-6)
