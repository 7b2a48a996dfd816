"""Running a face detector on a frame at the scale the settings ask for.

The detector is the expensive part of the analysis on CPU and its cost grows with the pixels it
scans, so large frames are shrunk (``detect_max_side``) and small ones enlarged
(``detect_min_side``: a 160 px LRS2 crop holds a face smaller than dlib HOG's 80 px window).
The boxes come back in frame pixels; faces smaller than ``min_face_px`` are dropped.
"""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.analysis.protocols import FaceDetector
from lipdub.analysis.settings import AnalysisSettings

#: Largest enlargement applied to small frames before detection.
MAX_UPSCALE = 2.0


def detection_scale(width: int, height: int, settings: AnalysisSettings) -> float:
    """Factor applied to a ``width`` x ``height`` frame before the detector sees it."""
    long_side, short_side = max(width, height), min(width, height)
    scale = min(1.0, settings.detect_max_side / long_side)
    if short_side * scale < settings.detect_min_side:
        scale = min(MAX_UPSCALE, settings.detect_min_side / short_side)
    return scale


def smallest_face_px(width: int, height: int, detector: FaceDetector, s: AnalysisSettings) -> float:
    """Side (frame pixels) of the smallest face the detector can find at this scale."""
    return detector.window_px / detection_scale(width, height, s) / (2**s.detect_upsample)


def detect_in_frame(
    frame: np.ndarray,
    detector: FaceDetector,
    settings: AnalysisSettings,
    dropped: list[float] | None = None,
) -> list[tuple[np.ndarray, float]]:
    """Faces in an RGB frame as ``(box in frame pixels, score)``, best first.

    Faces smaller than ``min_face_px`` are left out; their sides are appended to ``dropped``.
    """
    h, w = frame.shape[:2]
    scale = detection_scale(w, h, settings)
    if scale != 1.0:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        image = cv2.resize(frame, (round(w * scale), round(h * scale)), interpolation=interp)
    else:
        image = frame
    found = []
    for box, score in detector.detect(image):
        box = np.asarray(box, np.float64) / scale
        box[[0, 2]] = np.clip(box[[0, 2]], 0, w)
        box[[1, 3]] = np.clip(box[[1, 3]], 0, h)
        side = min(box[2] - box[0], box[3] - box[1])
        if side >= settings.min_face_px:
            found.append((box, score))
        elif dropped is not None:
            dropped.append(float(side))
    return found


def largest(faces: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, float] | None:
    """The face with the biggest box, or None."""
    if not faces:
        return None
    return max(faces, key=lambda f: (f[0][2] - f[0][0]) * (f[0][3] - f[0][1]))
