"""Image regions the real-footage render tests check changes against."""

from __future__ import annotations

import numpy as np

from lipdub.exemplar.bank import iod


def lower_face(lm: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(h, w) bool: a generous region round the lower face. Along the face's own down axis (eye
    centre → nose tip, as the mask planner draws it) below the eye centre: the mask's top crosses
    the nose halfway down that axis and its feather reaches up at most a third of the way, so
    nothing at or above the eyes may change. Sideways and below, a box 0.8 IOD beyond the jaw
    and 1.6 IOD below the chin (the mask's margins, a wider-open jaw and the feather)."""
    d = float(iod(lm))
    h, w = shape[:2]
    x0 = max(int(np.floor(lm[:17, 0].min() - 0.8 * d)), 0)
    x1 = min(int(np.ceil(lm[:17, 0].max() + 0.8 * d)) + 1, w)
    y1 = min(int(np.ceil(lm[:17, 1].max() + 1.6 * d)) + 1, h)
    eyes = 0.5 * (lm[36:42].mean(0) + lm[42:48].mean(0))
    down = (lm[30] - eyes) / np.linalg.norm(lm[30] - eyes)
    ys, xs = np.mgrid[0:h, 0:w]
    below_eyes = (xs - eyes[0]) * down[0] + (ys - eyes[1]) * down[1] > 0
    region = np.zeros((h, w), bool)
    region[:y1, x0:x1] = True
    return region & below_eyes
