"""Face detection, identity descriptors and (by choice) 68 landmarks with dlib.

Two detectors: dlib's HOG + linear SVM frontal face detector (``dlib-hog``, fast on CPU; its
filters are part of dlib's code, Boost Software Licence, trained on Labeled Faces in the Wild) and
its max-margin object detector CNN (``dlib-cnn``, mmod_human_face_detector; finds more poses,
about 60x slower on CPU). Both share the ResNet face descriptor (128-d, 99.38% on LFW at distance
0.6). dlib's author released these model files into the public domain (dlib-models README).

The 68-point shape predictor is the ``dlib68`` landmarker, no longer the default: it was trained
on iBUG 300-W, whose terms exclude commercial use, and it warns once per process when it loads
(:data:`DLIB68_TERMS`). It is loaded only when a landmark is asked of it.

The model files come from the ``face-recognition-models`` package. Its own ``*_location()``
helpers import ``pkg_resources`` (gone from recent setuptools), so the folder is found from the
package's import spec without importing it.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import dlib
import numpy as np

from lipdub.analysis.dlib_types import (
    FaceDescriptorModel,
    HogDetector,
    MmodDetector,
    Rect,
)
from lipdub.errors import WeightsError

log = logging.getLogger(__name__)

_HOG_LOCK = threading.Lock()  # The shared HOG detector object is not re-entrant,
_MMOD_LOCK = threading.Lock()  # nor is the mmod network (it keeps its activations).

#: The file names inside face_recognition_models/models/.
LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
FACE_DESCRIPTOR = "dlib_face_recognition_resnet_model_v1.dat"
MMOD_DETECTOR = "mmod_human_face_detector.dat"
#: dlib's HOG detector scans an 80x80 window; the mmod CNN's window is about 40 px (dlib docs).
HOG_WINDOW_PX = 80
MMOD_WINDOW_PX = 40
#: dlib's face chip padding for the descriptor (the value face_recognition and dlib's example use).
DESCRIPTOR_PADDING = 0.25
#: HOG's detection score is an SVM margin; dlib's own threshold is 0.
HOG_MIN_SCORE = 0.0
#: mmod's confidence threshold (its own default is 0; slightly positive rejects spurious hits).
MMOD_MIN_SCORE = 0.2
#: What the 68-point model's terms are, said when it loads and in `lipdub plugins list`.
DLIB68_TERMS = (
    "research-only: dlib's 68-point model was trained on iBUG 300-W, whose licence excludes "
    "commercial use (its makers ask that the model not be used in a commercial product)"
)


def models_dir() -> Path:
    """The folder holding dlib's model files (from the ``face-recognition-models`` package).

    Raises:
        WeightsError: the package is not installed.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "face-recognition-models is not installed; pip install face-recognition-models"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_path(name: str) -> Path:
    """Path of one dlib model file; raises :class:`WeightsError` naming the path tried."""
    path = models_dir() / name
    if not path.is_file():
        raise WeightsError(f"{path}: dlib model file missing; reinstall face-recognition-models")
    return path


@cache
def _load(kind: str, name: str) -> Any:
    """Load a dlib model once per process (they are read-only and thread-safe to call).

    Typed ``Any`` (what dlib gives); each caller states the protocol of the kind it asked for.
    """
    path = str(model_path(name))
    log.debug("loading dlib model %s", path)
    if kind == "shape":
        log.warning("landmarker dlib68 (%s): %s", name, DLIB68_TERMS)
        return dlib.shape_predictor(path)
    if kind == "descriptor":
        return dlib.face_recognition_model_v1(path)
    if kind == "mmod":
        return dlib.cnn_face_detection_model_v1(path)
    raise ValueError(kind)


@cache
def _hog() -> HogDetector:
    """dlib's HOG detector (building it takes most of a second); shared, used under a lock."""
    return dlib.get_frontal_face_detector()


