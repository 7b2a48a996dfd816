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

The bound is 0 on and outside that outline and ramps up to 1 over the blend feather *inside* it,
so the seam lies on the face and every pixel of clothing, hair and background comes back from
the blender bit-exactly.
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


def lower_face_outline(landmarks: np.ndarray) -> np.ndarray:
    """(17, 2) closed outline of the lower face: the jaw contour, cut by the line under the nose.

    Jaw points above that line are moved down onto it along the face's down axis, so the
    polygon's top edge is the line itself (from the first jaw point to the last).
    """
    lm = np.asarray(landmarks, np.float64)
    eyes, down, iod = _down_axis(lm)
    nose_depth = float(((lm[list(NOSE_BASE)] - eyes) @ down).max())
    top = nose_depth + NOSE_CLEARANCE * iod
    jaw = lm[JAW].copy()
    above = top - (jaw - eyes) @ down  # > 0: the point lies above the line.
    return jaw + np.maximum(above, 0.0)[:, None] * down


def bound_mask(
    outlines: list[np.ndarray], box: tuple[int, int, int, int], feather_px: float
) -> np.ndarray:
    """(h, w) float32 bound of the frame region ``box`` over the union of ``outlines``.

    Arguments:
        outlines: (N, 2) polygons in frame pixels (:func:`lower_face_outline` of the target and
            of every new face).
        box: ``(x0, y0, x1, y1)`` frame region (exclusive ends).
        feather_px: width of the inward ramp, frame pixels (the blend's feather).

    Returns:
        0 outside the union, rising as a smoothstep of the distance to its edge to 1 at
        ``feather_px`` inside.
    """
    x0, y0, x1, y1 = box
    hard = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), np.uint8)
    if hard.size == 0:
        return hard.astype(np.float32)
    origin = np.array([x0, y0], np.float64)
    polys = [
        np.round((np.asarray(p, np.float64) - origin) * (1 << SUBPIXEL_BITS)).astype(np.int32)
        for p in outlines
    ]
    for poly in polys:  # One by one: fillPoly's even-odd rule would cut out their overlap.
        cv2.fillPoly(hard, [poly], 1, lineType=cv2.LINE_8, shift=SUBPIXEL_BITS)
    dist = cv2.distanceTransform(hard, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    t = np.clip(dist / max(float(feather_px), 1.0), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)
