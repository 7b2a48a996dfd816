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

#: A region searched around a missed face spans this many face sides...
ROI_EXTENT = 2.0
#: ...and is resized so the face is about this wide (mmod finds faces from ~40 px, best ~80+).
ROI_FACE_PX = 100.0
#: Detection scales are set for a detector with this window (dlib HOG's 80 px).
REFERENCE_WINDOW_PX = 80
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
    own = getattr(detector, "smallest_face", None)
    if own is not None:  # A detector that shrinks the frame itself knows its own limit.
        return float(own(width, height))
    scale = detection_scale(width, height, s) * _window_factor(detector)
    return detector.window_px / scale / (2**s.detect_upsample)


def _window_factor(detector: FaceDetector) -> float:
    return min(1.0, detector.window_px / REFERENCE_WINDOW_PX)


def detect_in_frame(
    frame: np.ndarray,
    detector: FaceDetector,
    settings: AnalysisSettings,
    dropped: list[float] | None = None,
) -> list[tuple[np.ndarray, float]]:
    """Faces in an RGB frame as ``(box in frame pixels, score)``, best first.

    Faces smaller than ``min_face_px`` are left out; their sides are appended to ``dropped``.
    A detector with a smaller window than HOG's (the mmod CNN: 40 px) gets a proportionally
    smaller image: it then finds the same smallest face at a fraction of the cost. A detector
    with ``scales_itself`` (BlazeFace: its network sees a fixed 192 px square) gets the frame as is.
    """
    h, w = frame.shape[:2]
    scale = detection_scale(w, h, settings) * _window_factor(detector)
    if getattr(detector, "scales_itself", False):
        scale = 1.0  # It shrinks the frame to its own input: no resize here.
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


def detect_in_region(
    frame: np.ndarray, box: np.ndarray, detector: FaceDetector
) -> list[tuple[np.ndarray, float]]:
    """Faces near ``box``: the detector run on a region around it, resized so the face is
    about ROI_FACE_PX wide (1.5 of the detector's window, if that is more; a detector that
    ``scales_itself`` gets the region as is). A cheap second look
    where a followed face was missed, and the confirmation of a followed face."""
    h, w = frame.shape[:2]
    side = max(box[2] - box[0], box[3] - box[1])
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = side * ROI_EXTENT / 2
    x0, y0 = int(max(0, cx - half)), int(max(0, cy - half))
    x1, y1 = int(min(w, cx + half)), int(min(h, cy + half))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return []
    if getattr(detector, "scales_itself", False):
        shift = np.array([x0, y0, x0, y0], np.float64)
        found = detector.detect(frame[y0:y1, x0:x1])
        return [(np.asarray(b, np.float64) + shift, score) for b, score in found]
    scale = max(ROI_FACE_PX, 1.5 * detector.window_px) / side
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    region = cv2.resize(frame[y0:y1, x0:x1], size, interpolation=interp)
    out = []
    for b, score in detector.detect(region):
        b = np.asarray(b, np.float64) / scale + [x0, y0, x0, y0]
        out.append((b, score))
    return out


def largest(faces: list[tuple[np.ndarray, float]]) -> tuple[np.ndarray, float] | None:
    """The face with the biggest box, or None."""
    if not faces:
        return None
    return max(faces, key=lambda f: (f[0][2] - f[0][0]) * (f[0][3] - f[0][1]))
