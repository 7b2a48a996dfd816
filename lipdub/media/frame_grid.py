"""The constant-rate frame grid that a video's timestamps are laid on.

Frame ``n`` of a video is slot ``n`` of a grid that starts at its first presented frame and
advances by one frame duration, 1/fps. :func:`frame_grid` finds that grid from the presented
timestamps:

1. Candidate rates, most trusted first: the container's declared rates (guessed, average, base),
   the rate of the median frame duration, and the standard rates near the stream's mean rate (a
   least-squares line through the timestamps). A rate within rounding of a standard one
   (:data:`STANDARD_RATES`) is tried as that standard rate first, so a container's 450000/18769
   is read as 24000/1001. When a short clip on a coarse time base cannot tell two standard rates
   apart, the one the time base divides most evenly comes first (ticks of 1001/30000 s mean
   24000/1001, not 24).
2. A rate fits when every timestamp lies within rounding of one of its slots and no two share a
   slot; the grid's phase is centred on all the timestamps, not on the first alone, since a muxer
   may round them all one way. Of the rates that fit, the one leaving the fewest empty slots wins
   (the order above breaks ties). A few empty slots (frames a capture dropped) are filled by
   repeating the frame before each; many mean the stream is variable-rate.
3. A variable-rate stream is refused, or with ``conform`` resampled onto the grid of its conform
   rate (the standard rate nearest its median frame duration) the way FFmpeg's ``fps`` filter
   does: each frame goes to its nearest slot, a later frame landing on a taken slot replaces the
   earlier one (dropped), and an empty slot repeats the frame before it (repeated). The grid ends
   at the last frame's slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from lipdub.errors import MediaError

#: Frame rates that cameras and editing tools use; measured rates near one are snapped to it.
STANDARD_RATES = tuple(
    Fraction(r)
    for r in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60", "120")
)
#: A declared rate within this fraction of a standard rate is tried as that rate (containers
#: store rates as rounded ratios, e.g. frames / duration).
RATE_SNAP = 1e-3
#: A variable-rate stream is conformed to the standard rate nearest its median frame rate when
#: one lies within this fraction of it; otherwise to the median rate itself.
CONFORM_SNAP = 0.02
#: A frame whose timestamp is off its slot by more than this fraction of a frame (and by more than
#: a tick of the time base, to which timestamps are rounded) does not sit on the grid.
VFR_TOLERANCE = 0.5
#: A constant-rate stream may lack this many frames (or this fraction of them, if more) and still
#: be read without ``conform``: each empty slot repeats the frame before it, and says so.
MAX_AUTO_FILLED_FRAMES = 2
MAX_AUTO_FILLED_FRACTION = 0.01


@dataclass(frozen=True)
class FrameGrid:
    """Where each presented frame of a stream goes on its constant-rate grid."""

    fps: Fraction  # The grid's exact rate.
    slots: np.ndarray  # Slot of each presented frame, in time order; -1: dropped by a conform.
    count: int  # Slots on the grid: the video's frame count.
    repeated: int  # Slots with no frame of their own, showing the frame before them.
    dropped: int  # Frames that lost their slot to a later frame (only when conforming).
    conformed: bool  # True when a variable-rate stream was resampled because ``conform`` asked.


def frame_grid(
    pts: Sequence[int],
    time_base: Fraction,
    declared: Sequence[Fraction | None],
    path: Path,
    conform: bool,
) -> FrameGrid:
    """Lay the sorted presentation timestamps ``pts`` on a constant-rate grid.

    Arguments:
        pts: presented frames' timestamps in ``time_base`` units, sorted, no duplicates.
        time_base: the stream's time base.
        declared: the container's declared rates, most trusted first (None or 0: unknown).
        path: the file, for messages.
        conform: resample a variable-rate stream instead of refusing it.

    Raises:
        MediaError: the stream is variable-rate and ``conform`` is off, or has no usable rate.
    """
    ticks = np.asarray(pts, dtype=np.int64) - pts[0]
    candidates = _candidates(ticks, time_base, declared)
    if not candidates:
        raise MediaError(f"{path}: cannot tell the frame rate")
    fits = []
    for order, rate in enumerate(candidates):
        slots = _fit(ticks, rate, time_base)
        if slots is not None:
            fits.append((int(slots[-1]) + 1 - len(ticks), order, rate, slots))
    allowed = max(MAX_AUTO_FILLED_FRAMES, MAX_AUTO_FILLED_FRACTION * len(ticks))
    fallback = candidates[0]
    if fits:
        holes, _, fallback, slots = min(fits, key=lambda f: f[:2])
        if holes <= allowed:
            return FrameGrid(fallback, slots, int(slots[-1]) + 1, holes, 0, conformed=False)
    plan = resample(ticks, conform_rate(ticks, time_base, fallback), time_base)
    if conform:
        return plan
    rate = plan.fps
    durations = np.diff(ticks) * float(time_base) * 1000
    raise MediaError(
        f"{path}: variable frame rate (frame durations from {durations.min():.1f} to "
        f"{durations.max():.1f} ms); set conform_vfr: true to resample it onto a constant "
        f"{float(rate):.3f} fps grid ({plan.repeated} frame(s) repeated, {plan.dropped} dropped), "
        f"or conform it first, e.g. ffmpeg -i IN -vf fps={rate} -c:v prores_ks OUT.mov"
    )


def resample(ticks: np.ndarray, rate: Fraction, time_base: Fraction) -> FrameGrid:
    """Put each frame on its nearest slot of ``rate``'s grid, as FFmpeg's ``fps`` filter does.

    ``ticks`` are timestamps from the first frame, sorted. Ties round up (to the later slot).
    """
    slots = np.floor(ticks * float(rate * time_base) + 0.5).astype(np.int64)
    keep = np.ones(len(slots), dtype=bool)
    keep[:-1] = slots[1:] != slots[:-1]  # A later frame on the same slot replaces this one.
    count = int(slots[-1]) + 1
    kept = int(keep.sum())
    return FrameGrid(
        fps=rate,
        slots=np.where(keep, slots, -1),
        count=count,
        repeated=count - kept,
        dropped=len(slots) - kept,
        conformed=True,
    )


def conform_rate(ticks: np.ndarray, time_base: Fraction, fallback: Fraction) -> Fraction:
    """The rate a variable-rate stream is conformed to: its median frame rate, snapped to the
    nearest standard rate within :data:`CONFORM_SNAP` (``fallback`` for a single frame)."""
    deltas = np.diff(ticks)
    if not deltas.size:
        return fallback
    median = 1 / (Fraction(int(np.median(deltas))) * time_base)
    return _snap(median, CONFORM_SNAP) or median.limit_denominator(1001)


def _candidates(
    ticks: np.ndarray, time_base: Fraction, declared: Sequence[Fraction | None]
) -> list[Fraction]:
    """Rates worth trying, most trusted first, each as its standard rate and as declared."""
    rates = [Fraction(r) for r in declared if r]
    deltas = np.diff(ticks)
    if deltas.size:
        rates.append(1 / (Fraction(int(np.median(deltas))) * time_base))
        # Ticks per frame, fitted through every timestamp as if none were missing; rounding
        # each to the time base moves it by well under a tick over the whole span.
        slope = np.polyfit(np.arange(len(ticks)), ticks.astype(np.float64), 1)[0]
        mean = 1 / (slope * float(time_base))
        tolerance = RATE_SNAP + 1 / int(ticks[-1])
        near = [r for r in STANDARD_RATES if abs(mean / float(r) - 1) <= tolerance]
        rates += sorted(near, key=lambda r: ((1 / (r * time_base)).denominator, abs(r - mean)))
    out: list[Fraction] = []
    for rate in rates:
        for choice in (_snap(rate, RATE_SNAP), rate.limit_denominator(1001)):
            if choice and choice not in out:
                out.append(choice)
    return out


def _snap(rate: Fraction, tolerance: float) -> Fraction | None:
    """The standard rate within ``tolerance`` (a fraction of it) of ``rate``, if any."""
    best = min(STANDARD_RATES, key=lambda s: abs(float(s) - float(rate)))
    return best if abs(float(rate) / float(best) - 1) <= tolerance else None


def _fit(ticks: np.ndarray, rate: Fraction, time_base: Fraction) -> np.ndarray | None:
    """Slot of each timestamp on ``rate``'s grid, or None when they do not sit on it."""
    nominal = float(1 / (rate * time_base))  # One frame's duration in time-base ticks.
    pos = ticks / nominal
    # Centre the grid on every timestamp (circular mean of their offsets from the nearest slot).
    phase = np.angle(np.exp(2j * np.pi * pos).mean()) / (2 * np.pi)
    slots = np.rint(pos - phase).astype(np.int64)
    # Timestamps are rounded to the time base, so allow a tick (or half a frame) of slack.
    slack = max(1.0, min(VFR_TOLERANCE * nominal, 1.0 + 0.02 * nominal))
    if np.abs(pos - phase - slots).max() * nominal > slack or np.any(np.diff(slots) < 1):
        return None
    return slots - slots[0]
