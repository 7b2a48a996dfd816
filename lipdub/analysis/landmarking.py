"""A face detector whose landmarks come from the landmarker stage.

The face pass, identity (its descriptors are aligned by the landmarks) and the detection-scale
helpers speak to one object with ``detect``, ``landmarks`` and ``descriptors``. The ``faces`` and
``landmarker`` stages are chosen apart; :class:`FacesWithLandmarker` joins the two, so a studio's
own landmarker works with dlib's detector and descriptors, and the reverse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from lipdub.analysis.protocols import FaceDetector, FollowingLandmarker, Landmarker


class FacesWithLandmarker:
    """``detect`` and ``descriptors`` of ``detector``; ``landmarks`` of ``landmarker``.

    ``name`` names both (the identity gallery's cache key: descriptors depend on the landmarks);
    ``scores`` are the landmarker's presence scores of its last call, when it keeps them.
    """

    def __init__(self, detector: FaceDetector, landmarker: Landmarker) -> None:
        self.detector, self.landmarker = detector, landmarker
        self.name = f"{detector.name}+{landmarker.name}"
        self.window_px = detector.window_px
        #: The detector resizes what it is given itself (see lipdub.analysis.detection).
        self.scales_itself = bool(getattr(detector, "scales_itself", False))
        own = getattr(detector, "smallest_face", None)
        if own is not None:
            self.smallest_face = own

    def detect(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """The detector's faces in ``image``."""
        return self.detector.detect(image)

    def landmarks(
        self, image: np.ndarray, boxes: Sequence[np.ndarray], rois: Sequence[Any] | None = None
    ) -> np.ndarray:
        """The landmarker's (N, 68, 2) points in each box. ``rois``: for a landmarker that
        follows faces (it keeps ``rois``, the crops its last call's points frame), each face's
        crop from the previous frame, or None; other landmarkers never see them."""
        if rois is not None and self.follows:
            following = cast(FollowingLandmarker, self.landmarker)  # It keeps `rois`.
            return following.landmarks(image, boxes, rois=rois)
        return self.landmarker.landmarks(image, boxes)

    @property
    def follows(self) -> bool:
        """The landmarker fits a followed face on the crop its previous points framed."""
        return bool(getattr(self.landmarker, "follow", False)) and hasattr(self.landmarker, "rois")

    @property
    def rois(self) -> list[Any] | None:
        """The crops of the landmarker's last call's faces, for the next frame; None if it keeps
        none."""
        rois = getattr(self.landmarker, "rois", None)
        return None if rois is None else list(rois)

    def descriptors(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """The detector's (N, 128) identity descriptors of the faces with these landmarks."""
        return self.detector.descriptors(image, landmarks)

    @property
    def scores(self) -> np.ndarray | None:
        """The landmarker's (N,) presence scores of its last call, or None if it keeps none."""
        scores = getattr(self.landmarker, "scores", None)
        return None if scores is None else np.asarray(scores, np.float32)
