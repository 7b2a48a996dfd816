"""The mouth at rest where the dub is silent: the actor's own closed mouth, not a generated one.

A generated mouth that moves during the dub's pauses (quivering lips) is the most reported defect
of lip-sync tools, and a generator is least sure of itself on silence: the bundled CPU model
leaves the lips apart there (mean inner-lip gap 0.12 IOD on andrew_clip_2 with the German dub).
So in every silent stretch of the dub (at least ``min_silence_s`` long; the short gaps between
words belong to speech) each frame takes the actor's own closed mouth:

* where the actor's mouth in the source is closed anyway, or as closed as this actor's mouth gets
  (for ``min_silence_s`` or more), the **source** picture is kept as is;
* where the actor is talking in the original language, the **rest crop** is used: the track's
  own frame with the most closed mouth (in the actor's usual head pose), whose lower face is
  pasted like a generated one (aligned by the eyes, blended and colour-matched by the blender).

Outside those stretches the generated face is used. The three weights are cross-faded with a
raised-cosine window ``ramp_s`` wide, so no switch is a cut. Where the track never shows a closed
mouth there is no rest crop and the generator keeps the talking-in-source frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from lipdub.analysis.masks import mouth_opening, yaw_ratio
from lipdub.analysis.runs import long_runs
from lipdub.media.audio import SILENT_DB

#: Shortest silent stretch of the dub given a resting mouth, seconds.
MIN_SILENCE_S = 0.3
#: The source mouth counts as closed at or below this inner-lip gap (inter-ocular distances)...
CLOSED_OPENING = 0.05
#: ...or, for an actor whose lips rest apart, within this of their own rest opening...
REST_MARGIN = 0.02
#: ...which is the opening of the most closed tenth of the track's frames...
REST_CANDIDATES = 0.1
#: ...never above this (a mouth this open is not at rest; nor is a rest crop taken from one).
REST_MAX_OPENING = 0.15
#: Width of the cross-fade between generated, rest and source, seconds (each side).
RAMP_S = 0.12
#: Weights closer than this to 0 or 1 are snapped (a kept source frame stays bit-exact).
SNAP = 1e-3


@dataclass
class RestPlan:
    """Per track frame, how much of the output face comes from where (the three sum to 1)."""

    generated: np.ndarray  # (T,) float32 weight of the generated face.
    rest: np.ndarray  # (T,) float32 weight of the rest crop.
    source: np.ndarray  # (T,) float32 weight of the source picture (left untouched).
    rest_frame: int | None  # Track index of the rest crop (None: the track never closes).

    @property
    def paste_weight(self) -> np.ndarray:
        """(T,) how strongly the crop is blended into the frame (1 − source)."""
        return 1.0 - self.source

    def counts(self) -> dict[str, int]:
        """Frames mostly from the source and mostly from the rest crop (for the report)."""
        return {
            "source_frames": int((self.source >= 0.5).sum()),
            "rest_frames": int((self.rest >= 0.5).sum()),
        }


def rest_frame(openings: np.ndarray, yaws: np.ndarray) -> int | None:
    """Index of the frame to rest on: among the most closed tenth of the track, the one whose
    head yaw is nearest the track's median (a typical pose ages best over a long pause)."""
    if len(openings) == 0:
        return None
    cutoff = min(np.quantile(openings, REST_CANDIDATES), REST_MAX_OPENING)
    candidates = np.flatnonzero(openings <= cutoff)
    if candidates.size == 0:
        return None
    yaw_off = np.abs(yaws[candidates] - np.median(yaws))
    return int(candidates[np.lexsort((openings[candidates], yaw_off))[0]])


def plan_rest(
    loudness_db: np.ndarray,
    landmarks: np.ndarray,
    fps: Fraction | float,
    *,
    silent_db: float = SILENT_DB,
    closed: float = CLOSED_OPENING,
    min_silence_s: float = MIN_SILENCE_S,
    ramp_s: float = RAMP_S,
) -> RestPlan:
    """Decide, per frame of a track, between the generated face, the rest crop and the source.

    Arguments:
        loudness_db: (T,) the dub's loudness on each frame of the track, dBFS.
        landmarks: (T, 68, 2) the actor's landmarks in the source (smoothed).
        fps: Frame rate (turns the seconds into frames).
        silent_db: Loudness below which a frame is silent.
        closed: Opening at or below which the source mouth is closed (raised to the actor's own
            rest opening + REST_MARGIN, up to REST_MAX_OPENING).
        min_silence_s: Shortest silent stretch that rests.
        ramp_s: Half-width of the raised-cosine cross-fade.
    """
    loud = np.asarray(loudness_db, np.float64)
    t = len(loud)
    if len(landmarks) != t:
        raise ValueError(f"loudness ({t}) and landmarks ({len(landmarks)}) differ in length")
    openings = np.array([mouth_opening(lm) for lm in landmarks], np.float64)
    rate = float(fps)
    min_frames = max(1, round(min_silence_s * rate))
    resting = long_runs(loud < silent_db, min_frames)
    ref = rest_frame(openings, np.array([yaw_ratio(lm) for lm in landmarks]))
    if t:  # The actor's own rest: a slightly parted mouth (a smile, a photo) is closed for them.
        own = float(np.quantile(openings, REST_CANDIDATES)) + REST_MARGIN
        closed = max(closed, min(own, REST_MAX_OPENING))
    mode = np.zeros((t, 3), np.float64)  # Columns: generated, rest, source.
    # Closed in the source for a while: brief closures rest instead.
    src = long_runs(resting & (openings <= closed), min_frames)
    mode[src, 2] = 1.0
    mode[resting & ~src, 1 if ref is not None else 0] = 1.0
    mode[~resting, 0] = 1.0
    radius = max(0, round(ramp_s * rate))
    if radius and t:
        kernel = 0.5 * (1.0 + np.cos(np.pi * np.arange(-radius, radius + 1) / (radius + 1)))
        norm = np.convolve(np.ones(t), kernel, mode="same")
        mode = np.stack(
            [np.convolve(mode[:, k], kernel, mode="same") / norm for k in range(3)], axis=1
        )
    mode[mode < SNAP] = 0.0
    mode[mode > 1.0 - SNAP] = 1.0
    mode /= mode.sum(axis=1, keepdims=True)
    w = mode.astype(np.float32)
    return RestPlan(generated=w[:, 0], rest=w[:, 1], source=w[:, 2], rest_frame=ref)
