"""What a crop-space generator is given for one face track (see
:class:`lipdub.render.protocols.Generator`): below both the engine that runs the network over it
and the renderer that fills it."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np


@dataclass
class TrackClip:
    """One face track's inputs for generation, everything in the generator's crop space.

    ``crops`` and ``masks`` may be memory-mapped arrays: a generator must read them in chunks
    rather than copy them whole, so long tracks stay within bounded memory.
    """

    crops: np.ndarray  # (T, S, S, 3) uint8 RGB, eye-aligned crops at the generator's resolution.
    masks: np.ndarray  # (T, S, S) float32 in [0, 1]; 1 = region to regenerate (U-shaped M).
    frame_indices: np.ndarray  # (T,) int, each crop's frame number counted from the shot's start.
    audio_16k: np.ndarray  # (N,) float32 mono dub at 16 kHz; sample 0 = the shot's first frame.
    fps: Fraction  # The shot's exact frame rate; maps frame numbers onto audio time.
    reference: int | None = None  # Index into crops of the reference frame; None = generator picks.
    actor: str | None = None  # Actor name of the track ("unknown" when not identified).
    personal: Path | None = None  # The actor's personalization file, when one is used.
