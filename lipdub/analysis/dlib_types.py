"""The parts of dlib's API that lipdub calls, as protocols (dlib ships no type information).

dlib's Python module is a compiled extension without stubs, so a type checker sees every dlib
object as ``Any``. These protocols state what :mod:`lipdub.analysis.faces` relies on, taken from
the signatures dlib documents in its docstrings (``help(dlib.shape_predictor.__call__)``), so a
wrong call is caught at the call site instead of deep inside the extension.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np


class Rect(Protocol):
    """``dlib.rectangle``: inclusive pixel bounds."""

    def left(self) -> int: ...
    def top(self) -> int: ...
    def right(self) -> int: ...
    def bottom(self) -> int: ...


class Point(Protocol):
    """``dlib.point``: one landmark."""

    x: int
    y: int


class Shape(Protocol):
    """``dlib.full_object_detection``: the landmarks fitted inside one box."""

    def parts(self) -> Sequence[Point]: ...


class MmodDetection(Protocol):
    """``dlib.mmod_rectangle``: one face found by the mmod CNN."""

    rect: Rect
    confidence: float


class HogDetector(Protocol):
    """``dlib.fhog_object_detector`` (``dlib.get_frontal_face_detector()``)."""

    def run(
        self, image: np.ndarray, upsample_num_times: int, adjust_threshold: float
    ) -> tuple[list[Rect], list[float], list[int]]:
        """Return (boxes, SVM scores, sub-detector indices)."""
        ...


class MmodDetector(Protocol):
    """``dlib.cnn_face_detection_model_v1`` (mmod_human_face_detector.dat)."""

    def __call__(self, img: np.ndarray, upsample_num_times: int) -> Iterable[MmodDetection]: ...


class ShapePredictor(Protocol):
    """``dlib.shape_predictor`` (the 68-point landmark model)."""

    def __call__(self, image: np.ndarray, box: Rect) -> Shape: ...


class FaceDescriptorModel(Protocol):
    """``dlib.face_recognition_model_v1`` (the ResNet descriptor)."""

    def compute_face_descriptor(
        self, img: np.ndarray, face: Shape, num_jitters: int, padding: float
    ) -> Sequence[float]:
        """Return the 128-d descriptor of the face with these landmarks."""
        ...
