"""Mouth shape: the 20 mouth landmarks in a pose-free frame, the unit the exemplar path speaks.

The audio driver predicts it, the actor's bank is indexed by it and selection compares it. The
shape of frame t is dlib's points 48–67, rotated so that the eyes are level, centred on the
mouth's own centroid and divided by the inter-ocular distance (IOD). Head position, in-plane roll
and face size drop out; what is left is how the lips are set (open, spread, rounded). Yaw and
pitch are not removed: the bank records pose separately and selection matches it.
"""

from __future__ import annotations

import numpy as np

from lipdub.analysis.records import LEFT_EYE, MOUTH, RIGHT_EYE

#: Number of mouth points (dlib 48–67).
MOUTH_POINTS = MOUTH.stop - MOUTH.start


def mouth_shape(landmarks68: np.ndarray) -> np.ndarray:
    """(..., 20, 2) float32 mouth shapes of (..., 68, 2) landmark sets (see the module doc)."""
    lm = np.asarray(landmarks68, np.float64)
    left, right = lm[..., LEFT_EYE, :].mean(-2), lm[..., RIGHT_EYE, :].mean(-2)
    axis = right - left
    iod = np.maximum(np.linalg.norm(axis, axis=-1), 1e-6)
    cos, sin = axis[..., 0] / iod, axis[..., 1] / iod
    mouth = lm[..., MOUTH, :]
    centred = mouth - mouth.mean(-2, keepdims=True)
    # Rotate by −roll: x' = cos·x + sin·y, y' = −sin·x + cos·y.
    x, y = centred[..., 0], centred[..., 1]
    c, s = cos[..., None], sin[..., None]
    out = np.stack([c * x + s * y, -s * x + c * y], axis=-1) / iod[..., None, None]
    return out.astype(np.float32)
