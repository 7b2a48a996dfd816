"""A face detector whose landmarks come from the landmarker stage.

The face pass, identity (its descriptors are aligned by the landmarks) and the detection-scale
helpers speak to one object with ``detect``, ``landmarks`` and ``descriptors``. The ``faces`` and
``landmarker`` stages are chosen apart; :class:`FacesWithLandmarker` joins the two, so a studio's
own landmarker works with dlib's detector and descriptors, and the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lipdub.analysis.protocols import FaceDetector, Landmarker


class FacesWithLandmarker:
    """``detect`` and ``descriptors`` of ``detector``; ``landmarks`` of ``landmarker``.

    ``name`` names both (the identity gallery's cache key: descriptors depend on the landmarks);
    ``scores`` are the landmarker's presence scores of its last call, when it keeps them.
    """

    def __init__(self, detector: FaceDetector, landmarker: Landmarker) -> None:
        self.detector, self.landmarker = detector, landmarker
        self.name = f"{detector.name}+{landmarker.name}"
        self.window_px = detector.window_px

    def detect(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """The detector's faces in ``image``."""
        return self.detector.detect(image)

    def landmarks(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> np.ndarray:
        """The landmarker's (N, 68, 2) points in each box."""
        return self.landmarker.landmarks(image, boxes)

    def descriptors(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """The detector's (N, 128) identity descriptors of the faces with these landmarks."""
        return self.detector.descriptors(image, landmarks)

    @property
    def scores(self) -> np.ndarray | None:
        """The landmarker's (N,) presence scores of its last call, or None if it keeps none."""
        scores = getattr(self.landmarker, "scores", None)
        return None if scores is None else np.asarray(scores, np.float32)
