"""Personalization's held-out frames: the tail of each clip kept out of training, the metrics
measured on it (as the renderer composites), and whether a result beats the general model
(only then is it adopted)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping

import numpy as np
import torch

from lipdub.data.clips import Clip
from lipdub.errors import ConfigError
from lipdub.eval import metrics
from lipdub.eval.evaluate import composite, generate
from lipdub.model.engine import choose_reference
from lipdub.model.generator import StyleSyncGenerator
from lipdub.train.dataset import WINDOW, GeneratorWindows

log = logging.getLogger(__name__)

HELD_OUT_FRACTION = 0.15  # Tail of each clip kept out of training.
HELD_OUT_MIN = 12  # ... at least this many frames per clip.
HELD_OUT_MAX_EVAL = 48  # Held-out frames measured per clip (the first ones of the tail).
HELD_OUT_GAP = 5  # Frames dropped between the training part and the held-out tail.


def split_held_out(clip: Clip, fraction: float) -> tuple[Clip, Clip]:
    """(training part, held-out tail) of a clip, :data:`HELD_OUT_GAP` frames apart.

    Raises:
        ConfigError: the clip is too short for both parts.
    """
    n = len(clip)
    held = max(HELD_OUT_MIN, round(n * fraction))
    cut = n - held - HELD_OUT_GAP
    if cut < WINDOW + 1:
        raise ConfigError(
            f"footage {clip.clip_id}: {n} frames is too short to hold out {held} "
            f"(need at least {WINDOW + 1 + HELD_OUT_GAP + HELD_OUT_MIN})"
        )
    return slice_clip(clip, 0, cut), slice_clip(clip, n - held, n)


def slice_clip(clip: Clip, lo: int, hi: int) -> Clip:
    """Frames [lo, hi) of a clip (the audio stays whole: frame numbers keep their time)."""
    return dataclasses.replace(
        clip,
        crops=clip.crops[lo:hi],
        masks=clip.masks[lo:hi],
        landmarks=clip.landmarks[lo:hi],
        frames=clip.frames[lo:hi],
        mel=clip.mel[lo:hi],
        offset=clip.offset,
    )


@torch.no_grad()
def held_out_metrics(
    model: StyleSyncGenerator,
    pairs: list[tuple[Clip, Clip]],
    windows: GeneratorWindows,
    device: torch.device,
) -> dict[str, float]:
    """Mouth L1, PSNR and SSIM of the composited output on the held-out tails.

    Each tail's first :data:`HELD_OUT_MAX_EVAL` frames are generated from their own audio with
    a reference chosen (:func:`choose_reference`) among the clip's *training* frames, MaLS over
    the whole stretch, and composited M·I^g + (1 − M)·I as the renderer pastes them.
    """
    was_training = model.training
    model.eval()
    l1s, psnrs, ssims = [], [], []
    for train, held in pairs:
        k = min(len(held), HELD_OUT_MAX_EVAL)
        ref = choose_reference(train.crops, train.masks.astype(np.float32) / 255.0)
        target, masks = held.crops[:k], held.masks[:k].astype(np.float32) / 255.0
        mel = windows.mel_windows(held, np.arange(k))
        out = composite(
            generate(model, target, masks, train.crops[ref], mel, device), target, masks
        )
        diff = np.abs(out.astype(np.float32) - target.astype(np.float32)) / 255.0
        l1s.append(float((diff * masks[..., None]).sum() / max(3 * masks.sum(), 1e-6)))
        psnrs += [metrics.psnr(a, b) for a, b in zip(out, target, strict=True)]
        ssims += [metrics.ssim(a, b) for a, b in zip(out, target, strict=True)]
    model.train(was_training)
    finite = [p for p in psnrs if np.isfinite(p)]
    return {
        "L1_mouth": float(np.mean(l1s)),
        "PSNR": float(np.mean(finite)) if finite else float("inf"),
        "SSIM": float(np.mean(ssims)),
    }


def improves(before: Mapping[str, float], after: Mapping[str, float]) -> bool:
    """Whether held-out metrics ``after`` personalization beat ``before`` (the general model):
    a lower mouth L1 *and* a higher PSNR. A personalization that does not is not adopted, since
    every later render of the actor would use it."""
    return after["L1_mouth"] < before["L1_mouth"] and after["PSNR"] > before["PSNR"]


def fmt_metrics(values: Mapping[str, float]) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in values.items())
