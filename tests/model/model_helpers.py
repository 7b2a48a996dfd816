"""Helpers for the model tests: small synthetic tracks and seeded models."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch

from lipdub.model.config import GeneratorConfig
from lipdub.model.generator import StyleSyncGenerator
from lipdub.model.track_clip import TrackClip


def seeded_model(cfg: GeneratorConfig, seed: int = 0, **kwargs) -> StyleSyncGenerator:
    """A random-init generator with a fixed seed, in eval mode."""
    torch.manual_seed(seed)
    return StyleSyncGenerator(cfg, **kwargs).eval()


def randomize_mals(model: StyleSyncGenerator, seed: int = 1) -> None:
    """Give MaLS non-zero residual convs, so tests see more than the moving average."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.mals.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.5)


def u_mask(size: int) -> np.ndarray:
    """A binary lower-face box mask (1 = regenerate) aligned to 1/8 of the crop."""
    m = np.zeros((size, size), np.float32)
    e = size // 8
    m[4 * e : 7 * e, 2 * e : 6 * e] = 1.0
    return m


def make_clip(size: int, frames: int, fps: Fraction = Fraction(25), seed: int = 0) -> TrackClip:
    """A synthetic track: noise faces with a moving dark 'mouth', a tone-burst dub."""
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 200, (size, size, 3), dtype=np.uint8)
    crops = np.repeat(base[None], frames, axis=0).copy()
    e = size // 8
    for t in range(frames):
        h = 1 + (t * 7) % (2 * e)  # Mouth opening varies over time.
        crops[t, 5 * e : 5 * e + h, 3 * e : 5 * e] = 20
    masks = np.repeat(u_mask(size)[None], frames, axis=0)
    n = int(np.ceil(frames / fps * 16000)) + 1
    tt = np.arange(n) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * tt) * (np.sin(2 * np.pi * 3 * tt) > 0)).astype(
        np.float32
    )
    return TrackClip(
        crops=crops, masks=masks, frame_indices=np.arange(frames), audio_16k=audio, fps=fps
    )