class DlibFaceDetector:
    """dlib HOG or mmod-CNN detection, 68 landmarks and 128-d descriptors.

    Arguments:
        method: ``"hog"`` or ``"cnn"``.
        upsample: extra 2x pyramid levels dlib scans (each finds faces half as big, 4x the cost).
    """

    def __init__(self, method: str = "hog", upsample: int = 0) -> None:
        if method not in ("hog", "cnn"):
            raise ValueError(f"unknown dlib detector {method!r}; use 'hog' or 'cnn'")
        self.name = f"dlib-{method}"
        self.method = method
        self.upsample = int(upsample)
        self.window_px = HOG_WINDOW_PX if method == "hog" else MMOD_WINDOW_PX
        self._hog: HogDetector | None = _hog() if method == "hog" else None
        self._mmod: MmodDetector | None = _load("mmod", MMOD_DETECTOR) if method == "cnn" else None

    def detect(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Faces in ``image`` as ``(box x0, y0, x1, y1, score)``, best first."""
        image = np.ascontiguousarray(image)
        found: list[tuple[np.ndarray, float]] = []
        if self._hog is not None:
            with _HOG_LOCK:
                rects, scores, _ = self._hog.run(image, self.upsample, HOG_MIN_SCORE)
            for r, s in zip(rects, scores, strict=True):
                found.append((_rect_box(r), float(s)))
        elif self._mmod is not None:
            with _MMOD_LOCK:
                dets = self._mmod(image, self.upsample)
            for d in dets:
                if d.confidence >= MMOD_MIN_SCORE:
                    found.append((_rect_box(d.rect), float(d.confidence)))
        found.sort(key=lambda f: -f[1])
        return found

    def landmarks(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 68, 2) float32 landmarks fitted inside each box by dlib's 68-point model
        (research-only terms: see :data:`DLIB68_TERMS`; loaded at the first call)."""
        return fit_68(image, boxes)

    def descriptors(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 128) float32 dlib ResNet descriptors of the faces with these landmarks."""
        return face_descriptors(image, landmarks)


class Dlib68Landmarker:
    """The ``dlib68`` landmarker: dlib's 68-point shape predictor (iBUG 300-W, research-only).

    Kept as a choice for comparison and for footage the mesh cannot fit; it warns when its
    model loads. See :data:`DLIB68_TERMS`.
    """

    name = "dlib68"
    licence = DLIB68_TERMS

    def landmarks(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 68, 2) float32 landmarks fitted inside each box (full-resolution image)."""
        return fit_68(image, boxes)


def face_descriptors(image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 128) float32 dlib ResNet descriptors (public domain model) of the faces with these
    68-point landmarks; any face detector may use them for identity."""
    model: FaceDescriptorModel = _load("descriptor", FACE_DESCRIPTOR)
    image = np.ascontiguousarray(image)
    out = np.zeros((len(landmarks), 128), np.float32)
    for i, lm in enumerate(landmarks):
        pts = np.asarray(lm, np.float64)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        rect = dlib.rectangle(int(x0), int(y0), int(np.ceil(x1)), int(np.ceil(y1)))
        parts = dlib.points([dlib.point(round(float(x)), round(float(y))) for x, y in pts])
        shape = dlib.full_object_detection(rect, parts)
        out[i] = np.asarray(model.compute_face_descriptor(image, shape, 0, DESCRIPTOR_PADDING))
    return out


def fit_68(image: np.ndarray, boxes: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 68, 2) float32: dlib's 68-point shape predictor inside each box."""
    shape_model: Any = _load("shape", LANDMARKS_68)
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    out = np.zeros((len(boxes), 68, 2), np.float32)
    for i, box in enumerate(boxes):
        shape = shape_model(gray, _box_rect(box))
        out[i] = [(p.x, p.y) for p in shape.parts()]
    return out


def _rect_box(r: Rect) -> np.ndarray:
    return np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1], np.float64)


def _box_rect(box: np.ndarray) -> dlib.rectangle:
    x0, y0, x1, y1 = (round(float(v)) for v in box[:4])
    return dlib.rectangle(x0, y0, max(x1 - 1, x0 + 1), max(y1 - 1, y0 + 1))
