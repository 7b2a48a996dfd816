"""The mouth driver's training data: the shape basis (PCA of mouth shapes), per-clip z-score
targets and band-standardised mel windows of each prepared clip (steps 2–4 of
:mod:`lipdub.train.driver`)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lipdub.analysis.masks import INNER_LOWER, INNER_UPPER, lip_gap
from lipdub.analysis.mouth_shape import MOUTH_POINTS, mouth_shape
from lipdub.analysis.records import MOUTH
from lipdub.data.clips import Clip
from lipdub.errors import ConfigError
from lipdub.model.driver import (
    SHAPE_DIM,
    BandStats,
    DriverConfig,
    stats_frames,
)
from lipdub.model.mel import MelFrontend

log = logging.getLogger(__name__)

STD_FLOOR = 0.25  # Per-clip std floor, as a fraction of the pooled within-clip std.
OPENING = 0  # Index of the opening component (signed by fit_basis).


@dataclass
class DriverClip:
    """One clip turned into the driver's inputs and targets."""

    clip: Clip
    shapes: np.ndarray  # (T, 20, 2) true mouth shapes.
    coef: np.ndarray  # (T, K) their PCA coefficients.
    z: np.ndarray  # (T, K) z-score targets.
    mel: np.ndarray  # (T + 2r, 1, n_mels, W) normalised windows of frames −r … T − 1 + r.
    loudness: np.ndarray  # (T,) the frames' raw loudness (the baseline of the report).


# ---------------------------------------------------------------------------------------------
# Basis, targets, audio


def fit_basis(shapes: Sequence[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of mouth motion: ``shapes`` is one (T, 20, 2) array per clip.

    Returns:
        mean (40,) over all frames, basis (K, 40) with orthonormal rows (the top K principal axes
        of the shapes minus their clip's mean), and the share of that variance each explains.

    Raises:
        ConfigError: fewer frames than components.
    """
    flat = [np.asarray(s, np.float64).reshape(len(s), SHAPE_DIM) for s in shapes]
    dev = np.concatenate([f - f.mean(0) for f in flat])
    if len(dev) <= k:
        raise ConfigError(f"{len(dev)} frame(s) cannot fit {k} mouth-shape components")
    _, sing, vt = np.linalg.svd(dev, full_matrices=False)
    basis = vt[:k].copy()
    gap = _gap_direction()
    for i in range(k):  # A deterministic sign: opening grows with component 1, else max +.
        ref = gap @ basis[i] if i == OPENING else basis[i, np.argmax(np.abs(basis[i]))]
        if ref < 0:
            basis[i] = -basis[i]
    explained = sing[:k] ** 2 / max(float((sing**2).sum()), 1e-12)
    return np.concatenate(flat).mean(0), basis, explained


def _gap_direction() -> np.ndarray:
    """(40,) d with d·(s − s₀) ≈ the change in inner-lip gap of the flattened shape s (y only)."""
    d = np.zeros((MOUTH_POINTS, 2))
    d[[i - MOUTH.start for i in INNER_LOWER], 1] += 1 / 3
    d[[i - MOUTH.start for i in INNER_UPPER], 1] -= 1 / 3
    return d.reshape(-1)


def std_floor(coefs: Sequence[np.ndarray]) -> np.ndarray:
    """(K,) floor of the per-clip std: :data:`STD_FLOOR` × the pooled within-clip std."""
    dev = np.concatenate([c - c.mean(0) for c in coefs])
    return STD_FLOOR * dev.std(0)


def z_scores(coef: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """(T, K) per-clip z-scores of ``coef`` with the std floored (module doc, step 3)."""
    return ((coef - coef.mean(0)) / np.maximum(coef.std(0), floor)).astype(np.float32)


def shapes_gap(shapes: np.ndarray) -> np.ndarray:
    """Inner-lip gap (IOD units) of (..., 20, 2) mouth shapes, by ``analysis.masks.lip_gap``."""
    full = np.zeros((*shapes.shape[:-2], 68, 2))
    full[..., MOUTH, :] = shapes
    return lip_gap(full)


def clip_windows(clip: Clip, audio_frames: np.ndarray, frontend: MelFrontend) -> np.ndarray:
    """(N, 1, n_mels, W) float16 mel windows of the clip's audio at ``audio_frames``; windows that
    ``data prepare`` precomputed are reused, the others computed from the clip's audio."""
    want = np.asarray(audio_frames, np.int64)
    pos = np.clip(np.searchsorted(clip.frames, want), 0, len(clip.frames) - 1)
    have = clip.frames[pos] == want
    out = np.empty((len(want), *clip.mel.shape[1:]), np.float16)
    out[have] = clip.mel[pos[have]]
    if (~have).any():
        rate = frontend.cfg.sample_rate
        out[~have] = frontend.windows(clip.audio, clip.fps, want[~have], rate).numpy()
    return out


def clip_mels(clip: Clip, context: int, frontend: MelFrontend) -> np.ndarray:
    """(T + 2r, 1, n_mels, W) float32 mel windows of the audio of track frames −r … T − 1 + r,
    normalised as :meth:`Driver.predict` normalises a track (:class:`BandStats` over the track).

    The audio of video frame k is at k + offset (the clip's AV offset).
    """
    audio = clip.frames + clip.offset  # Audio frame numbers of the track.
    first, last = int(audio[0]), int(audio[-1])
    around = np.concatenate(
        [np.arange(first - context, first), audio, np.arange(last + 1, last + 1 + context)]
    )
    stats = BandStats.of([torch.from_numpy(clip_windows(clip, stats_frames(audio), frontend))])
    raw = torch.from_numpy(clip_windows(clip, around, frontend).astype(np.float32))
    return stats.apply(raw).numpy()


def frame_loudness(mel: np.ndarray) -> np.ndarray:
    """(T,) mean of the two centre columns of each (1, n_mels, W) window: the loudness baseline."""
    w = mel.shape[-1]
    return mel[:, 0, :, w // 2 - 1 : w // 2 + 1].mean((-1, -2))


def prepare_clips(
    clips: Sequence[Clip],
    mean: np.ndarray,
    basis: np.ndarray,
    floor: np.ndarray,
    cfg: DriverConfig,
) -> list[DriverClip]:
    """Shapes, coefficients, targets and context-padded mel windows of each clip."""
    frontend = MelFrontend(cfg.mel)
    out = []
    for c in clips:
        shapes = mouth_shape(c.landmarks)
        coef = ((shapes.reshape(len(c), SHAPE_DIM) - mean) @ basis.T).astype(np.float32)
        loud = frame_loudness(clip_windows(c, c.frames + c.offset, frontend).astype(np.float32))
        z = z_scores(coef, floor)
        out.append(DriverClip(c, shapes, coef, z, clip_mels(c, cfg.context, frontend), loud))
    return out


# ---------------------------------------------------------------------------------------------
# Metrics
