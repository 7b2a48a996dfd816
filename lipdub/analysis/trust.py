"""Which frames of a face track can be pasted on: the landmarks must agree with the face.

A face that leaves the frame fast (a pan) is carried between detector passes by its landmarks,
and the landmark fit on a face cut by the frame's edge lands where the face no longer is; the
temporal smoothing then drags the frames around it along. Pasting a mouth there puts a second,
semi-transparent mouth on the cheek or the background (issue 17's ghost mouth). So a frame is
trusted only when

* its face outline (jaw, nose and eyes) lies at least :data:`MIN_INSIDE` inter-ocular distances
  (IOD) inside the frame: dlib fits a face cut by the frame's edge *into* the frame, squeezed
  against the edge, so a fit that touches the edge is a guess;
* the smoothed landmarks are within :data:`MAX_DEVIATION` IOD (mean over the points) of the ones
  fitted on that frame: more means the smoothing is pulling the face towards its neighbours;
* the face's size changes by at most :data:`MAX_SCALE_STEP` from the previous frame: a jump in
  scale is a fit that snapped to something else.

Untrusted frames pass through untouched; the renderer counts them in a warning. The limits sit
above everything the real test and media clips of ../shared/data show (over 11 tracks, 3,735
frames: deviation at most 0.073 IOD, outline at least 0.21 IOD inside, scale step at most 5.3 %)
and below a face panned out of a 512 px frame at 55 px a frame (deviation 0.106, outline 1 px
from the edge, IOD falling 13 % and 11 % a frame as the fit squeezes into the frame).
"""

from __future__ import annotations

import numpy as np

from lipdub.analysis.records import JAW, LEFT_EYE, RIGHT_EYE, FaceTrack

#: The face outline must lie at least this far (IOD) inside the frame.
MIN_INSIDE = 0.1
#: Mean distance (IOD) allowed between the smoothed landmarks and the frame's own fit.
MAX_DEVIATION = 0.1
#: Largest relative change of the inter-ocular distance from one frame to the next.
MAX_SCALE_STEP = 0.1
#: The outline that must be inside the frame: jaw, nose, eye corners.
OUTLINE = [*range(JAW.start, JAW.stop), *range(27, 36), 36, 39, 42, 45]


def _iod(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, np.float64)
    d = lm[..., LEFT_EYE, :].mean(-2) - lm[..., RIGHT_EYE, :].mean(-2)
    return np.maximum(np.linalg.norm(d, axis=-1), 1e-6)


def trusted_frames(track: FaceTrack, frame_shape: tuple[int, ...]) -> np.ndarray:
    """(T,) bool: True where the track's landmarks can be pasted on (see the module doc)."""
    lm = np.asarray(track.landmarks, np.float64).reshape(-1, 68, 2)
    h, w = frame_shape[:2]
    iod = _iod(lm)
    margin = (MIN_INSIDE * iod)[:, None]
    pts = lm[:, OUTLINE]
    inside = (pts[..., 0] >= margin) & (pts[..., 0] <= w - 1 - margin)
    inside &= (pts[..., 1] >= margin) & (pts[..., 1] <= h - 1 - margin)
    ok = np.asarray(inside.all(axis=1))
    if track.raw_landmarks is not None:
        raw = np.asarray(track.raw_landmarks, np.float64).reshape(-1, 68, 2)
        deviation = np.linalg.norm(lm - raw, axis=-1).mean(-1) / iod
        ok &= deviation <= MAX_DEVIATION
    if len(iod) > 1:
        step = np.abs(iod[1:] / iod[:-1] - 1.0)
        jump = np.r_[False, step > MAX_SCALE_STEP]
        ok &= ~jump
    return ok
