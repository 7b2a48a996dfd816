"""Torch datasets over prepared clips (``lipdub data prepare``): 5-frame windows + augmentation.

- :class:`SyncWindows` (SyncNet, Wav2Lip's recipe): 5 consecutive aligned crops and one mel window,
  in sync (the window of the middle frame) or off sync (the window of a frame at least
  :data:`MIN_NEG_SHIFT` frames away), label 1 / 0.
- :class:`GeneratorWindows` (StyleSync): 5 consecutive target crops, their masks and mel windows,
  and a reference crop from the same clip at another time. Most references are at least
  :data:`MIN_REF_GAP` frames away from the window: a random frame, or (:data:`NEUTRAL_REF_PROB`)
  one of the clip's most closed mouths, which is what the renderer passes at inference. A few
  (:data:`NEAR_REF_PROB`) are a frame just outside the window, whose texture and mouth are nearly
  the target's: they teach the generator to carry the reference's detail into the mouth instead
  of painting the blurred average face of the training set. Their share is a knob
  (``near_ref_prob``, ``train generator --near-reference``): a near reference also shows the
  target's mouth *shape*, so the more of them, the less the mouth has to come from the audio.

Augmentation is drawn once per sample and applied identically to all its frames (and the masks
and the reference), so motion and alignment stay consistent: colour (brightness, contrast,
saturation), scale, small rotation, small translation and horizontal flips; audio gets a random
gain. Audio is shifted by the clip's measured AV offset when one is stored and marked applied
(see :mod:`lipdub.train.offsets`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from lipdub.analysis.masks import mouth_opening
from lipdub.data.clips import WINDOW, Clip
from lipdub.errors import ConfigError
from lipdub.model.config import MelConfig
from lipdub.model.mel import MelFrontend

log = logging.getLogger(__name__)

MIN_NEG_SHIFT = 5  # Off-sync negatives are shifted by at least this many frames.
MAX_NEG_SHIFT = 25  # ... and at most this many (within the clip).
MIN_REF_GAP = 5  # The reference frame is at least this far from the window's frames...
NEAR_REF_PROB = 0.25  # ...except in this share of samples: a frame 1-2 outside the window.
NEUTRAL_REF_PROB = 0.35  # Share of far references drawn from the clip's most closed mouths.
NEUTRAL_QUANTILE = 0.15  # "Most closed": inner-lip gap within this lowest fraction of the clip.
CANDIDATE_SHIFT = 9  # SyncNet's contrastive candidates: audio shifted by up to ±this many frames.
MIN_CANDIDATE_SHIFT = 3  # ... leaving out |shift| 1–2, whose mel windows overlap the true one.


@dataclass(frozen=True)
class Augment:
    """Ranges of the random augmentation (all zero = none)."""

    brightness: float = 0.15  # Added to [-1, 1] pixels, uniform in ±.
    contrast: float = 0.15  # Multiplicative, 1 ± this.
    saturation: float = 0.2  # Blend towards grey, 1 ± this.
    scale: float = 0.05  # Zoom 1 ± this about the crop centre.
    rotate_deg: float = 5.0  # Rotation in degrees, ±.
    translate: float = 0.03  # Shift as a fraction of the side, ±.
    flip: float = 0.5  # Probability of a horizontal flip.
    gain_db: float = 6.0  # Audio gain, ± dB.


NO_AUGMENT = Augment(0, 0, 0, 0, 0, 0, 0, 0)
# Index permutation of dlib's 20 mouth points (48–67) under a horizontal flip: 48↔54, 49↔53, …
MOUTH_MIRROR = np.array([6, 5, 4, 3, 2, 1, 0, 11, 10, 9, 8, 7, 16, 15, 14, 13, 12, 19, 18, 17])


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(..., S, S, 3) uint8 → (..., 3, S, S) float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float() / 127.5 - 1.0
    return x.movedim(-1, -3)


class _Augmenter:
    """Draws one augmentation per sample and applies it to images, masks and audio."""

    def __init__(self, aug: Augment, rng: np.random.Generator) -> None:
        self.aug, self.rng = aug, rng

    def draw(self, size: int) -> dict:
        a, r = self.aug, self.rng
        u = lambda v: float(r.uniform(-v, v)) if v else 0.0  # noqa: E731
        centre = (size / 2 - 0.5, size / 2 - 0.5)
        m = cv2.getRotationMatrix2D(centre, u(a.rotate_deg), 1.0 + u(a.scale))
        m[:, 2] += np.array([u(a.translate), u(a.translate)]) * size
        return {
            "matrix": m,
            "identity": not (a.rotate_deg or a.scale or a.translate),
            "flip": bool(r.random() < a.flip),
            "brightness": u(a.brightness),
            "contrast": 1.0 + u(a.contrast),
            "saturation": 1.0 + u(a.saturation),
            "gain": 10 ** (u(a.gain_db) / 20),
        }

    @staticmethod
    def geometry(images: np.ndarray, p: dict) -> np.ndarray:
        """Same warp + flip on each (S, S[, C]) image of the stack."""
        out = images
        if not p["identity"]:
            s = images.shape[1]
            out = np.stack(
                [
                    cv2.warpAffine(im, p["matrix"], (s, s), borderMode=cv2.BORDER_REPLICATE)
                    for im in images
                ]
            )
        if p["flip"]:
            out = out[:, :, ::-1]
        return np.ascontiguousarray(out)

    @staticmethod
    def colour(images: np.ndarray, p: dict) -> torch.Tensor:
        """Brightness, contrast, saturation on (..., S, S, 3) uint8 → (..., 3, S, S) in [-1, 1]."""
        x = images.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1.0)
        if p["saturation"] != 1.0 or p["contrast"] != 1.0 or p["brightness"] != 0.0:
            grey = x.mean(axis=-1, keepdims=True)
            x = grey + (x - grey) * np.float32(p["saturation"])
            x = np.clip(x * np.float32(p["contrast"]) + np.float32(p["brightness"]), -1.0, 1.0)
        return torch.from_numpy(np.ascontiguousarray(x)).movedim(-1, -3)


def transform_points(points: np.ndarray, p: dict, size: int) -> np.ndarray:
    """Move (..., 20, 2) mouth points (x, y) with an :class:`_Augmenter` draw: warp, then flip."""
    out = np.asarray(points, np.float32)
    if not p["identity"]:
        m = np.asarray(p["matrix"], np.float32)
        out = out @ m[:, :2].T + m[:, 2]
    if p["flip"]:
        out = out[..., MOUTH_MIRROR, :].copy()
        out[..., 0] = size - 1 - out[..., 0]
    return out


class _WindowsBase(Dataset):
    """Shared sampling: a random clip (weighted by its windows) and a random window in it."""

    def __init__(
        self,
        clips: list[Clip],
        length: int,
        augment: Augment,
        seed: int,
        mel: MelConfig | None = None,
    ) -> None:
        self.clips = [c for c in clips if len(c) >= WINDOW + 1]
        if not self.clips:
            raise ConfigError("no clip is long enough for a 5-frame window")
        weights = np.array([len(c) - WINDOW + 1 for c in self.clips], np.float64)
        self.weights = weights / weights.sum()
        self.length = length
        self.augment = augment
        self.seed = seed
        self.mel = MelFrontend(mel or MelConfig())

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, index])

    def _window(self, rng: np.random.Generator) -> tuple[Clip, int]:
        """A clip (weighted by its windows) and the first frame of a 5-frame window in it."""
        clip = self.clips[rng.choice(len(self.clips), p=self.weights)]
        return clip, int(rng.integers(0, len(clip) - WINDOW + 1))

    def _faces(self, clip: Clip, t0: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
        """The window's 5 crops, augmented with one draw, and the draw (for the audio gain)."""
        aug = _Augmenter(self.augment, rng)
        p = aug.draw(clip.crops.shape[1])
        return aug.colour(aug.geometry(clip.crops[t0 : t0 + WINDOW], p), p), p

    def mel_windows(self, clip: Clip, idx: np.ndarray, gain: float = 1.0) -> torch.Tensor:
        """(K, 1, n_mels, W) mel windows of the audio at track indices ``idx`` (+ AV offset)."""
        idx = np.asarray(idx, np.int64) + clip.offset
        if idx.min() >= 0 and idx.max() < len(clip.mel):  # Precomputed by `data prepare`.
            mel = torch.from_numpy(clip.mel[idx].astype(np.float32))
        else:
            frames = clip.frames[0] + idx
            mel = self.mel.windows(clip.audio, clip.fps, frames, self.mel.cfg.sample_rate)
        # A gain g adds 20·log10(g) dB to every mel bin before normalisation (clipped as usual).
        if gain != 1.0:
            c = self.mel.cfg
            shift = 20.0 * np.log10(gain) * 2 * c.max_abs_value / -c.min_level_db
            mel = (mel + float(shift)).clamp(-c.max_abs_value, c.max_abs_value)
        return mel


