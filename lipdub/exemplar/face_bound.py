"""The part of a frame the exemplar path may change: the lower face inside its own jaw line.

The mask planner's U reaches beyond the jaw (its margins make room for a turned head or a wider
jaw), and the exemplar warp fills everything outside the landmarks with the *bank* frame's
pixels under a plain pose alignment. Wherever the U covers collar, tie, hair or background, the
bank frame's collar is pasted over the target's: dragged, doubled, moving with the head instead
of the body. Likewise the U's top crosses the nose, so the bank's nostrils replaced the target's.

So the exemplar path's blend mask is multiplied by a bound drawn from the face's own landmarks:

- its lower edge is the jaw contour (points 0–16) of the target frame, joined (union) with the
  jaw contour the new mouth asks for, whose chin may sit lower
  (:func:`lipdub.exemplar.warp.destination_landmarks` moves only the chin, along the face's
  down axis);
- its top is a straight line across the face, parallel to the eye line,
  :data:`NOSE_CLEARANCE` IOD below the nose's lowest point (31–35), so nostrils,
  nose and cheeks beside the nose stay the source's.

The bound is 0 on and outside that outline and ramps up to 1 *inside* it (over the blend feather
along the jaw, over at most half the gap to the upper lip under the nose), so the seam lies on
the face and every pixel of clothing, hair, background and nose comes back from the blender
bit-exactly.
"""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.analysis.records import JAW, LEFT_EYE, RIGHT_EYE

#: Gap between the nose's lowest landmark and the bound's top line, in IOD (dlib's nose points
#: sit on the nostrils' edge; this keeps the nostril rims outside).
NOSE_CLEARANCE = 0.06
#: Nose-base landmarks (dlib 68: the nostril wings and the point under the septum).
NOSE_BASE = (31, 32, 33, 34, 35)
#: Upper edge of the upper lip (dlib 68, outer lip, between the mouth corners).
UPPER_LIP = (49, 50, 51, 52, 53)
#: Fixed-point bits for sub-pixel polygon filling.
SUBPIXEL_BITS = 4


def _down_axis(lm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(eye centre, unit down vector, IOD) of (68, 2) landmarks.

    "Down" is perpendicular to the eye line: it turns with the head's roll but not with its yaw
    (the eye centre → nose tip direction swings sideways when the head turns, and a line across
    the face drawn square to it would tilt).
    """
    left, right = lm[LEFT_EYE].mean(0), lm[RIGHT_EYE].mean(0)
    eyes = 0.5 * (left + right)
    across = right - left
    iod = max(float(np.linalg.norm(across)), 1e-6)
    across = across / iod
    return eyes, np.array([-across[1], across[0]]), iod


def down_axis(landmarks: np.ndarray) -> np.ndarray:
    """Unit vector of the face's down axis (square to the eye line) of (68, 2) landmarks."""
    return _down_axis(np.asarray(landmarks, np.float64))[1]


def _top_depth(lm: np.ndarray, eyes: np.ndarray, down: np.ndarray, iod: float) -> float:
    """Depth (along ``down`` from the eye centre, pixels) of the line under the nose."""
    return float(((lm[list(NOSE_BASE)] - eyes) @ down).max()) + NOSE_CLEARANCE * iod


def lower_face_outline(landmarks: np.ndarray, lift: float = 0.0) -> np.ndarray:
    """(17, 2) closed outline of the lower face: the jaw contour, cut by the line under the nose.

    Jaw points above that line are moved down onto it along the face's down axis, so the
    polygon's top edge is the line itself (from the first jaw point to the last). ``lift``
    raises the line by that many pixels.
    """
    lm = np.asarray(landmarks, np.float64)
    eyes, down, iod = _down_axis(lm)
    top = _top_depth(lm, eyes, down, iod) - lift
    jaw = lm[JAW].copy()
    above = top - (jaw - eyes) @ down  # > 0: the point lies above the line.
    return jaw + np.maximum(above, 0.0)[:, None] * down


def _fill(outlines: list[np.ndarray], box: tuple[int, int, int, int]) -> np.ndarray:
    """(h, w) uint8: 1 inside the union of the polygons (frame pixels) in ``box``."""
    x0, y0, x1, y1 = box
    hard = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.uint8)
    origin = np.array([x0, y0], np.float64)
    for p in outlines:  # One by one: fillPoly's even-odd rule would cut out their overlap.
        poly = np.round((np.asarray(p, np.float64) - origin) * (1 << SUBPIXEL_BITS))
        cv2.fillPoly(hard, [poly.astype(np.int32)], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    return hard


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def bound_mask(
    target: np.ndarray,
    dests: list[np.ndarray],
    box: tuple[int, int, int, int],
    feather_px: float,
) -> np.ndarray:
    """(h, w) float32 bound of the frame region ``box``: 0 outside the lower-face outlines of
    ``target`` and every one of ``dests`` (:func:`lower_face_outline`), ramping up inside.

    Along the jaw the ramp is ``feather_px`` wide (the blend's feather). Under the nose it ends
    halfway to the highest upper lip (target's or new), at most ``feather_px``: the philtrum is
    short (0.14–0.29 IOD from the nose to the lip on the test clips, the feather 0.14 IOD), and
    a lip inside the ramp would show the source's lip through the new one.

    Arguments:
        target: (68, 2) the frame's own landmarks, frame pixels.
        dests: (68, 2) landmarks of every new face pasted there, frame pixels.
        box: ``(x0, y0, x1, y1)`` frame region (exclusive ends).
        feather_px: width of the ramp along the jaw, frame pixels.
    """
    lms = [np.asarray(x, np.float64) for x in (target, *dests)]
    hard = _fill([lower_face_outline(lm) for lm in lms], box)
    if hard.size == 0:
        return hard.astype(np.float32)
    feather = max(float(feather_px), 1.0)
    eyes, down, iod = _down_axis(lms[0])
    top = _top_depth(lms[0], eyes, down, iod)
    lip = min(float(((lm[list(UPPER_LIP)] - eyes) @ down).min()) for lm in lms)
    top_px = float(np.clip(0.5 * (lip - top), 1.0, feather))
    # The jaw's ramp: the distance to the outline with its top edge raised out of the way.
    jaw = _fill([lower_face_outline(lm, lift=2 * feather) for lm in lms], box)
    d_jaw = cv2.distanceTransform(jaw, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # The top's ramp: the depth below the line under the nose.
    x0, y0, x1, y1 = box
    # A row and a column broadcast against each other: the same float64 values as full grids,
    # without two (h, w) grids to build and walk.
    xs = np.arange(x0, x1, dtype=np.float64)[None, :]
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    d_top = (xs - eyes[0]) * down[0] + (ys - eyes[1]) * down[1] - top
    out = hard * _smoothstep(d_jaw / feather) * _smoothstep(d_top / top_px)
    return out.astype(np.float32)
