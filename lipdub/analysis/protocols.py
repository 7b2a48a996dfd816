"""What the analysis asks of its swappable stages: shot detector, face detector, tracker, masks.

Plugins return objects satisfying these protocols from their stage hooks (see
:mod:`lipdub.hookspecs`). They are structural: no base class to inherit. Every stage object also
has a ``name`` (the choice it was built as), which goes into the cache key and the reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lipdub.analysis.records import FaceObservation, FaceTrack


@runtime_checkable
class ShotDetector(Protocol):
    """Finds cuts in a source (PySceneDetect by default)."""

    name: str

    def detect(self, video: Path, start: int, stop: int, *, conform: bool = False) -> list[int]:
        """Return the first frames of new shots inside ``[start, stop)`` (absolute, increasing).

        ``start`` itself is never returned: it begins the range, not a new shot within it.
        ``conform``: number the frames of a variable-frame-rate source as conformed onto its
        constant-rate grid (``open_video(video, conform=True)``), as the render reads it; only
        passed when true.

        Raises:
            MediaError: the file cannot be read.
        """
        ...


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces, fits 68 landmarks (iBUG 300-W order) and computes identity descriptors.

    All images are RGB uint8 (H, W, 3). :meth:`detect` works on whatever image it is given (the
    pipeline hands it a resized frame and scales the boxes back); :meth:`landmarks` and
    :meth:`descriptors` get the full-resolution frame.
    """

    name: str
    window_px: int  # Smallest face side (pixels of the image given to detect) it can find.

    def detect(self, image: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """Return ``(box (4,) float x0, y0, x1, y1, score)`` for each face found."""
        ...

    def landmarks(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> np.ndarray:
        """Return (N, 68, 2) float32 landmarks, one set per box (a box may come from tracking)."""
        ...

    def descriptors(self, image: np.ndarray, landmarks: Sequence[np.ndarray]) -> np.ndarray:
        """Return (N, 128) float32 identity descriptors, comparable by Euclidean distance."""
        ...


@runtime_checkable
class Landmarker(Protocol):
    """Fits 68 landmarks (iBUG 300-W order) to faces found by the ``faces`` stage.

    The analysis, the identity descriptors (which align the face by them), the masks and QC all
    read these points; the mouth is 48..67 with the inner lips at 60..67, whose upper and lower
    points should meet on a closed mouth. ``name`` goes into the analysis cache key: make it
    change when the model does (the built-in ``mediapipe`` choice appends its model's SHA-256).
    A landmarker may also keep ``scores``, the (N,) presence score (0..1) of each face of its
    last call: a face whose score falls below ``redetect_below`` makes the detector look again
    on the next frame.
    """

    name: str

    def landmarks(self, image: np.ndarray, boxes: Sequence[np.ndarray]) -> np.ndarray:
        """Return (N, 68, 2) float32 landmarks in ``image``'s pixels, one set per box.

        ``image`` is the full-resolution RGB uint8 frame; a box (4,) float x0, y0, x1, y1 comes
        from the detector or from the face followed from the previous frame.
        """
        ...


class FollowingLandmarker(Protocol):
    """A landmarker that can fit a face on the crop its previous frame's points framed.

    It keeps ``rois``, one crop per face of its last call; the face pass hands each followed
    face's crop back on the next frame (None for a new face). The built-in ``mediapipe``
    landmarker does this, as MediaPipe's own graph tracks a face between detections.
    """

    rois: list[Any]

    def landmarks(
        self, image: np.ndarray, boxes: Sequence[np.ndarray], rois: Sequence[Any] | None = None
    ) -> np.ndarray:
        """(N, 68, 2) float32 landmarks; a face with a crop in ``rois`` is fitted on it."""
        ...


@runtime_checkable
class Tracker(Protocol):
    """Links per-frame face observations into tracks and smooths their landmarks over time."""

    name: str

    def update(self, frame: int, faces: Sequence[FaceObservation], new_shot: bool) -> list[int]:
        """Add the faces of shot frame ``frame`` (frames come in increasing order).

        ``new_shot`` is True on the first frame after a cut: no track continues across it.
        Returns a track id per face. The caller may fill ``descriptor`` on the observations
        afterwards; :meth:`finish` sees it.
        """
        ...

    def finish(self, fps: float) -> tuple[list[FaceTrack], list[str]]:
        """Close every track; return the tracks (gaps bridged, landmarks smoothed) and warnings.

        Track ids are renumbered 0.. in order of first frame. The tracker is empty afterwards.
        """
        ...


@runtime_checkable
class MaskPlanner(Protocol):
    """Turns aligned landmarks into the lower-face mask M, and M into a soft frame-space mask."""

    name: str

    def plan(self, landmarks_crop: np.ndarray, size: int) -> np.ndarray:
        """Return the (size, size) float32 mask in [0, 1]; 1 = region to regenerate."""
        ...

    def blend_mask(
        self,
        crop_mask: np.ndarray,
        matrix: np.ndarray,
        box: tuple[int, int, int, int],
        feather_px: float,
    ) -> np.ndarray:
        """Return the (h, w) float32 soft mask of frame region ``box``; 0 outside M's surround."""
        ...