class SyncWindows(_WindowsBase):
    """SyncNet pairs: (faces (5, 3, S, S), mel (1, n_mels, W), label 1 in sync / 0 shifted)."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = self._rng(index)
        clip, t0 = self._window(rng)
        n = len(clip)
        centre = t0 + WINDOW // 2
        label = float(rng.random() < 0.5)
        audio_at = centre
        if not label:
            lo, hi = -min(MAX_NEG_SHIFT, centre), min(MAX_NEG_SHIFT, n - 1 - centre)
            choices = [s for s in range(lo, hi + 1) if abs(s) >= MIN_NEG_SHIFT]
            if choices:
                audio_at = centre + int(rng.choice(choices))
            else:  # Clip too short for a shift: silence is off-sync with any moving mouth.
                label = 0.0
                audio_at = -(10**6)
        faces, p = self._faces(clip, t0, rng)
        mel = self.mel_windows(clip, np.array([audio_at]), p["gain"])[0]
        return faces, mel, torch.tensor(label)


def candidate_shifts() -> np.ndarray:
    """Audio shifts of :class:`SyncCandidates`: 0 first, then every |s| in [3, 9]."""
    far = [s for s in range(-CANDIDATE_SHIFT, CANDIDATE_SHIFT + 1) if abs(s) >= MIN_CANDIDATE_SHIFT]
    return np.array([0, *far], np.int64)


class SyncCandidates(_WindowsBase):
    """Contrastive SyncNet samples: 5 faces and the mel windows of every candidate shift.

    Returns ``faces`` (5, 3, S, S), ``mels`` (C, 1, n_mels, W) for the shifts of
    :func:`candidate_shifts` (index 0 = in sync) and ``valid`` (C,) — False where the shifted
    window would leave the clip (its mel is a copy of the in-sync one and must be masked out).
    """

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rng = self._rng(index)
        clip, t0 = self._window(rng)
        centre = t0 + WINDOW // 2
        at = centre + candidate_shifts()
        valid = (at >= 0) & (at < len(clip))
        at = np.where(valid, at, centre)
        faces, p = self._faces(clip, t0, rng)
        return faces, self.mel_windows(clip, at, p["gain"]), torch.from_numpy(valid)


class GeneratorWindows(_WindowsBase):
    """Generator samples: dict with ``target`` (5, 3, S, S), ``mask`` (5, 1, S, S),
    ``mel`` (5, 1, n_mels, W), ``reference`` (3, S, S) and ``sync_mel`` (1, n_mels, W); with
    ``mouth_points`` (per clip id, (T, 20, 2) mouth landmarks) also ``points`` (5, 20, 2), moved
    with the augmentation (for L_lmk, :mod:`lipdub.train.landmarks`)."""

    def __init__(
        self,
        *args: Any,
        mouth_points: dict[str, np.ndarray] | None = None,
        near_ref_prob: float = NEAR_REF_PROB,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not 0.0 <= near_ref_prob <= 1.0 - NEUTRAL_REF_PROB:
            raise ConfigError(
                f"near-reference share {near_ref_prob} is outside 0 .. {1 - NEUTRAL_REF_PROB}"
            )
        self.mouth_points = mouth_points
        self.near_ref_prob = near_ref_prob
        self._closed: dict[str, np.ndarray] = {}
        for c in self.clips:
            gap = np.array([mouth_opening(lm) for lm in c.landmarks])
            self._closed[c.clip_id] = np.flatnonzero(gap <= np.quantile(gap, NEUTRAL_QUANTILE))

    def _reference(self, clip: Clip, t0: int, rng: np.random.Generator) -> int:
        """Index of the reference frame for the window starting at ``t0`` (see module doc)."""
        n = len(clip)
        u = rng.random()
        if u < self.near_ref_prob:
            near = [i for i in (t0 - 2, t0 - 1, t0 + WINDOW, t0 + WINDOW + 1) if 0 <= i < n]
            if near:
                return int(rng.choice(near))

        def is_far(i: int) -> bool:
            return i < t0 - MIN_REF_GAP or i >= t0 + WINDOW + MIN_REF_GAP

        if u < self.near_ref_prob + NEUTRAL_REF_PROB:
            closed = [int(i) for i in self._closed[clip.clip_id] if is_far(int(i))]
            if closed:
                return int(rng.choice(closed))
        far = [i for i in range(n) if is_far(i)]
        return int(rng.choice(far)) if far else int(rng.choice([0, n - 1]))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self._rng(index)
        clip, t0 = self._window(rng)
        ref = self._reference(clip, t0, rng)
        aug = _Augmenter(self.augment, rng)
        p = aug.draw(clip.crops.shape[1])
        stack = np.concatenate([clip.crops[t0 : t0 + WINDOW], clip.crops[ref : ref + 1]])
        images = aug.colour(aug.geometry(stack, p), p)
        masks = aug.geometry(clip.masks[t0 : t0 + WINDOW], p)
        idx = np.arange(t0, t0 + WINDOW)
        mel = self.mel_windows(clip, idx, p["gain"])
        sample = {
            "target": images[:WINDOW],
            "reference": images[WINDOW],
            "mask": torch.from_numpy(masks).float()[:, None] / 255.0,
            "mel": mel,
            "sync_mel": mel[WINDOW // 2],
        }
        if self.mouth_points is not None:
            points = self.mouth_points[clip.clip_id][t0 : t0 + WINDOW]
            size = clip.crops.shape[1]
            sample["points"] = torch.from_numpy(transform_points(points, p, size))
        return sample
