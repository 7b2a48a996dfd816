"""Prepared clips (``lipdub data prepare``) loaded into memory, for training and evaluation."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from lipdub.data.prepare import ARRAYS, INFO, read_crops_video
from lipdub.errors import ConfigError

log = logging.getLogger(__name__)

#: Consecutive frames per sample (SyncNet's and the generator's window): the shortest clip kept.
WINDOW = 5


@dataclass
class Clip:
    """One prepared clip held in memory."""

    clip_id: str
    speaker: str
    split: str
    fps: Fraction
    crops: np.ndarray  # (T, S, S, 3) uint8.
    masks: np.ndarray  # (T, S, S) uint8 (255 = regenerate).
    landmarks: np.ndarray  # (T, 68, 2) float32 crop pixels.
    frames: np.ndarray  # (T,) frame numbers in the source (audio time base).
    audio: np.ndarray  # (N,) float32 16 kHz mono.
    mel: np.ndarray  # (T, 1, n_mels, W) float16 precomputed windows of the frames (no offset).
    offset: int  # Audio frames to shift by (audio of video frame k is at k + offset).

    def __len__(self) -> int:
        return len(self.crops)


def load_clip(clip_dir: Path, size: int | None = None) -> Clip:
    """Load a prepared clip folder into memory."""
    clip_dir = Path(clip_dir)
    info = json.loads((clip_dir / INFO).read_text())
    size = size or info["size"]
    with np.load(clip_dir / ARRAYS, allow_pickle=False) as z:
        arrays = {k: z[k] for k in ("frames", "landmarks", "masks", "audio_16k", "mel")}
    crops = read_crops_video(clip_dir / f"crops_{size}.mp4")
    n = min(len(crops), len(arrays["frames"]))
    offset = info.get("offset_frames")
    use = offset is not None and bool(info.get("offset_applied"))
    return Clip(
        clip_id=info["clip_id"],
        speaker=info["speaker"],
        split=info.get("split", ""),
        fps=Fraction(*info["fps"]),
        crops=crops[:n],
        masks=arrays["masks"][:n],
        landmarks=arrays["landmarks"][:n],
        frames=arrays["frames"][:n].astype(np.int64),
        audio=arrays["audio_16k"],
        mel=arrays["mel"][:n],
        offset=int(offset) if use else 0,
    )


def load_clips(
    data_dir: Path, split: str | None = None, min_frames: int = WINDOW + 1
) -> list[Clip]:
    """All prepared clips of ``split`` (None = all) with at least ``min_frames`` frames.

    Raises:
        ConfigError: no such clips.
    """
    data_dir = Path(data_dir)
    clips = []
    for info_path in sorted(data_dir.glob(f"*/{INFO}")):
        info = json.loads(info_path.read_text())
        if split is not None and info.get("split", "") != split:
            continue
        if info["frames"] < min_frames:
            continue
        clips.append(load_clip(info_path.parent))
    if not clips:
        raise ConfigError(f"{data_dir}: no prepared clips of split {split!r}")
    log.info("%d clip(s), %d frames from %s", len(clips), sum(len(c) for c in clips), data_dir)
    return clips


def require_speakers(clips: Sequence[Clip], speakers: Sequence[str], option: str) -> None:
    """Refuse speaker names that no clip has (a typo would silently select nothing).

    Raises:
        ConfigError: a named speaker has no clip; the message lists the known speakers.
    """
    missing = set(speakers) - {c.speaker for c in clips}
    if missing:
        known = sorted({c.speaker for c in clips})
        raise ConfigError(f"{option}: no clip of {sorted(missing)}; speakers are {known}")
