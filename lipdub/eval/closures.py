"""Did the lips close on the dub's p/b/m? The check QC runs on every output and the bench on
every synthetic dub, in one place so that both mean the same thing.

The lips count as closed at a frame where the inner-lip gap (IOD, :func:`mouth_opening`) is at
most the actor's closed level: the 10th percentile of the *source's* gap on the same track plus
0.02 IOD (:func:`~lipdub.analysis.mouth_class.closed_level`, which the bank's classes use too).
A p/b/m is closed when some frame from :data:`BEFORE` frames before its start to :data:`AFTER`
after it is closed: the lips close before the burst, and a bilabial lasts 60–100 ms (1.5–2.5
frames at 25 fps).

The same test run at every speech frame gives the chance level: how often a mouth that knows
nothing of p/b/m would pass it. A closure share is worth only what it beats that by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from lipdub.media.read import open_video

#: Frames before and after a p/b/m's start searched for closed lips.
BEFORE, AFTER = 2, 1
#: A share of closed p/b/m below this is a QC warning.
CLOSURE_WARN = 0.8


@dataclass(frozen=True)
class ClosureCheck:
    """Which p/b/m of a dub the output closed its lips on."""

    level: float  # The closed level used (IOD).
    frames: tuple[int, ...]  # The p/b/m start frames checked (measurable ones).
    closed: tuple[bool, ...]  # Per checked frame: closed somewhere in its window.
    unmeasured: int = 0  # p/b/m whose window has no measured frame (face off screen).
    chance: float | None = None  # The same test at every speech frame.
    missed: tuple[int, ...] = field(default=())  # Start frames of the p/b/m left open.

    @property
    def share(self) -> float | None:
        """Share of the checked p/b/m that closed (None: none checked)."""
        return float(np.mean(self.closed)) if self.closed else None


def _closed_near(gaps: np.ndarray, level: float, f: int) -> bool | None:
    """Closed at some frame of f's window; None when no frame there was measured."""
    window = gaps[max(0, f - BEFORE) : f + AFTER + 1]
    window = window[np.isfinite(window)]
    return None if window.size == 0 else bool((window <= level).any())


def check_closures(
    gaps: np.ndarray,
    level: float,
    closure_frames: list[int],
    speech: np.ndarray | None = None,
) -> ClosureCheck:
    """Check each p/b/m start frame against the output's per-frame gaps (see the module doc).

    Arguments:
        gaps: (T,) output inner-lip gap per frame, IOD (NaN: not measured).
        level: the actor's closed level (``mouth_class.closed_level`` of the source's gaps).
        closure_frames: each p/b/m's start frame.
        speech: (T,) bool speech frames for the chance level (None: not computed).
    """
    g = np.asarray(gaps, np.float64)
    frames, closed, unmeasured = [], [], 0
    for f in closure_frames:
        hit = _closed_near(g, level, f)
        if hit is None:
            unmeasured += 1
            continue
        frames.append(int(f))
        closed.append(hit)
    chance = None
    if speech is not None:
        at = [_closed_near(g, level, int(f)) for f in np.flatnonzero(speech)]
        known = [a for a in at if a is not None]
        chance = float(np.mean(known)) if known else None
    missed = tuple(f for f, c in zip(frames, closed, strict=True) if not c)
    return ClosureCheck(level, tuple(frames), tuple(closed), unmeasured, chance, missed)


def closure_summary(
    check: ClosureCheck | None,
    visemes: dict[str, Any],
    thumbnails: list[str],
    bank_closed: int | None,
) -> dict[str, Any]:
    """The QC record of one dub's p/b/m: how the phones were found (script or recognition),
    how many there were, how many closed, and thumbnails of those that did not."""
    out: dict[str, Any] = dict(visemes)
    if check is not None:
        out.update(
            level=round(check.level, 4),
            measured=len(check.frames),
            closed=int(sum(check.closed)),
            share=None if check.share is None else round(check.share, 3),
            missed_frames=list(check.missed),
        )
    out["missed_thumbnails"] = thumbnails
    out["bank_closed_frames"] = bank_closed
    return out


def closure_warning(summary: dict[str, Any]) -> str | None:
    """The QC warning for a dub's p/b/m (None: nothing to say)."""
    if summary.get("bank_closed_frames") == 0 and summary.get("bilabials"):
        return (
            "the actor's footage has no frame with closed lips, so no p/b/m could close: add "
            "footage where their lips meet (actors.NAME.footage in lipdub.toml)"
        )
    share = summary.get("share")
    if share is None or share >= CLOSURE_WARN:
        return None
    frames = ", ".join(str(f) for f in summary.get("missed_frames", [])[:8])
    return (
        f"the lips closed on {summary['closed']} of {summary['measured']} p/b/m ({share:.0%}, "
        f"below {CLOSURE_WARN:.0%}): check frames {frames}"
    )


def missed_thumbnails(
    output: Path, frames: list[int], boxes: dict[int, tuple[int, int, int, int]], folder: Path
) -> list[str]:
    """Write the output's lower face at each missed p/b/m frame as a PNG in ``folder``; the file
    names, in frame order. One decode pass, stopping at the last frame wanted."""
    wanted = sorted(f for f in frames if f in boxes)
    if not wanted:
        return []
    names = []
    with open_video(output) as video:
        for i, frame in enumerate(video.frames(0, wanted[-1] + 1)):
            if i not in boxes or i not in wanted:
                continue
            x0, y0, x1, y1 = boxes[i]
            name = f"{output.stem}_pbm_{i:06d}.png"
            crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
            cv2.imwrite(str(folder / name), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            names.append(name)
    return names


def lower_face_box(landmarks: np.ndarray, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """Frame box of the lower face (jaw points 2–14 across, nose bottom to chin down), padded by
    10 % of its width and clipped to the frame: what a thumbnail of the mouth shows."""
    lm = np.asarray(landmarks, np.float64)
    x0, x1 = lm[2:15, 0].min(), lm[2:15, 0].max()
    y0, y1 = lm[33, 1], lm[8, 1]
    m = 0.1 * (x1 - x0)
    h, w = shape[:2]
    return (max(0, int(x0 - m)), max(0, int(y0 - m)), min(w, int(x1 + m)), min(h, int(y1 + m)))
